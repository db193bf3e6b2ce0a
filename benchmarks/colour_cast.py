"""Does a method remove, keep or amplify a colour cast? A test with a known cast.

    python benchmarks/colour_cast.py [--data ../shared/data] [--model M ...] [--levels W] [--ids IDS] [--json]

Every fivek-dev input is given a warm and a cool cast: a white-balance change in linear light,
R times e^c and B times e^-c (`--cast`, c = 0.2 by default, about a quarter of a stop each way;
`dpe_hf.data.degrade.apply_edit`). Each method runs on the photo as it is and on both cast
copies. A photo's colour balance is the mean linear R, G and B over its pixels, as
(log R/G, log B/G). The cast is the change it makes to that balance in the input, and what
survives is the change it makes in the method's output. Their ratio, projected on the cast:

* transfer 1: the cast passes through (identity);
* 0: the method removes it (a photographer who neutralises it, as expert C does for most photos);
* above 1: the method amplifies it; below 0: it overcorrects.

Columns: the mean transfer of the warm and of the cool cast, the photos where either is
amplified (transfer above 1.1), and PSNR against expert C for the photo as it is and with each
cast (expert C's retouch of the photo without the cast is the answer: casts are removed). A
model trained on some of the pairs scores its PSNR optimistically on those; the transfer is a
property of the method on inputs it never saw, since no training photo had these casts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as `python benchmarks/colour_cast.py`: import from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SUBSET, add_data_option, data_folder, edited, model_method, select_pairs  # noqa: E402
from dpe_hf.baselines import auto_levels, identity  # noqa: E402

DEFAULT_CAST = 0.2
AMPLIFIED = 1.1  # a photo's cast counts as amplified when 10 % more of it comes out than went in


def with_cast(image: np.ndarray, cast: float) -> np.ndarray:
    """`image` (uint8 / uint16) with R times e^cast and B times e^-cast in linear light, 8-bit out."""
    from dpe_hf.data.degrade import EditParams

    return edited(image, EditParams(wb_log_r=cast, wb_log_b=-cast))


def balance(image: np.ndarray) -> np.ndarray:
    """(log R/G, log B/G) of the image's mean linear R, G, B."""
    import torch

    from dpe_hf.imageio import to_float32
    from dpe_hf.ops.color import srgb_to_linear

    linear = srgb_to_linear(torch.from_numpy(to_float32(image)).permute(2, 0, 1).double())
    r, g, b = (linear.mean(dim=(1, 2)) + 1e-4).log().tolist()
    return np.array([r - g, b - g])


def transfer(shift_in: np.ndarray, plain_out: np.ndarray, cast_out: np.ndarray) -> float:
    """The share of the input's cast (`shift_in`: the balance it moved the input by), projected
    on it, that survives between a method's output on the photo and on its cast copy."""
    shift_out = balance(cast_out) - balance(plain_out)
    return float(shift_out @ shift_in / (shift_in @ shift_in))


def score(methods: dict, pairs, cast: float) -> list[dict]:
    from dpe_hf.evaluation import score_arrays
    from dpe_hf.imageio import read_image

    rows = {name: {"name": name, "warm": [], "cool": [], "psnr": [], "psnr_warm": [], "psnr_cool": [],
                   "amplified": 0} for name in methods}
    for _, first, expert in pairs:
        image, reference = read_image(first)[0], read_image(expert)[0]
        casts = {"warm": with_cast(image, cast), "cool": with_cast(image, -cast)}
        shifts = {side: balance(cast_image) - balance(image) for side, cast_image in casts.items()}
        for name, method in methods.items():
            row, plain = rows[name], method(image)
            row["psnr"].append(score_arrays(plain, reference)["psnr"])
            worst = -np.inf
            for side, cast_image in casts.items():
                cast_out = method(cast_image)  # once: it is scored both ways
                row[side].append(transfer(shifts[side], plain, cast_out))
                row[f"psnr_{side}"].append(score_arrays(cast_out, reference)["psnr"])
                worst = max(worst, row[side][-1])
            row["amplified"] += worst > AMPLIFIED
    return [{**{k: (float(np.mean(v)) if isinstance(v, list) else v) for k, v in row.items()},
             "photos": len(pairs)} for row in rows.values()]


def format_rows(rows: list[dict]) -> str:
    head = f"{'method':<28} {'warm':>6} {'cool':>6} {'amplified':>9} {'PSNR':>6} {'warm':>6} {'cool':>6}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['name']:<28} {r['warm']:6.2f} {r['cool']:6.2f} {r['amplified']:>4}/{r['photos']:<4} "
                     f"{r['psnr']:6.2f} {r['psnr_warm']:6.2f} {r['psnr_cool']:6.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import functools

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_option(parser)
    parser.add_argument("--model", action="extend", nargs="+", default=[], metavar="M",
                        help="model folders, run folders, bundled names or repo ids")
    parser.add_argument("--levels", type=float, default=0.0, metavar="W",
                        help="also each model with W of auto-levels mixed in (`dpe enhance --levels W`)")
    parser.add_argument("--cast", type=float, default=DEFAULT_CAST, help="log gain of R (and -B), linear light")
    parser.add_argument("--ids", help="comma-separated stems (default: all pairs)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    data = data_folder(parser, args.data)
    pairs = select_pairs(parser, data / SUBSET, args.ids)
    from dpe_hf.errors import ModelLoadError

    methods = {"identity": identity, "auto-levels": auto_levels}
    try:
        for spec in args.model:
            method = model_method(spec)
            methods[spec] = functools.partial(method, levels=0.0)  # the network alone
            if args.levels:
                methods[f"{spec} + levels {args.levels:g}"] = functools.partial(method, levels=args.levels)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = score(methods, pairs, args.cast)
    if args.json:
        print(json.dumps({"cast": args.cast, "ids": [p[0] for p in pairs], "methods": rows}, indent=2))
    else:
        print(f"{SUBSET}: {len(pairs)} photos, cast ±{args.cast:g} (log R and -log B, linear light); transfer of "
              "the cast (1 kept, 0 removed, > 1 amplified), then PSNR vs expert C: as is, warm, cool")
        print(format_rows(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
