"""Does expert C undo the camera's exposure? Compares the brightness of each fivek-dev input with
that of its retouch.

    python benchmarks/expert_exposure.py [--data ../shared/data]

Prints, per pair, the log-average luminance (`dpe_hf.ops.exposure.log_average_luminance`) of the
input and of expert C's retouch, then the least-squares line log(retouch) = slope * log(input) +
b and the correlation over the pairs. A retoucher who brought every photo to one brightness would
give slope 0 (what `dpe enhance --auto-exposure` does before the network); slope 1 keeps the
camera's exposure differences, above 1 widens them. The inputs' median is
`dpe_hf.ops.exposure.AUTO_EXPOSURE_KEY`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as `python benchmarks/expert_exposure.py`: import from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SUBSET, add_data_option, data_folder, select_pairs  # noqa: E402
from dpe_hf.imageio import read_image  # noqa: E402
from dpe_hf.ops.exposure import log_average_luminance  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_option(parser)
    args = parser.parse_args(argv)
    data = data_folder(parser, args.data)
    pairs = select_pairs(parser, data / SUBSET, None)
    levels = np.array([[log_average_luminance(read_image(path)[0]) for path in (first, expert)]
                       for _, first, expert in pairs])
    print(f"{'pair':8} {'input':>7} {'expert C':>9} {'ratio':>6}")
    for (stem, _, _), (before, after) in zip(pairs, levels):
        print(f"{stem:8} {before:7.3f} {after:9.3f} {after / before:6.2f}")
    logs = np.log(levels)
    slope, _ = np.polyfit(logs[:, 0], logs[:, 1], 1)
    correlation = np.corrcoef(logs[:, 0], logs[:, 1])[0, 1]
    print(f"log-average luminance over {len(pairs)} pairs: log(expert C) = {slope:.2f} * log(input) + b, "
          f"correlation {correlation:.2f}; median of the inputs {np.median(levels[:, 0]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
