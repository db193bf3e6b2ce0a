"""Does `--preset paired` learn a look of your own? A test with a known answer.

    python benchmarks/paired_look.py --start runs/fold1 [--steps 25 50 100 300] [--data ../shared/data]

"Your look" is expert C's retouch followed by a fixed edit (warmer, faded blacks, 25 % less
saturation: `your_look`). The preset trains on the 9 fivek-dev pairs of cross-validation fold 1
(camera rendering -> your look) for each step count, starting from `--start`, a model that never
saw the other 5 (the bundled recipe's fold-1 run: configs/dpe-expertC.yaml says how to train
it); every result is scored on those 5 against your look (PSNR / SSIM / ΔE00). Two rows frame
them: the start model as it is, and the start model followed by the same fixed edit, which is
what learning the look exactly (and nothing else) would give.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as `python benchmarks/paired_look.py`: import from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (REPO_ROOT, SUBSET, add_data_option, data_folder, model_method,  # noqa: E402
                               select_pairs)
from dpe_hf.evaluation import evaluate_pairs, format_table, mean_scores  # noqa: E402

TRAIN = "a2803 a2917 a3232 a4232 a4521 a4576 a4591 a4670 a4690".split()
HELD_OUT = "a0676 a3102 a4514 a4582 a4680".split()


def your_look(image: np.ndarray) -> np.ndarray:
    """The fixed edit, on uint8 RGB: 25 % less saturation, blacks lifted to 0.06, warmer."""
    x = image.astype(np.float32) / 255
    grey = x.mean(axis=2, keepdims=True)
    x = grey + 0.75 * (x - grey)
    x = (0.06 + 0.9 * x) * np.array([1.06, 1.0, 0.9], np.float32)
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def write_pairs(data: Path, root: Path) -> None:
    """root/fivek-dev/{input,expertC}: all 14 inputs, and expert C with your look (quality.py's
    layout, for scoring), and root/train/{before,after}: the 9 training pairs, for the preset."""
    from PIL import Image

    for sub in ("fivek-dev/input", "fivek-dev/expertC", "train/before", "train/after"):
        (root / sub).mkdir(parents=True)
    for path in sorted((data / SUBSET / "input").glob("*.png")):
        after = Image.fromarray(your_look(np.asarray(Image.open(data / SUBSET / "expertC" / path.name).convert("RGB"))))
        (root / "fivek-dev/input" / path.name).symlink_to(path.resolve())
        after.save(root / "fivek-dev/expertC" / path.name)
        if path.stem in TRAIN:
            (root / "train/before" / path.name).symlink_to(path.resolve())
            after.save(root / "train/after" / path.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", required=True, help="a model that never saw the 5 held-out pairs (runs/fold1)")
    parser.add_argument("--steps", type=int, nargs="+", default=[25, 50, 100, 300])
    add_data_option(parser)
    args = parser.parse_args(argv)
    data = data_folder(parser, args.data)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_pairs(data, root)
        pairs = select_pairs(parser, root / SUBSET, ",".join(HELD_OUT))
        start = model_method(args.start)
        methods = {"start model": start,
                   "start model + your look (the answer)": lambda image: your_look(np.asarray(start(image)))}
        for steps in args.steps:
            run = root / f"preset_{steps}"
            subprocess.run([sys.executable, str(REPO_ROOT / "train_accelerate.py"), "--preset", "paired",
                            "--input", str(root / "train/before"), "--expert", str(root / "train/after"),
                            "--output-dir", str(run), "--set", f"model.init_from={args.start}",
                            "--set", f"steps={steps}"], check=True, capture_output=True)
            methods[f"--preset paired, {steps} steps"] = model_method(str(run))
        rows = [{"name": name, **mean_scores(evaluate_pairs(pairs, method).rows)} for name, method in methods.items()]
    print(f"{SUBSET}: trained on {len(TRAIN)} pairs with your look, scored on the {len(HELD_OUT)} others")
    print(format_table(rows, name_header="method", mean=False, encoding=sys.stdout.encoding))
    return 0


if __name__ == "__main__":
    sys.exit(main())
