"""Image corpora on top of 🤗 ``datasets``, and the resumable crop streams the training loop eats.

Sources
    :func:`load_images` — a local folder (searched recursively) or a hub dataset id, as a
    ``Dataset`` / ``IterableDataset`` with one ``"image"`` column; :func:`load_pairs` — two
    folders paired by file stem (FiveK input / expert C); :func:`fivek_split_ids` — the FiveK
    4500 / 500 split by id range or by a list file; :func:`shard_for_process` — one rank's share.

Streams
    :class:`PairedCrops`, :class:`ImageCrops`, :class:`SyntheticPairs` and :class:`MixedPairs`
    are infinite (unless ``epochs`` is given) iterators of training examples. Every random
    choice is a pure function of ``(seed, epoch, index)``, and ``state_dict()`` /
    ``load_state_dict()`` capture (epoch, position within the epoch), so a resumed run yields
    exactly the examples the uninterrupted run would have. :func:`batches` stacks them.

Decoding is done here, not by ``datasets`` (the image columns are cast to
``Image(decode=False)``), so that an undecodable file is skipped with a
:class:`CorruptImageWarning` that names it instead of crashing the run. Images are brought to
``max_side`` on their long side once (the paper's 512-px protocol) and, for map-style datasets,
kept in memory as uint8 tensors (``cache=True``): decoding a 6000-px JPEG per example is far
slower than a training step.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dpe_hf.data.transforms import _as_hw, dihedral, pil_to_tensor, random_crop
from dpe_hf.errors import ConfigError

__all__ = [
    "IMAGE_EXTENSIONS",
    "CorruptImageWarning",
    "ImageCrops",
    "MixedPairs",
    "PairedCrops",
    "SyntheticPairs",
    "batches",
    "decode_image",
    "fivek_split_ids",
    "list_image_files",
    "load_images",
    "load_pairs",
    "shard_for_process",
]

#: File extensions treated as images in local folders (all readable by Pillow and by the
#: ``imagefolder`` builder).
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif",
     ".ppm", ".pgm", ".pbm", ".pnm", ".tga"}
)

# First elements of the SeedSequence entropy of each kind of draw, so that no two kinds collide.
_TAG_ORDER = 0x0DE5
_TAG_AUG = 0xA06
_TAG_MIX = 0x1117

_END = object()

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class CorruptImageWarning(UserWarning):
    """An image of a corpus could not be decoded and was skipped."""


# --------------------------------------------------------------------------------------------
# sources
# --------------------------------------------------------------------------------------------


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") or part.startswith("__") for part in rel.parts)


def list_image_files(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder``, recursively, sorted; hidden (".x", "__x") entries skipped."""
    root = Path(folder)
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not (d.startswith(".") or d.startswith("__")))
        for name in filenames:
            p = Path(dirpath) / name
            if p.suffix.lower() in IMAGE_EXTENSIONS and not _hidden(p.relative_to(root)):
                out.append(p)
    return sorted(out)


def _check_folder(path: Path, what: str) -> None:
    if not path.exists():
        raise ConfigError(f"{path}: {what} not found")
    if not path.is_dir():
        raise ConfigError(f"{path}: {what} is not a folder")


def _load_local_images(folder: Path, *, streaming: bool, split: str):
    from datasets import load_dataset

    _check_folder(folder, "image folder")
    files = list_image_files(folder)
    if not files:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise ConfigError(f"{folder}: no images found (searched recursively for {exts})")
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


def _image_columns(ds) -> list[str] | None:
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
    cols = _image_columns(ds)
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


