"""What the choice of downscaler for the network's low-resolution copy changes.

    python benchmarks/resize_choice.py [--data ../shared/data] [--model dpe-expertC]

Training decoded its photos with torch's antialiased bilinear resize, inference used OpenCV's
area averaging (INTER_AREA) and the app fitted its LUT on Lanczos previews; all now use
`dpe_hf.ops.guided.downscale_long_side` (area). This prints, for the two others against area:
* copy PSNR: the low-resolution copies themselves, of the fivek-dev inputs at long side 256
  (what training sees) and of full-size photos at 512 (what the network sees when enhancing);
* output PSNR: the model's output on each copy (at 512, full-size photos only);
* ms: the time to make the 512 copy of a 12 MP photo from its uint8 array (median of 5).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

if __package__ in (None, ""):  # run as `python benchmarks/resize_choice.py`: import from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SUBSET, add_data_option, data_folder  # noqa: E402
from dpe_hf.evaluation import score_arrays  # noqa: E402
from dpe_hf.hub import load_generator  # noqa: E402
from dpe_hf.imageio import read_image, to_float32  # noqa: E402
from dpe_hf.inference import enhance  # noqa: E402
from dpe_hf.ops.guided import downscale_long_side  # noqa: E402
from dpe_hf.ops.resize import resize_long_side  # noqa: E402


def torch_bilinear(image: np.ndarray, side: int) -> np.ndarray:
    x = torch.from_numpy(to_float32(image)).permute(2, 0, 1)
    y = resize_long_side(x, side, antialias=True).permute(1, 2, 0).clamp(0, 1)
    return (y * 255).round().to(torch.uint8).numpy()


def _size(image: np.ndarray, side: int) -> tuple[int, int]:
    h, w = image.shape[:2]
    long, short = max(h, w), min(h, w)
    new_short = max(1, (2 * short * side + long) // (2 * long))
    return (side, new_short) if h >= w else (new_short, side)


def lanczos(image: np.ndarray, side: int) -> np.ndarray:
    h, w = _size(image, side)
    size = (w, h)
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0))


OTHERS = {"torch bilinear+antialias (training)": torch_bilinear, "Lanczos (app LUT previews)": lanczos}


def median_ms(fn, image: np.ndarray, side: int, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(image, side)
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_option(parser)
    parser.add_argument("--model", default="dpe-expertC")
    parser.add_argument("--photos", type=int, default=8, help="full-size photos of target/debian to use")
    args = parser.parse_args(argv)
    args.data = data_folder(parser, args.data)
    inputs = sorted((args.data / SUBSET / "input").glob("*.png"))
    photos = sorted((args.data / "target" / "debian").glob("*.jpg"))[:args.photos]
    generator = load_generator(args.model)
    fullsize = [read_image(p)[0] for p in photos]
    big = max(fullsize, key=lambda a: a.shape[0] * a.shape[1])
    scale = (12e6 / (big.shape[0] * big.shape[1])) ** 0.5
    twelve = np.asarray(Image.fromarray(big).resize((round(big.shape[1] * scale), round(big.shape[0] * scale))))
    print(f"{len(inputs)} fivek-dev inputs at 256, {len(photos)} full-size photos of target/debian at 512, "
          f"model {args.model}; PSNR against the area copy (higher: closer)")
    print(f"{'downscaler':<38} {'copy 256':>9} {'copy 512':>9} {'output':>8} {'ms 12 MP':>9}")
    area_ms = median_ms(downscale_long_side, twelve, 512)
    print(f"{'area (OpenCV INTER_AREA), the one now':<38} {'':>9} {'':>9} {'':>8} {area_ms:9.1f}")
    for name, fn in OTHERS.items():
        copy256 = statistics.mean(psnr_of(fn(a, 256), downscale_long_side(a, 256))
                                  for a in (read_image(p)[0] for p in inputs))
        copies = [(fn(a, 512), downscale_long_side(a, 512)) for a in fullsize]
        copy512 = statistics.mean(psnr_of(o, r) for o, r in copies)
        output = statistics.mean(psnr_of(enhance(generator, o), enhance(generator, r)) for o, r in copies)
        print(f"{name:<38} {copy256:9.2f} {copy512:9.2f} {output:8.2f} {median_ms(fn, twelve, 512):9.1f}")
    return 0


def psnr_of(a: np.ndarray, b: np.ndarray) -> float:
    return score_arrays(a, b)["psnr"]


if __name__ == "__main__":
    raise SystemExit(main())
