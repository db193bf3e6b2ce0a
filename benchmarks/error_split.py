"""Where a model's distance to expert C comes from: its global tone and colour, or the rest.

    python benchmarks/error_split.py [--data ../shared/data] [--model M ...] [--ids a0676,a3102]

For every fivek-dev pair (or those of `--ids`) and every model, prints the PSNR of the output
against expert C, and the PSNR after the output's best global correction: each channel mapped
by the affine function a*x + b that brings it closest to expert C's (least squares, clipped to
[0, 1]). That correction knows the answer, so it is no method: the gap between the two columns
is what a perfect per-photo choice of brightness, contrast and colour balance would still gain;
what remains below the second column is local (detail, spatially varying tone). The input
itself (identity) is scored the same way.

`--lut-from IDS` adds the method that adapts to nothing, `quality.py`'s "fixed LUT": one 33^3
colour LUT fitted to map the inputs of the pairs IDS to expert C, applied to every photo.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as `python benchmarks/error_split.py`: import from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (BUNDLED, SUBSET, add_data_option, data_folder, fixed_lut_method,  # noqa: E402
                               model_method, select_pairs)
from dpe_hf.baselines import identity  # noqa: E402
from dpe_hf.imageio import read_image, to_float32  # noqa: E402


def best_affine_per_channel(output: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`output` with each channel replaced by the least-squares fit a*x + b to `reference`'s."""
    fitted = np.empty_like(output)
    for c in range(output.shape[-1]):
        x, y = output[..., c].ravel().astype(np.float64), reference[..., c].ravel().astype(np.float64)
        design = np.stack([x, np.ones_like(x)], axis=1)
        (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
        fitted[..., c] = np.clip(a * output[..., c] + b, 0.0, 1.0)
    return fitted


def psnr(output: np.ndarray, reference: np.ndarray) -> float:
    """PSNR (dB) of two H x W x 3 float images, by `dpe_hf.metrics.psnr` (the only score used
    here, so SSIM and ΔE00 are not computed)."""
    import torch

    from dpe_hf.metrics import psnr as psnr_tensor

    return psnr_tensor(*(torch.from_numpy(x).permute(2, 0, 1) for x in (output, reference))).item()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_option(parser)
    parser.add_argument("--model", action="extend", nargs="+", default=[], metavar="M",
                        help=f"model folder, run folder, bundled name or hub repo id (default {BUNDLED})")
    parser.add_argument("--ids", help="comma-separated stems to evaluate (default: all pairs)")
    parser.add_argument("--lut-from", metavar="IDS", help="also score one LUT fitted to these pairs")
    args = parser.parse_args(argv)
    data = data_folder(parser, args.data)
    pairs = select_pairs(parser, data / SUBSET, args.ids)
    methods = {"identity": identity}
    if args.lut_from:
        methods["fixed LUT"] = fixed_lut_method(select_pairs(parser, data / SUBSET, args.lut_from))
    methods.update({spec: model_method(spec) for spec in args.model or [BUNDLED]})
    photos = [(stem, read_image(first)[0], to_float32(read_image(ref)[0])) for stem, first, ref in pairs]

    print("| method | pair | PSNR (dB) | after the best global affine map (dB) |")
    print("|---|---|---|---|")
    for name, method in methods.items():
        plain, fitted = [], []
        for stem, image, reference in photos:
            output = to_float32(method(image))
            plain.append(psnr(output, reference))
            fitted.append(psnr(best_affine_per_channel(output, reference), reference))
            print(f"| {name} | {stem} | {plain[-1]:.2f} | {fitted[-1]:.2f} |")
        print(f"| **{name}** | **mean of {len(pairs)}** | **{np.mean(plain):.2f}** | **{np.mean(fitted):.2f}** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
