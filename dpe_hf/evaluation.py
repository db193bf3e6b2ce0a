"""Paired evaluation: match predictions to references by file stem and score each pair.

One implementation for `dpe eval` and `benchmarks/quality.py`:

* `pair_by_stem` finds the pairs (with `dpe_hf.imageio.list_images`);
* `evaluate_pairs` reads each pair, optionally turns the first image into a prediction with a
  `method` (an enhancer, a baseline), and scores it with `dpe_hf.metrics.evaluate_pair`;
* `mean_scores` and `format_table` summarise;
* `exposure_consistency` scores how little a method's result depends on the exposure, from
  several exposures of the same scene (no reference needed).

Images are read with `dpe_hf.imageio.read_image` and compared as float in [0, 1]: uint8 / 255,
uint16 / 65535. torch is imported only when something is scored.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dpe_hf.errors import DPEError
from dpe_hf.imageio import DEFAULT_MAX_PIXELS, list_images, read_image, to_float32

__all__ = [
    "METRICS",
    "Pairing",
    "EvalResult",
    "pair_by_stem",
    "score_arrays",
    "evaluate_pairs",
    "mean_scores",
    "format_table",
    "pairwise_psnr",
    "exposure_consistency",
]

#: (key in the score dicts, column header, decimals)
METRICS: tuple[tuple[str, str, int], ...] = (("psnr", "PSNR", 2), ("ssim", "SSIM", 3), ("delta_e", "ΔE00", 2))

#: A method maps the first image of a pair (as read: H x W x 3 uint8/uint16) to the prediction
#: (uint8, uint16 or float in [0, 1]).
Method = Callable[[np.ndarray], np.ndarray]


@dataclass
class Pairing:
    pairs: list[tuple[str, Path, Path]]  # (stem, first, reference), sorted by stem
    only_first: list[str] = field(default_factory=list)  # stems without a reference
    only_ref: list[str] = field(default_factory=list)  # stems without a first image
    ambiguous: list[str] = field(default_factory=list)  # "DIR: stem 's' matches a.jpg, a.png"


def _by_stem(folder: Path, strip_suffix: str) -> tuple[dict[str, Path], list[str]]:
    groups: dict[str, list[Path]] = {}
    for p in list_images(folder):
        stem = p.stem
        if strip_suffix and stem.endswith(strip_suffix):
            stem = stem[: -len(strip_suffix)]
        groups.setdefault(stem, []).append(p)
    unique = {s: ps[0] for s, ps in groups.items() if len(ps) == 1}
    ambiguous = [f"{folder}: stem '{s}' matches several files ({', '.join(p.name for p in ps)})"
                 for s, ps in sorted(groups.items()) if len(ps) > 1]
    return unique, ambiguous


def pair_by_stem(first_dir: str | Path, ref_dir: str | Path, *, first_suffix: str = "") -> Pairing:
    """Pair the images of two folders by file stem (not recursive).

    `first_suffix` is removed from the stems of `first_dir` before matching (e.g. "_enhanced"
    for the outputs of `dpe enhance`). A stem that names several files in one folder
    (a.jpg and a.png) is ambiguous and left out.
    """
    first, amb1 = _by_stem(Path(first_dir), first_suffix)
    ref, amb2 = _by_stem(Path(ref_dir), "")
    common = sorted(first.keys() & ref.keys())
    return Pairing(
        pairs=[(s, first[s], ref[s]) for s in common],
        only_first=sorted(first.keys() - ref.keys()),
        only_ref=sorted(ref.keys() - first.keys()),
        ambiguous=amb1 + amb2,
    )


def _as_float(image: np.ndarray) -> np.ndarray:
    out = to_float32(image)
    return np.clip(out, 0.0, 1.0) if image.dtype.kind == "f" else out


def score_arrays(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """PSNR / SSIM / ΔE00 of two H x W x 3 images (uint8, uint16 or float in [0, 1]).

    Raises ValueError if the sizes differ."""
    import torch

    from dpe_hf.metrics import evaluate_pair

    if pred.shape != ref.shape:
        raise ValueError(f"size {pred.shape[1]}x{pred.shape[0]} differs from the reference's "
                         f"{ref.shape[1]}x{ref.shape[0]}")

    def tensor(a: np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(_as_float(a))).permute(2, 0, 1)[None]

    return evaluate_pair(tensor(pred), tensor(ref))


@dataclass
class EvalResult:
    rows: list[dict]  # {"name": stem, "psnr", "ssim", "delta_e"}, in pair order
    failed: list[dict]  # {"path": ..., "reason": ...}

    @property
    def mean(self) -> dict[str, float] | None:
        return mean_scores(self.rows)


def evaluate_pairs(pairs: Iterable[tuple[str, Path, Path]], method: Method | None = None, *,
                   max_pixels: int | None = DEFAULT_MAX_PIXELS,
                   on_error: Callable[[str], None] | None = None,
                   progress: Callable[[Iterable], Iterable] | None = None) -> EvalResult:
    """Score every (stem, first, reference) pair: the prediction is `method(first image)`, or the
    first image itself when `method` is None. A pair that cannot be read or whose sizes differ
    is recorded in `failed` (and passed to `on_error` as one "PATH: reason" line); the rest go on.
    """
    rows, failed = [], []
    pairs = list(pairs)
    for stem, first_path, ref_path in (progress(pairs) if progress else pairs):
        path = first_path
        try:
            first, _ = read_image(first_path, max_pixels=max_pixels)
            path = ref_path
            ref, _ = read_image(ref_path, max_pixels=max_pixels)
            path = first_path
            pred = first if method is None else method(first)
            scores = score_arrays(pred, ref)
        except DPEError as exc:
            reason = getattr(exc, "reason", str(exc))
            failed.append({"path": getattr(exc, "path", str(path)), "reason": reason})
            if on_error:
                on_error(str(exc))
            continue
        except ValueError as exc:
            failed.append({"path": str(first_path), "reason": str(exc)})
            if on_error:
                on_error(f"{first_path}: {exc} ({ref_path})")
            continue
        rows.append({"name": stem, **scores})
    return EvalResult(rows, failed)


def mean_scores(rows: Sequence[dict]) -> dict[str, float] | None:
    """Mean of each metric over the rows (None for no rows); a PSNR of inf keeps the mean inf."""
    if not rows:
        return None
    return {key: math.fsum(r[key] for r in rows) / len(rows) for key, _, _ in METRICS}


def _header_text(header: str, encoding: str | None) -> str:
    try:
        header.encode(encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return header.replace("Δ", "d")
    return header


def format_table(rows: Sequence[dict], *, name_header: str = "image", mean: bool = True,
                 encoding: str | None = "utf-8", extra: Sequence[tuple[str, str, int]] = ()) -> str:
    """A plain-text table: one line per row ("name" + metrics), then a "mean" line if `mean`.
    PSNR with 2 decimals, SSIM 3, ΔE00 2; `extra` adds (key, header, decimals) columns, blank
    where a row has no such key. `encoding`: the stream's, so that "ΔE00" becomes "dE00" where
    it cannot be printed."""
    lines = [dict(r) for r in rows]
    if mean and rows:
        lines.append({"name": "mean", **mean_scores(rows)})
    columns = [(key, _header_text(h, encoding), dec) for key, h, dec in (*METRICS, *extra)]
    width = max([len(name_header), *(len(str(r["name"])) for r in lines)])
    widths = [max(7, len(h)) for _, h, _ in columns]
    out = [f"{name_header:<{width}}" + "".join(f"  {h:>{w}}" for (_, h, _), w in zip(columns, widths))]
    for r in lines:
        cells = "".join(f"  {r[key]:>{w}.{dec}f}" if key in r else "  " + " " * w
                        for (key, _, dec), w in zip(columns, widths))
        out.append(f"{r['name']:<{width}}{cells}")
    return "\n".join(out)


def pairwise_psnr(images: Sequence) -> float:
    """Mean PSNR (dB) over all pairs of `images`, (1, 3, H, W) float tensors of one size; inf
    when they are all equal."""
    from dpe_hf.metrics import psnr

    scores = [psnr(a, b).item() for a, b in itertools.combinations(images, 2)]
    return math.fsum(scores) / len(scores)


def _at_common_size(images: Sequence, long_side: int) -> list:
    """The images resized to one size: the first one's aspect ratio at long side `long_side`
    (exposures of one scene may have been saved at different sizes)."""
    from dpe_hf.ops.resize import resize_long_side, resize_to

    size = tuple(resize_long_side(images[0], long_side, allow_upscale=True).shape[-2:])
    return [resize_to(x, size) for x in images]


def exposure_consistency(scenes: Mapping[str, Sequence[str | Path]], method: Method | None = None, *,
                         long_side: int = 512, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> dict:
    """How little `method`'s result depends on the exposure: each scene is the same view at
    several exposures; every exposure is enhanced (`method`, or left as is when None), the
    results are brought to long side `long_side`, and the scene's score is the mean PSNR over
    all pairs of exposures. Higher is more consistent; identical results give inf.

    Returns {"mean": mean over scenes, "per_scene": {scene: score}}."""
    def read(path):
        return read_image(path, max_pixels=max_pixels)[0]

    return bracket_consistency({scene: [lambda p=p: read(p) for p in paths] for scene, paths in scenes.items()},
                               method, long_side=long_side)


def bracket_consistency(scenes: Mapping[str, Sequence[Callable[[], np.ndarray]]], method: Method | None = None,
                        *, long_side: int = 512) -> dict:
    """`exposure_consistency` on exposures given as loaders (each returns an H x W x 3 uint
    array), e.g. exposures made by editing one photo."""
    import torch

    per_scene = {}
    for scene, loaders in scenes.items():
        if len(loaders) < 2:
            raise ValueError(f"scene {scene!r}: {len(loaders)} exposure(s), need 2 or more")
        results = []
        for load in loaders:
            image = load()
            out = _as_float(image if method is None else method(image))
            results.append(torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1)[None])
        per_scene[scene] = pairwise_psnr(_at_common_size(results, long_side))
    return {"mean": math.fsum(per_scene.values()) / len(per_scene), "per_scene": per_scene}