def _load_one_source(source: str | os.PathLike, *, streaming: bool, split: str):
    text = os.fspath(source)
    path = Path(os.path.expanduser(text))
    if path.exists():
        return _load_local_images(path, streaming=streaming, split=split)
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

    Raises:
        ConfigError: missing folder, folder without images, unloadable hub id, no image column.
    """
    if isinstance(source, (str, os.PathLike)):
        return _load_one_source(source, streaming=streaming, split=split)
    sources = list(source)
    if not sources:
        raise ConfigError("load_images: empty list of sources")
    parts = [_load_one_source(s, streaming=streaming, split=split) for s in sources]
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
    for p in list_image_files(folder):
        if p.stem in out:
            raise ConfigError(
                f"{folder}: two {what} files share the id {p.stem!r}: {out[p.stem]} and {p}"
            )
        out[p.stem] = p
    if not out:
        raise ConfigError(f"{folder}: no images found in the {what}")
    return out


def _few(items: Sequence[str], n: int = 5) -> str:
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
                f"expert image: {_few(missing)}"
            )
        keys = sorted(wanted)
    else:
        only_in = sorted(set(inputs) - set(experts))
        only_ex = sorted(set(experts) - set(inputs))
        if only_in or only_ex:
            msgs = []
            if only_in:
                msgs.append(f"{len(only_in)} input(s) without an expert image in {ex_dir}: "
                            f"{_few([str(inputs[k]) for k in only_in])}")
            if only_ex:
                msgs.append(f"{len(only_ex)} expert image(s) without an input in {in_dir}: "
                            f"{_few([str(experts[k]) for k in only_ex])}")
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


_FIVEK_ID = re.compile(r"^a(\d{4})(?!\d)")


def _fivek_number(i: str) -> int | None:
    m = _FIVEK_ID.match(i)
    return int(m.group(1)) if m else None


def fivek_split_ids(
    ids: Iterable[str], split: str, list_file: str | os.PathLike | None = None
) -> list[str]:
    """The ids of ``ids`` (kept in their order) that belong to a MIT-Adobe FiveK split.

    Without ``list_file``: by id range, ``a0001``-``a4500`` = "train", ``a4501``-``a5000`` =
    "test" (the split of the paper), "all" = every id. Ids may carry a suffix
    (``a0001-jmac_DSC1459``). With ``list_file``: the ids listed there, one per line (blank
    lines and ``#`` comments ignored); a line matches an id equal to it or, for a bare FiveK
    id like ``a0001``, an id with that FiveK number. ``split`` is then not used for selection.

    Raises:
        ConfigError: unknown split, ids that are not FiveK ids (range mode), a missing list
            file, listed ids not among ``ids``.
    """
    ids = [str(i) for i in ids]
    if split not in ("train", "test", "all"):
        raise ConfigError(f"FiveK split must be 'train', 'test' or 'all', got {split!r}")
    if list_file is not None:
        path = Path(list_file)
        if not path.is_file():
            raise ConfigError(f"{path}: FiveK split list file not found")
        listed = []
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                listed.append(line)
        exact = set(listed)
        numbers = {_fivek_number(x) for x in listed if _FIVEK_ID.fullmatch(x)}
        chosen = [i for i in ids if i in exact or (_fivek_number(i) in numbers)]
        known = set(ids)
        known_numbers = {_fivek_number(i) for i in ids}
        missing = [
            x for x in listed
            if x not in known and not (_FIVEK_ID.fullmatch(x) and _fivek_number(x) in known_numbers)
        ]
        if missing:
            raise ConfigError(
                f"{path}: {len(missing)} listed id(s) not in the dataset: {_few(missing)}"
            )
        return chosen
    if split == "all":
        return ids
    bad = [i for i in ids if _fivek_number(i) is None or not 1 <= _fivek_number(i) <= 5000]
    if bad:
        raise ConfigError(
            f"{len(bad)} id(s) are not FiveK ids a0001-a5000, cannot split by range "
            f"(give a list file): {_few(bad)}"
        )
    lo, hi = (1, 4500) if split == "train" else (4501, 5000)
    return [i for i in ids if lo <= _fivek_number(i) <= hi]  # type: ignore[operator]


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


# --------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------


def _value_name(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("path") or "<image bytes>")
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    return getattr(value, "filename", None) or f"<{type(value).__name__}>"


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)


def decode_image(value: Any, max_side: int | None = 512) -> torch.Tensor:
    """Decode one image value to a (3, H, W) uint8 tensor, long side reduced to ``max_side``.

    ``value`` is what an ``Image(decode=False)`` column holds (``{"bytes", "path"}``), a path,
    or a PIL image. The EXIF orientation is applied and the image converted to RGB
    (:func:`~dpe_hf.data.transforms.pil_to_tensor`); images larger than ``max_side`` are
    downscaled with ``dpe_hf.ops.resize.resize_long_side`` (antialiased), never upscaled. Big
    JPEGs are decoded at a reduced DCT scale first (never below twice ``max_side``).

    A ``.tif`` file Pillow cannot read (16-bit RGB) is read with ``dpe_hf.imageio.read_image``.
    Raises whatever Pillow raises for an undecodable file (see :func:`_try_decode`).
    """
    path = value.get("path") if isinstance(value, dict) and value.get("bytes") is None else (
        value if isinstance(value, (str, os.PathLike)) else None)
    try:
        return _decode_pil(value, max_side)
    except Exception:
        # Pillow cannot read 16-bit RGB TIFFs (FiveK expert exports); dpe_hf.imageio can.
        if path is None or Path(path).suffix.lower() not in (".tif", ".tiff"):
            raise
        from dpe_hf.imageio import read_image, to_float32

        try:
            arr, _ = read_image(path, max_pixels=None)
        except Exception:  # noqa: BLE001 - report Pillow's error, the first one
            pass
        else:
            x = torch.from_numpy(np.ascontiguousarray(to_float32(arr).transpose(2, 0, 1)))
            return _finish(x, max_side)
        raise


def _finish(x: torch.Tensor, max_side: int | None) -> torch.Tensor:
    if max_side and max(x.shape[-2:]) > max_side:
        from dpe_hf.ops.resize import resize_long_side

        x = resize_long_side(x, max_side, allow_upscale=False, antialias=True)
    return _to_uint8(x)


def _decode_pil(value: Any, max_side: int | None) -> torch.Tensor:
    from PIL import Image

    if isinstance(value, Image.Image):  # a caller's image: do not close it
        img = value
        ctx = contextlib.nullcontext(img)
    elif isinstance(value, dict) and value.get("bytes") is not None:
        img = Image.open(io.BytesIO(value["bytes"]))
    elif isinstance(value, dict) and value.get("path"):
        img = Image.open(value["path"])
    elif isinstance(value, (str, os.PathLike)):
        img = Image.open(value)
    else:
        raise ValueError(f"not an image value: {type(value).__name__}")
    if not isinstance(value, Image.Image):
        ctx = img
    with ctx:
        own = not isinstance(value, Image.Image)
        if max_side and own and getattr(img, "format", None) == "JPEG":
            w, h = img.size
            s = 2.0 * max_side / max(w, h)
            if s < 0.5:
                img.draft(None, (max(1, math.ceil(w * s)), max(1, math.ceil(h * s))))
        img.load()
        x = pil_to_tensor(img)
    return _finish(x, max_side)


def _try_decode(
    value: Any, max_side: int | None, warned: set[str] | None = None
) -> torch.Tensor | None:
    """:func:`decode_image`; on failure None and a :class:`CorruptImageWarning` (once per name)."""
    try:
        return decode_image(value, max_side)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except ModuleNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - Pillow raises many types for a corrupt file
        name = _value_name(value)
        if warned is None or name not in warned:
            if warned is not None:
                warned.add(name)
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            warnings.warn(f"{name}: skipping undecodable image ({type(e).__name__}: {msg})",
                          CorruptImageWarning, stacklevel=3)
        return None


# --------------------------------------------------------------------------------------------
# crop streams
# --------------------------------------------------------------------------------------------


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def _is_iterable_dataset(ds) -> bool:
    from datasets import IterableDataset

    return isinstance(ds, IterableDataset)


def _as_raw(ds, columns: Sequence[str]):
    """``ds`` restricted to ``columns``, Image columns cast to ``decode=False`` (decoded here)."""
    from datasets import Image

    missing = [c for c in columns if ds.column_names is not None and c not in ds.column_names]
    if missing:
        raise ConfigError(f"dataset has no column(s) {missing} (columns: {ds.column_names})")
    ds = ds.select_columns(list(columns))
    if ds.features is not None:
        for c in columns:
            feat = ds.features[c]
            if isinstance(feat, Image) and feat.decode:
                ds = ds.cast_column(c, Image(decode=False))
    return ds


class _CropStream:
    """Shared machinery: epochs, shuffling, decoding, caching, state; subclasses make examples."""

    def __init__(
        self,
        dataset,
        columns: Sequence[str],
        crop: int | Sequence[int],
        seed: int,
        *,
        max_side: int | None = 512,
        augment: bool = True,
        cache: bool = True,
        epochs: int | None = None,
        shuffle_buffer: int = 256,
        exact_resume: bool = True,
    ):
        self.seed = _check_seed(seed)
        _as_hw(crop)  # validates
        self.crop = crop
        if epochs is not None and (
            isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0
        ):
            raise ValueError(f"epochs must be a non-negative int or None, got {epochs!r}")
        if max_side is not None and max_side < 1:
            raise ValueError(f"max_side must be positive or None, got {max_side}")
        self.max_side = max_side
        self.augment = bool(augment)
        self.epochs = epochs
        self.columns = tuple(columns)
        self.streaming = _is_iterable_dataset(dataset)
        self._raw = _as_raw(dataset, self.columns)
        self.cache = bool(cache) and not self.streaming
        self._cache: dict[int, tuple[torch.Tensor, ...]] = {}
        self._bad: set[int] = set()
        self._warned: set[str] = set()
        self.epoch = 0
        self.position = 0  # examples of the epoch consumed (map: order slots; stream: raw examples)
        self._yielded_in_epoch = 0
        self._full_epoch = True  # this epoch was started at position 0 in this process
        self._order: np.ndarray | None = None
        self._order_epoch = -1
        if self.streaming:
            self.shuffle_buffer = int(shuffle_buffer)
            self.exact_resume = bool(exact_resume)
            self._stream = (
                self._raw.shuffle(seed=self.seed, buffer_size=self.shuffle_buffer)
                if self.shuffle_buffer > 1 else self._raw
            )
            self._it: Iterator | None = None
            self._ds_state: dict | None = None
            self._pending_ds_state: dict | None = None
        else:
            if len(self._raw) == 0:
                raise ConfigError("crop stream over an empty dataset")

    # ---- iteration -------------------------------------------------------------------------

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            if self.epochs is not None and self.epoch >= self.epochs:
                raise StopIteration
            item = self._next_map() if not self.streaming else self._next_stream()
            if item is not None:
                return item

    def _end_epoch(self) -> None:
        if self._yielded_in_epoch == 0 and self._full_epoch:
            raise ConfigError(f"{type(self).__name__}: a whole epoch without a decodable image")
        self.epoch += 1
        self.position = 0
        self._yielded_in_epoch = 0
        self._full_epoch = True

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([_TAG_AUG, self.seed, self.epoch, int(index)])

    def _next_map(self):
        n = len(self._raw)
        if self.position >= n:
            self._end_epoch()
            return None
        if self._order_epoch != self.epoch:
            self._order = np.random.default_rng([_TAG_ORDER, self.seed, self.epoch]).permutation(n)
            self._order_epoch = self.epoch
        i = int(self._order[self.position])  # type: ignore[index]
        self.position += 1
        images = self._load(i)
        if images is None:
            return None
        self._yielded_in_epoch += 1
        return self._make(images, self._rng(i))

    def _open_stream(self) -> Iterator:
        ds = self._stream
        ds.set_epoch(self.epoch)
        if self.position and (not self.exact_resume or self._stream is self._raw):
            # datasets' own state: exact without a shuffle buffer, else it loses the buffer.
            ds.load_state_dict(self._pending_ds_state)
            it = iter(ds)
        else:
            ds.load_state_dict(None)  # forget a state restored earlier (it applies to its epoch)
            it = iter(ds)
            # exact replay: the shuffled order is a pure function of (seed, epoch)
            for _ in range(self.position):
                if next(it, _END) is _END:  # the stream is shorter than when the state was saved
                    return iter(())
        self._pending_ds_state = None
        return it

    def _next_stream(self):
        if self._it is None:
            self._it = self._open_stream()
        try:
            row = next(self._it)
        except StopIteration:
            self._it = None
            self._end_epoch()
            return None
        index = self.position
        self.position += 1
        self._ds_state = self._stream.state_dict()
        images = self._decode_row(row)
        if images is None:
            return None
        self._yielded_in_epoch += 1
        return self._make(images, self._rng(index))

    # ---- decoding --------------------------------------------------------------------------

    def _decode_row(self, row: dict) -> tuple[torch.Tensor, ...] | None:
        out = []
        for c in self.columns:
            x = _try_decode(row[c], self.max_side, self._warned)
            if x is None:
                return None
            out.append(x)
        return tuple(out)

    def _load(self, i: int) -> tuple[torch.Tensor, ...] | None:
        if i in self._bad:
            return None
        hit = self._cache.get(i)
        if hit is not None:
            return hit
        images = self._decode_row(self._raw[i])
        if images is None:
            self._bad.add(i)
        elif self.cache:
            self._cache[i] = images
        return images

    def preload(self, num_threads: int | None = None) -> int:
        """Decode and cache every image of a map-style dataset now, in threads.

        Returns the number of usable (decodable) examples.
        """
        if self.streaming or not self.cache:
            raise RuntimeError("preload needs a map-style dataset and cache=True")
        from concurrent.futures import ThreadPoolExecutor

        todo = [i for i in range(len(self._raw)) if i not in self._cache and i not in self._bad]
        with ThreadPoolExecutor(max_workers=num_threads or min(8, os.cpu_count() or 1)) as pool:
            for _ in pool.map(self._load, todo):
                pass
        return len(self._cache)

    # ---- examples --------------------------------------------------------------------------

    def _crop_one(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        c = random_crop(x, size=self.crop, rng=rng)
        if self.augment:
            c = dihedral(c, int(rng.integers(0, 8)))
        return c.float().div_(255.0) if c.dtype == torch.uint8 else c.float()

    def _make(self, images: tuple[torch.Tensor, ...], rng: np.random.Generator):
        raise NotImplementedError

    # ---- state -----------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Where the stream is: ``{"kind", "seed", "epoch", "position"[, "dataset_state"]}``.

        Plain ints / strings / dicts: JSON- and ``torch.save``-able.
        """
        state = {
            "kind": type(self).__name__,
            "seed": self.seed,
            "epoch": self.epoch,
            "position": self.position,
        }
        if self.streaming:
            state["dataset_state"] = self._ds_state if self.position else None
        return state

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state``, the :meth:`state_dict` of a stream with the same arguments."""
        if state.get("kind") != type(self).__name__:
            raise ValueError(
                f"state of a {state.get('kind')!r} stream given to a {type(self).__name__}"
            )
        if int(state["seed"]) != self.seed:
            raise ValueError(
                f"state was saved with seed {state['seed']}, this stream has seed {self.seed}"
            )
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self._yielded_in_epoch = 0
        self._full_epoch = self.position == 0
        if self.streaming:
            self._it = None
            self._ds_state = state.get("dataset_state")
            self._pending_ds_state = self._ds_state
            uses_ds_state = not self.exact_resume or self._stream is self._raw
            if self.position and self._ds_state is None and uses_ds_state:
                raise ValueError("stream state without the dataset state needed to resume it")


def _pick_image_column(dataset, column: str | None) -> str:
    if column is not None:
        return column
    names = dataset.column_names or []
    if "image" in names:
        return "image"
    cols = _image_columns(dataset)
    if cols:
        return cols[0]
    raise ConfigError(f"dataset has no 'image' column (columns: {', '.join(names)})")


class PairedCrops(_CropStream):
    """``(input, target)`` float crops (3, crop, crop) in [0, 1] from a paired dataset.

    Each epoch visits every pair once, in an order shuffled by ``(seed, epoch)``; both images
    are brought to long side ``max_side`` (once: cached for map-style datasets) and get the
    same random crop and, if ``augment``, the same random dihedral transform, drawn from an rng
    seeded by ``(seed, epoch, index)``. A target whose size differs from its input's is resized
    to it. Infinite unless ``epochs`` is given.

    Args:
        dataset: ``Dataset`` / ``IterableDataset`` with "input" and "target" image columns
            (:func:`load_pairs`).
        crop: crop size, int or (h, w); smaller images are mirror-padded.
        seed: non-negative int.
        max_side: long side the images are reduced to first (None: full size).
        augment: random dihedral transform (the crop is always random).
        cache: keep decoded images in memory (map-style only; ~0.8 MB per 512-px image).
        epochs: stop after this many epochs (None: never).
        shuffle_buffer: streams only: ``IterableDataset.shuffle`` buffer (<= 1: no shuffle).
        exact_resume: streams only: resume a shuffled stream by replaying the epoch up to the
            saved position (exact; reads the skipped examples' bytes again) instead of
            ``IterableDataset.load_state_dict`` (fast but drops the shuffle buffer's content).
        input_edit: a ``DegradeConfig``: each input crop also gets a random global edit drawn
            from it while its target stays the same (e.g. re-exposed inputs teach that the
            expert's result does not depend on the camera's exposure). None: no edit.
    """

    def __init__(
        self,
        dataset,
        crop,
        seed: int,
        *,
        max_side: int | None = 512,
        augment: bool = True,
        input_column: str = "input",
        target_column: str = "target",
        input_edit=None,
        **kwargs,
    ):
        super().__init__(dataset, (input_column, target_column), crop, seed,
                         max_side=max_side, augment=augment, **kwargs)
        self.input_edit = input_edit

    def _decode_row(self, row):
        images = super()._decode_row(row)
        if images is not None and images[1].shape[-2:] != images[0].shape[-2:]:
            from dpe_hf.ops.resize import resize_to

            x, y = images
            images = (x, _to_uint8(resize_to(y.float().div(255.0), tuple(x.shape[-2:]))))
        return images

    def _make(self, images, rng):
        x, y = images
        cx, cy = random_crop(x, y, size=self.crop, rng=rng)
        if self.augment:
            k = int(rng.integers(0, 8))
            cx, cy = dihedral(cx, k), dihedral(cy, k)
        cx, cy = cx.float().div_(255.0), cy.float().div_(255.0)
        if self.input_edit is not None:
            from dpe_hf.data.degrade import degrade

            cx, _ = degrade(cx, seed=int(rng.integers(0, 2**31 - 1)), config=self.input_edit)
        return cx, cy


class ImageCrops(_CropStream):
    """Single float crops (3, crop, crop) in [0, 1] for unpaired (GAN) training.

    Same rules as :class:`PairedCrops`. For a streamed ``IterableDataset`` nothing is cached;
    the stream is shuffled with ``ds.shuffle(seed=seed, buffer_size=shuffle_buffer)`` and
    ``set_epoch(epoch)``, and the augmentation rng is seeded by (seed, epoch, position).
    ``column`` defaults to "image" (else the first Image column).
    """

    def __init__(
        self,
        dataset,
        crop,
        seed: int,
        *,
        max_side: int | None = 512,
        augment: bool = True,
        column: str | None = None,
        **kwargs,
    ):
        super().__init__(dataset, (_pick_image_column(dataset, column),), crop, seed,
                         max_side=max_side, augment=augment, **kwargs)

    def _make(self, images, rng):
        return self._crop_one(images[0], rng)


class SyntheticPairs(ImageCrops):
    """``(degraded, clean)`` crops: a clean crop as :class:`ImageCrops` makes it, and
    ``dpe_hf.data.degrade.degrade(clean, seed=s)`` with ``s`` drawn from the example's rng
    (so a pure function of (seed, epoch, index)).
    """

    def __init__(self, dataset, crop, seed: int, *, max_side: int | None = 512, degrade_config=None,
                 augment: bool = True, **kwargs):
        super().__init__(dataset, crop, seed, max_side=max_side, augment=augment, **kwargs)
        self.degrade_config = degrade_config

    def _make(self, images, rng):
        from dpe_hf.data.degrade import degrade

        clean = self._crop_one(images[0], rng)
        seed = int(rng.integers(0, 2**31 - 1))
        degraded, _ = degrade(clean, seed=seed, config=self.degrade_config)
        return degraded, clean


class MixedPairs:
    """Interleave example streams; each step picks stream ``i`` with probability ``weights[i]``.

    The pick of step ``t`` is a pure function of ``(seed, t)``, and the state holds ``t`` and
    every stream's state, so the mix is deterministic and resumable. Stops when a picked stream
    is exhausted (the crop streams are infinite unless given ``epochs``).
    """

    def __init__(self, streams: Sequence, weights: Sequence[float], seed: int):
        self.streams = list(streams)
        if not self.streams:
            raise ValueError("MixedPairs needs at least one stream")
        w = np.asarray(list(weights), dtype=np.float64)
        if w.shape != (len(self.streams),):
            raise ValueError(f"{len(self.streams)} streams but {w.size} weights")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"weights must be finite, >= 0 and not all 0, got {list(weights)}")
        self.weights = w / w.sum()
        self._cum = np.cumsum(self.weights)
        self.seed = _check_seed(seed)
        self.step = 0

    def __iter__(self):
        return self

    def _pick(self, step: int) -> int:
        u = np.random.default_rng([_TAG_MIX, self.seed, step]).random()
        return min(int(np.searchsorted(self._cum, u, side="right")), len(self.streams) - 1)

    def __next__(self):
        i = self._pick(self.step)
        item = next(self.streams[i])
        self.step += 1
        return item

    def state_dict(self) -> dict:
        return {"kind": "MixedPairs", "seed": self.seed, "step": self.step,
                "streams": [s.state_dict() for s in self.streams]}

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != "MixedPairs" or len(state["streams"]) != len(self.streams):
            raise ValueError("state is not from a MixedPairs over the same number of streams")
        if int(state["seed"]) != self.seed:
            raise ValueError(
                f"state was saved with seed {state['seed']}, this mix has seed {self.seed}"
            )
        self.step = int(state["step"])
        for s, st in zip(self.streams, state["streams"]):
            s.load_state_dict(st)


def batches(stream: Iterable, batch_size: int, *, drop_last: bool = False) -> Iterator:
    """Stack consecutive examples of ``stream`` into batches of ``batch_size``.

    Tensors become (B, ...) tensors; tuples (or lists) of tensors become tuples of stacked
    tensors. The last, smaller batch of a finite stream is yielded unless ``drop_last``.
    Consumes ``stream`` lazily, so ``stream.state_dict()`` between batches marks a batch boundary.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    it = iter(stream)

    def stack(items: list):
        first = items[0]
        if isinstance(first, (tuple, list)):
            return tuple(torch.stack([it_[j] for it_ in items]) for j in range(len(first)))
        return torch.stack(items)

    while True:
        chunk = []
        for item in it:
            chunk.append(item)
            if len(chunk) == batch_size:
                break
        if not chunk or (drop_last and len(chunk) < batch_size):
            return
        yield stack(chunk)
        if len(chunk) < batch_size:
            return
