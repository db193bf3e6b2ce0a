"""Where a model's distance to expert C comes from: its global tone and colour, or the rest.

    python benchmarks/error_split.py [--data ../shared/data] [--model M ...] [--ids a0676,a3102]

For every fivek-dev pair (or those of `--ids`) and every model, prints the PSNR of the output
against expert C, and the PSNR after the output's best global correction: each channel mapped
by the affine function a*x + b that brings it closest to expert C's (least squares, clipped to
[0, 1]). That correction knows the answer, so it is no method: the gap between the two columns
is what a perfect per-photo choice of brightness, contrast and colour balance would still gain;
what remains below the second column is local (detail, spatially varying tone). The input
itself (identity) is scored the same way.

`--curve-from IDS` adds a method that adapts to nothing: one tone curve per channel, the mean
expert C value for each of 64 input levels over the pairs IDS (e.g. the ids a model trained on),
applied to every photo. A model that chooses per photo should beat it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality  # noqa: E402  (benchmarks/quality.py: data folder, pair selection, model loading)

from dpe_hf.data.io import read_image, to_float32  # noqa: E402
from dpe_hf.evaluation import score_arrays  # noqa: E402


def best_affine_per_channel(output: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`output` with each channel replaced by the least-squares fit a*x + b to `reference`'s."""
    fitted = np.empty_like(output)
    for c in range(output.shape[-1]):
        x, y = output[..., c].ravel().astype(np.float64), reference[..., c].ravel().astype(np.float64)
        design = np.stack([x, np.ones_like(x)], axis=1)
        (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
        fitted[..., c] = np.clip(a * output[..., c] + b, 0.0, 1.0)
    return fitted


def mean_curve_method(pairs, bins: int = 64):
    """The per-channel curve that maps each input level to expert C's mean output for it over
    `pairs` (levels never seen are left as they are), as a method on uint8 / uint16 arrays."""
    sums, counts = np.zeros((3, bins)), np.zeros((3, bins))
    for _, input_path, expert_path in pairs:
        image, reference = to_float32(read_image(input_path)[0]), to_float32(read_image(expert_path)[0])
        for c in range(3):
            level = np.minimum((image[..., c] * bins).astype(int), bins - 1).ravel()
            sums[c] += np.bincount(level, reference[..., c].ravel(), bins)
            counts[c] += np.bincount(level, None, bins)
    centres = (np.arange(bins) + 0.5) / bins
    curves = np.where(counts > 0, sums / np.maximum(counts, 1), centres)

    def method(image: np.ndarray) -> np.ndarray:
        x = to_float32(image)
        return np.stack([np.interp(x[..., c], centres, curves[c]) for c in range(3)], axis=-1)

    return method


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="data folder holding fivek-dev/")
    parser.add_argument("--model", action="extend", nargs="+", default=[], metavar="M",
                        help=f"model folder, run folder, bundled name or hub repo id (default {quality.BUNDLED})")
    parser.add_argument("--ids", help="comma-separated stems to evaluate (default: all pairs)")
    parser.add_argument("--curve-from", metavar="IDS", help="also score the mean curve of these pairs")
    args = parser.parse_args(argv)
    data = quality.data_folder(parser, args.data)
    pairs = quality.select_pairs(parser, data / quality.SUBSET, args.ids)
    methods = {"identity": None}
    if args.curve_from:
        methods["mean curve"] = mean_curve_method(quality.select_pairs(parser, data / quality.SUBSET, args.curve_from))
    methods.update({spec: quality.model_method(spec) for spec in args.model or [quality.BUNDLED]})

    print("| method | pair | PSNR (dB) | after the best global affine map (dB) |")
    print("|---|---|---|---|")
    for name, method in methods.items():
        plain, fitted = [], []
        for stem, input_path, expert_path in pairs:
            image, _ = read_image(input_path)
            reference = to_float32(read_image(expert_path)[0])
            output = to_float32(image if method is None else method(image))
            plain.append(score_arrays(output, reference)["psnr"])
            fitted.append(score_arrays(best_affine_per_channel(output, reference), reference)["psnr"])
            print(f"| {name} | {stem} | {plain[-1]:.2f} | {fitted[-1]:.2f} |")
        print(f"| **{name}** | **mean of {len(pairs)}** | **{np.mean(plain):.2f}** | **{np.mean(fitted):.2f}** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
