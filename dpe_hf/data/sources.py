"""Where training images come from: a local folder (searched recursively) or a hub dataset, as a
🤗 ``datasets`` corpus with one ``"image"`` column (:func:`load_images`); two folders paired by
file stem, FiveK input / expert C (:func:`load_pairs`); one process's share (:func:`shard_for_process`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from dpe_hf.errors import ConfigError
from dpe_hf.imageio import list_images

#: File extensions treated as images in local folders (all readable by Pillow and by the
#: ``imagefolder`` builder).
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif",
     ".ppm", ".pgm", ".pbm", ".pnm", ".tga"}
)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def _image_files(folder: Path) -> list[Path]:
    return list_images(folder, recursive=True, suffixes=IMAGE_EXTENSIONS)


def _check_folder(path: Path, what: str) -> None:
    if not path.exists():
        raise ConfigError(f"{path}: {what} not found")
    if not path.is_dir():
        raise ConfigError(f"{path}: {what} is not a folder")


def _load_local_images(folder: Path, *, streaming: bool, split: str, skip: Callable[[Path], bool] | None = None):
    from datasets import load_dataset

    _check_folder(folder, "image folder")
    files = _image_files(folder)
    if not files:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise ConfigError(f"{folder}: no images found (searched recursively for {exts})")
    if skip is not None:
        files = [p for p in files if not skip(p)]
        if not files:
            raise ConfigError(f"{folder}: every image in it was left out")
    # Explicit data_files, not data_dir: with data_dir, imagefolder infers splits from folder and
    # file names ("test/", "*_train_*", ...) and silently drops every file of the other splits.
    # drop_labels: sub-folders would otherwise become a "label" column.
    ds = load_dataset(
        "imagefolder",
        data_files={split: [str(p) for p in files]},
        drop_labels=True,
        split=split,
        streaming=streaming,
    )
    return _only_image_column(ds, str(folder))


def image_columns(ds) -> list[str] | None:
    from datasets import Image

    features = ds.features
    if features is None:
        return None
    return [name for name, feat in features.items() if isinstance(feat, Image)]


def _only_image_column(ds, source: str):
    """Keep a single Image column, named "image" (the first Image column when none is so named)."""
    from datasets import Image

    if ds.features is None and hasattr(ds, "_resolve_features"):
        try:
            ds = ds._resolve_features()
        except Exception:  # noqa: BLE001 - features stay unknown; checked below
            pass
    cols = image_columns(ds)
    if cols is None:
        if "image" not in (ds.column_names or []):
            raise ConfigError(
                f"{source}: cannot tell which column holds the images (unknown features)"
            )
        col = "image"
    elif "image" in cols:
        col = "image"
    elif cols:
        col = cols[0]
    else:
        names = ", ".join(ds.column_names or [])
        raise ConfigError(f"{source}: dataset has no image column (columns: {names})")
    ds = ds.select_columns([col])
    if col != "image":
        ds = ds.rename_column(col, "image")
    if cols is not None and ds.features["image"] != Image():
        ds = ds.cast_column("image", Image())  # same feature everywhere, so sources concatenate
    return ds


def _looks_like_path(source: str) -> bool:
    return (
        source.startswith(("/", ".", "~"))
        or "\\" in source
        or source.endswith("/")
        or os.path.splitdrive(source)[0] != ""
        or not _HUB_ID.match(source)
    )


def _load_one_source(source: str | os.PathLike, *, streaming: bool, split: str,
                     skip: Callable[[Path], bool] | None = None):
    text = os.fspath(source)
    path = Path(os.path.expanduser(text))
    if path.exists():
        return _load_local_images(path, streaming=streaming, split=split, skip=skip)
    if isinstance(source, os.PathLike) or _looks_like_path(text):
        raise ConfigError(f"{path}: image folder not found")
    from datasets import load_dataset

    try:
        ds = load_dataset(text, split=split, streaming=streaming)
    except Exception as e:  # noqa: BLE001 - any failure means "not a usable source"
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ConfigError(
            f"{text}: not an existing folder, and loading it as a hub dataset "
            f"(split {split!r}) failed: {type(e).__name__}: {first}"
        ) from e
    return _only_image_column(ds, text)


def load_images(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    streaming: bool = False,
    split: str = "train",
    skip: Callable[[Path], bool] | None = None,
):
    """A corpus of images as a ``datasets.Dataset`` (or ``IterableDataset`` when ``streaming``).

    The result has exactly one column, ``"image"`` (an ``Image()`` feature).

    Args:
        source: a local folder (every image under it, recursively; sub-folder names do *not*
            become labels or splits), or a hub dataset id (``"owner/name"``; the column named
            "image", else the first Image column, is kept). A list of sources is concatenated
            (map-style) or interleaved until all are exhausted, without repetition (streaming).
        streaming: return an ``IterableDataset`` that reads images lazily.
        split: the split of a hub dataset; for a local folder only the name of the split.
        skip: files of local folders for which it returns True are left out (e.g. the
            retouches of the pairs a run holds out).

    Raises:
        ConfigError: missing folder, folder without images (or none left), unloadable hub id,
            no image column.
    """
    if isinstance(source, (str, os.PathLike)):
        return _load_one_source(source, streaming=streaming, split=split, skip=skip)
    sources = list(source)
    if not sources:
        raise ConfigError("load_images: empty list of sources")
    parts = [_load_one_source(s, streaming=streaming, split=split, skip=skip) for s in sources]
    if len(parts) == 1:
        return parts[0]
    if streaming:
        from datasets import interleave_datasets

        return interleave_datasets(parts, stopping_strategy="all_exhausted_without_replacement")
    from datasets import concatenate_datasets

    return concatenate_datasets(parts)


def _stems(folder: Path, what: str) -> dict[str, Path]:
    _check_folder(folder, what)
    out: dict[str, Path] = {}
    for p in _image_files(folder):
        if p.stem in out:
            raise ConfigError(
                f"{folder}: two {what} files share the id {p.stem!r}: {out[p.stem]} and {p}"
            )
        out[p.stem] = p
    if not out:
        raise ConfigError(f"{folder}: no images found in the {what}")
    return out


def few(items: Sequence[str], n: int = 5) -> str:
    items = list(items)
    shown = ", ".join(items[:n])
    return f"{shown} (and {len(items) - n} more)" if len(items) > n else shown


def load_pairs(
    input_dir: str | os.PathLike, expert_dir: str | os.PathLike, *, ids: Iterable[str] | None = None
):
    """Paired images (input -> expert) as a ``Dataset`` with columns "id", "input", "target".

    Files are paired by stem (``a0001.jpg`` <-> ``a0001.tif``), searching both folders
    recursively; rows are sorted by id. ``ids`` restricts the pairs to those stems (each must
    exist on both sides).

    Raises:
        ConfigError: a missing folder, a folder without images, two files with one stem in a
            folder, files present on one side only (up to 5 listed), requested ids not found.
    """
    from datasets import Dataset, Features, Image, Value

    in_dir, ex_dir = Path(input_dir), Path(expert_dir)
    inputs = _stems(in_dir, "input folder")
    experts = _stems(ex_dir, "expert folder")
    if ids is not None:
        wanted = list(dict.fromkeys(str(i) for i in ids))
        missing = [i for i in wanted if i not in inputs or i not in experts]
        if missing:
            raise ConfigError(
                f"{in_dir} / {ex_dir}: {len(missing)} requested id(s) without both an input and an "
                f"expert image: {few(missing)}"
            )
        keys = sorted(wanted)
    else:
        only_in = sorted(set(inputs) - set(experts))
        only_ex = sorted(set(experts) - set(inputs))
        if only_in or only_ex:
            msgs = []
            if only_in:
                msgs.append(f"{len(only_in)} input(s) without an expert image in {ex_dir}: "
                            f"{few([str(inputs[k]) for k in only_in])}")
            if only_ex:
                msgs.append(f"{len(only_ex)} expert image(s) without an input in {in_dir}: "
                            f"{few([str(experts[k]) for k in only_ex])}")
            raise ConfigError("unpaired files: " + "; ".join(msgs))
        keys = sorted(inputs)
    features = Features({"id": Value("string"), "input": Image(), "target": Image()})
    return Dataset.from_dict(
        {
            "id": keys,
            "input": [str(inputs[k]) for k in keys],
            "target": [str(experts[k]) for k in keys],
        },
        features=features,
    )


def shard_for_process(ds, rank: int, world_size: int):
    """The share of ``ds`` (``Dataset`` / ``IterableDataset``) that process ``rank`` reads.

    ``datasets.distributed.split_dataset_by_node``: contiguous chunks for a ``Dataset``; whole
    shards (when ``num_shards % world_size == 0``) or every ``world_size``-th example of an
    ``IterableDataset``. Shards are disjoint and together cover ``ds``. Shuffle a stream with
    the same seed on every rank (the crop streams do).
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ConfigError(f"world_size must be a positive int, got {world_size!r}")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ConfigError(f"rank must be an int in [0, {world_size}), got {rank!r}")
    if world_size == 1:
        return ds
    from datasets.distributed import split_dataset_by_node

    return split_dataset_by_node(ds, rank=rank, world_size=world_size)
