"""Paired quality benchmark on the FiveK dev pairs: PSNR / SSIM / ΔE00 against expert C.

    python benchmarks/quality.py [--data ../shared/data] [--model M ...] [--ids a4514,a2803] [--json]

Reads DATA/fivek-dev/input/*.png and DATA/fivek-dev/expertC/*.png (14 pairs, same names) and
prints one row per method with the mean over the pairs:

* identity          the input itself (the floor any enhancer must beat);
* auto-levels       each channel stretched so its 0.5 and 99.5 percentiles go to 0 and 1, clipped;
* PIL autocontrast  PIL.ImageOps.autocontrast(img, cutoff=0.5);
* every --model     loaded with dpe_hf.hub.load_generator, run with dpe_hf.inference.enhance.

`--ids` restricts the pairs (e.g. to a held-out subset the models were not trained on).
Pairing and scoring are those of `dpe eval` (dpe_hf.evaluation).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run from a checkout without installing

from dpe_hf.evaluation import evaluate_pairs, format_table, pair_by_stem  # noqa: E402

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
SUBSET = "fivek-dev"


def identity(image: np.ndarray) -> np.ndarray:
    return image


def auto_levels(image: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Per channel: the `low` and `high` percentiles go to 0 and 1, clipped (float out)."""
    from dpe_hf.data.io import to_float32

    x = to_float32(image)
    lo = np.percentile(x, low, axis=(0, 1))
    hi = np.percentile(x, high, axis=(0, 1))
    return np.clip((x - lo) / np.maximum(hi - lo, 1e-6), 0.0, 1.0)


def pil_autocontrast(image: np.ndarray) -> np.ndarray:
    """PIL's per-channel autocontrast with 0.5 % cut at each end (8-bit)."""
    from PIL import Image, ImageOps

    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return np.asarray(ImageOps.autocontrast(Image.fromarray(image), cutoff=0.5))


def model_method(spec: str):
    from dpe_hf.hub import load_generator
    from dpe_hf.inference import enhance

    generator = load_generator(spec)
    return lambda image: enhance(generator, image)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None,
                        help=f"data folder holding {SUBSET}/ (default: ../shared/data next to the repo)")
    parser.add_argument("--model", action="extend", nargs="+", default=[], metavar="M",
                        help="model folder, run folder, bundled name or hub repo id (repeatable)")
    parser.add_argument("--ids", help="comma-separated stems to evaluate (default: all pairs)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    data = args.data
    if data is None:
        if not DEFAULT_DATA.is_dir():
            parser.error(f"no data folder at {DEFAULT_DATA}; pass --data DIR (the folder that holds {SUBSET}/)")
        data = DEFAULT_DATA
    root = data / SUBSET
    if not (root / "input").is_dir() or not (root / "expertC").is_dir():
        parser.error(f"{root}: expected input/ and expertC/ folders in it")

    pairs = pair_by_stem(root / "input", root / "expertC").pairs
    if args.ids:
        wanted = [s.strip() for s in args.ids.split(",") if s.strip()]
        unknown = sorted(set(wanted) - {stem for stem, _, _ in pairs})
        if unknown:
            parser.error(f"--ids: no pair named {', '.join(unknown)} in {root}")
        pairs = [p for p in pairs if p[0] in wanted]

    methods = {"identity": identity, "auto-levels": auto_levels, "PIL autocontrast": pil_autocontrast}
    from dpe_hf.errors import ModelLoadError

    for spec in args.model:
        try:
            methods[spec] = model_method(spec)
        except ModelLoadError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    start = time.perf_counter()
    rows, failed = [], []
    for name, method in methods.items():
        result = evaluate_pairs(pairs, method, on_error=lambda m: print(f"error: {m}", file=sys.stderr))
        failed += result.failed
        if result.rows:
            rows.append({"name": name, **result.mean, "per_image": result.rows})

    if args.json:
        print(json.dumps({"data": str(root), "ids": [p[0] for p in pairs], "methods": rows,
                          "failed": failed, "seconds": round(time.perf_counter() - start, 1)}, indent=2))
    else:
        print(f"{SUBSET}: {len(pairs)} pairs, mean over pairs (vs expert C)")
        print(format_table(rows, name_header="method", mean=False, encoding=sys.stdout.encoding))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
