"""How close a per-photo 3D LUT comes to the network, and how fast LUTs apply.

    OMP_NUM_THREADS=1 python benchmarks/lut.py [--model M] [--data ../shared/data] [--size 33]
                                               [--smoothness 1e-5] [--speed-only] [--json]

Quality, on the FiveK dev pairs (DATA/fivek-dev/input and expertC; the photos are at long side
512, the size the network runs at): for each photo, the network's output; a 33^3 LUT fitted to
the (input, output) pair the network saw (`dpe enhance --save-lut`), applied to the input; one
LUT fitted over all the photos (`dpe lut`); and, as the ceiling of any global colour map, a LUT
fitted to (input, expert C) itself. Each row gives the mean PSNR against the network's output
and against expert C.

Speed: `apply_lut` on a 12 MP (4000 x 3000) 8-bit photo, trilinear and tetrahedral, median of
3 runs, and the time to fit one per-photo LUT.

Model: --model (folder, run folder, bundled name, hub repo id); by default the bundled
dpe-expertC when checkpoints/dpe-expertC exists, else a random DPEGenerator (seed 0, PyTorch's
default init so that it changes colours; the table says which). Run with OMP_NUM_THREADS=1 on
a shared machine; the speed numbers are for the threads torch is given.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import astuple
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run from a checkout without installing

from dpe_hf.enhancer import Enhancer  # noqa: E402
from dpe_hf.export.lut import (  # noqa: E402
    DEFAULT_SIZE,
    DEFAULT_SMOOTHNESS,
    LutFitter,
    apply_lut,
    fit_lut,
    identity_lut,
)

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
SUBSET = "fivek-dev"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two images in [0, 1] (float) or uint8."""
    a, b = (x.astype(np.float64) / 255.0 if x.dtype == np.uint8 else x.astype(np.float64) for x in (a, b))
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def load_model(spec: str | None):
    import torch

    from dpe_hf.hub import load_generator
    from dpe_hf.models.generator import DPEGenerator

    if spec is not None:
        return load_generator(spec), spec
    if (REPO_ROOT / "checkpoints" / "dpe-expertC" / "config.json").is_file():
        return load_generator("dpe-expertC"), "dpe-expertC (bundled)"
    torch.manual_seed(0)
    return DPEGenerator(init_scale=None).eval(), "random DPEGenerator (seed 0, default init; no bundled dpe-expertC)"


def quality(generator, pairs, size: int, smoothness: float) -> tuple[list[dict], float]:
    from dpe_hf.imageio import read_image, to_float32

    per_photo, style = LutFitter(size), []
    sums: dict[str, list[float]] = {}
    fit_seconds = []

    def add(name: str, image: np.ndarray, net: np.ndarray, expert: np.ndarray) -> None:
        sums.setdefault(name, [0.0, 0.0])
        sums[name][0] += psnr(image, net)
        sums[name][1] += psnr(image, expert)

    for _stem, src, ref in pairs:
        x = to_float32(read_image(src)[0])
        expert = to_float32(read_image(ref)[0])
        if expert.shape != x.shape:
            raise SystemExit(f"{ref}: size {expert.shape} differs from the input's {x.shape}")
        low_in, low_out = astuple(Enhancer(generator, max_side=max(x.shape[:2])).look(x))  # the photos are at 512
        net = low_out
        start = time.perf_counter()
        lut = fit_lut(low_in, low_out, size, smoothness=smoothness)
        fit_seconds.append(time.perf_counter() - start)
        per_photo.add(low_in, low_out)
        style.append((x, net, expert))
        add("input (identity)", x, net, expert)
        add("network", net, net, expert)
        add(f"per-photo LUT {size}^3, trilinear", apply_lut(x, lut), net, expert)
        add(f"per-photo LUT {size}^3, tetrahedral", apply_lut(x, lut, "tetrahedral"), net, expert)
        oracle = fit_lut(x, expert, size, smoothness=smoothness)
        add("LUT fitted to expert C (ceiling)", apply_lut(x, oracle), net, expert)
    one = per_photo.solve(smoothness=smoothness)
    for x, net, expert in style:
        add("one LUT over all photos (dpe lut)", apply_lut(x, one), net, expert)
    n = len(pairs)
    rows = [{"method": k, "psnr_vs_network": v[0] / n, "psnr_vs_expertC": v[1] / n} for k, v in sums.items()]
    return rows, statistics.median(fit_seconds)


def speed(size: int, repeats: int = 3) -> dict[str, float]:
    rng = np.random.default_rng(0)
    # A smooth 12 MP photo-like image (random noise would be a cache-hostile worst case).
    h, w = 3000, 4000
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.stack([xx / w, yy / h, 0.5 + 0.5 * np.sin(xx / 300 + yy / 500)], axis=-1)
    image = np.clip(image + rng.normal(0, 0.02, image.shape).astype(np.float32), 0, 1)
    image = (image * 255 + 0.5).astype(np.uint8)
    lut = np.clip(identity_lut(size) ** 0.8 * 1.05, 0, 1)
    out = {}
    for interp in ("trilinear", "tetrahedral"):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            apply_lut(image, lut, interp)
            times.append(time.perf_counter() - start)
        out[interp] = statistics.median(times)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model folder, run folder, bundled name or hub repo id")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"data folder holding {SUBSET}/ (default: ../shared/data next to the repo)")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="LUT nodes per axis (default 33)")
    parser.add_argument("--smoothness", type=float, default=DEFAULT_SMOOTHNESS,
                        help=f"fit_lut's smoothness (default {DEFAULT_SMOOTHNESS:g})")
    parser.add_argument("--speed-only", action="store_true", help="skip the quality part")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    import torch

    result: dict = {"threads": torch.get_num_threads()}
    if not args.speed_only:
        from dpe_hf.evaluation import pair_by_stem

        root = args.data / SUBSET
        if not (root / "input").is_dir() or not (root / "expertC").is_dir():
            parser.error(f"{root}: expected input/ and expertC/ folders in it")
        pairs = pair_by_stem(root / "input", root / "expertC").pairs
        generator, name = load_model(args.model)
        rows, fit_s = quality(generator, pairs, args.size, args.smoothness)
        result.update(model=name, pairs=len(pairs), quality=rows, fit_seconds_median=fit_s)
    result["apply_12mp_seconds_median_of_3"] = speed(args.size)

    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    if "quality" in result:
        print(f"{SUBSET}: {result['pairs']} pairs at long side 512; model: {result['model']}; "
              f"smoothness {args.smoothness:g}")
        width = max(len(r["method"]) for r in result["quality"])
        print(f"{'method':<{width}}  PSNR vs network  PSNR vs expert C")
        for r in result["quality"]:
            print(f"{r['method']:<{width}}  {r['psnr_vs_network']:>15.2f}  {r['psnr_vs_expertC']:>16.2f}")
        print(f"fit one {args.size}^3 LUT (median): {result['fit_seconds_median']:.2f} s")
    s = result["apply_12mp_seconds_median_of_3"]
    print(f"apply a {args.size}^3 LUT to a 12 MP 8-bit photo ({result['threads']} thread(s), median of 3): "
          f"trilinear {s['trilinear']:.2f} s, tetrahedral {s['tetrahedral']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
