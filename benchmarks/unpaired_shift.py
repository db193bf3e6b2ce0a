"""Does an enhancer move ordinary photos toward the "photos I like" set? An unpaired measure.

    python benchmarks/unpaired_shift.py [--data ../shared/data] [--model M ...] [--json]

Unpaired training has no ground truth, so we compare *distributions*: every photo is reduced to
four global statistics that an unpaired critic can see and a photographer would name,

* brightness      mean sRGB luma (Rec. 601);
* contrast        standard deviation of luma;
* colourfulness   Hasler & Süsstrunk (2003): sqrt(std_rg² + std_yb²) + 0.3 sqrt(mean_rg² + mean_yb²);
* shadows         share of pixels with luma below 0.1 (dark, crushed regions);

and the distance between two sets is the Fréchet distance between Gaussians fitted to these
vectors (FID's formula on 4 named features instead of 2048 Inception ones). The table shows,
for each method, the distance of its outputs to the target set (`DATA/target/*`; `--target`
picks folders, e.g. `target/fivek-expertC-256` for expert C's look; a retouch of a fivek-dev
photo is never part of it) and the mean of each statistic. Lower distance = closer to the photos you like.

The "ordinary" photos enhanced are ones that no GAN recipe trains on (its sources are
`source/*`): the 14 FiveK inputs (`fivek-dev/input`; the supervised dpe-expertC saw 9 of them)
and the 64 exposures of `fullres/sice-scenes`. `--sources` picks other folders.
Rows `expert C` (the FiveK retouches) and `target` (the target set against itself, the floor
given its size) are references.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run from a checkout without installing

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_SOURCES = ("fivek-dev/input", "fullres/sice-scenes")
TARGET = "target"
FEATURES = ("brightness", "contrast", "colourfulness", "shadows")
ANALYSIS_SIDE = 256  # statistics of a photo's global look; full resolution adds nothing


def photo_statistics(image: np.ndarray) -> np.ndarray:
    """The four global statistics of one float RGB image in [0, 1] (H, W, 3)."""
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    rg, yb = r - g, 0.5 * (r + g) - b
    colourfulness = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    return np.array([luma.mean(), luma.std(), colourfulness, (luma < 0.1).mean()], dtype=np.float64)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the rows of `a` and of `b` (N, D).

    ||mu_a - mu_b||² + tr(S_a + S_b - 2 (S_a S_b)^½); the matrix square root's trace is the sum
    of the square roots of the eigenvalues of S_a S_b (real and >= 0 up to rounding).
    """
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    eig = np.linalg.eigvals(cov_a @ cov_b)
    cross = np.sqrt(np.clip(eig.real, 0.0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * cross)


def _small_float(image: np.ndarray) -> np.ndarray:
    from dpe_hf.imageio import to_float32
    from dpe_hf.ops.guided import downscale_long_side

    return to_float32(downscale_long_side(image, ANALYSIS_SIDE))


def _files(folders: list[Path]) -> list[Path]:
    from dpe_hf.imageio import list_images

    return [f for folder in folders for f in list_images(folder, recursive=True)]


def statistics_of(files: list[Path], method=None) -> np.ndarray:
    """Statistics of each photo (enhanced at full size by `method`, uint in, uint out, if given)."""
    from dpe_hf.imageio import read_image

    rows = []
    for f in files:
        image, _ = read_image(f)
        if method is not None:
            image = method(image)
        rows.append(photo_statistics(_small_float(image)))
    return np.stack(rows)


def model_method(spec: str):
    from dpe_hf.hub import load_generator
    from dpe_hf.inference import enhance_array

    generator = load_generator(spec)
    return lambda image: enhance_array(generator, image)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model", action="extend", nargs="+", default=[], metavar="M",
                        help="model folders, run folders, bundled names or repo ids")
    parser.add_argument("--sources", nargs="+", default=list(DEFAULT_SOURCES),
                        help="folders under DATA with the ordinary photos to enhance")
    parser.add_argument("--target", nargs="+", default=[TARGET],
                        help="folders under DATA with the photos to move toward (default: all of "
                             "target/); a retouch of a fivek-dev photo is left out")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"error: {args.data}: no data folder (pass --data)", file=sys.stderr)
        return 2

    missing = [f for f in (*args.target, *args.sources) if not (args.data / f).is_dir()]
    if missing:
        print(f"error: {args.data / missing[0]}: no such folder (--target and --sources are folders under DATA)",
              file=sys.stderr)
        return 2

    from dpe_hf.data.fivek import fivek_id
    from dpe_hf.errors import ModelLoadError

    try:  # every model loads before the slow part starts
        methods = {spec: model_method(spec) for spec in args.model}
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    dev_ids = {fivek_id(p.name) for p in _files([args.data / "fivek-dev"])} - {None}
    target_files = [p for p in _files([args.data / t for t in args.target]) if fivek_id(p.name) not in dev_ids]
    sources = _files([args.data / s for s in args.sources])
    for name, files in (("--target", target_files), ("--sources", sources)):
        if not files:
            print(f"error: {name}: no photos in {', '.join(getattr(args, name[2:]))} under {args.data}",
                  file=sys.stderr)
            return 2
    target = statistics_of(target_files)
    half = len(target) // 2
    rows = {"target (half vs half)": (target[:half], frechet_distance(target[:half], target[half:]))}
    inputs = statistics_of(sources)
    rows["identity (inputs)"] = (inputs, frechet_distance(inputs, target))
    expert = args.data / "fivek-dev" / "expertC"
    if expert.is_dir():
        stats = statistics_of(_files([expert]))
        rows["expert C (FiveK)"] = (stats, frechet_distance(stats, target))
    for spec, method in methods.items():
        stats = statistics_of(sources, method)
        rows[spec] = (stats, frechet_distance(stats, target))

    if args.json:
        print(json.dumps({name: {"frechet": d, **dict(zip(FEATURES, s.mean(0).round(4).tolist()))}
                          for name, (s, d) in rows.items()}, indent=2))
        return 0
    print(f"{len(sources)} ordinary photos ({', '.join(args.sources)}) vs {len(target)} target photos")
    print(f"{'method':34s} {'Fréchet':>8s} " + " ".join(f"{f:>13s}" for f in FEATURES))
    for name, (stats, distance) in rows.items():
        print(f"{name:34s} {distance:8.4f} " + " ".join(f"{v:13.3f}" for v in stats.mean(0)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
