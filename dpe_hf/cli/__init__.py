"""The `dpe` command line: enhance photos in batch and evaluate results against references.

    dpe enhance photos/ *.jpg -o enhanced/ [--model PATH_OR_REPO_ID] [--strength 0.7]
    dpe eval --pred enhanced/ --ref expert/ [--suffix _enhanced]
    dpe eval --model PATH_OR_REPO_ID --input photos/ --ref expert/
    dpe export onnx --model PATH_OR_REPO_ID -o model.onnx
    dpe lut --model PATH_OR_REPO_ID --images photos/ -o style.cube
    dpe apply-lut style.cube photos/ -o graded/ [--interp tetrahedral]

One module per command, each with `add_parser(sub)` that declares its options and a `run(args)`
that runs it; `common` holds what they share, and `dpe_hf.batch` the batch engine that enhance
and apply-lut drive. Start-up stays light: torch, numpy, PIL and huggingface_hub are imported
inside the commands, so `dpe --help` answers at once.

Exit codes: 0 success, 1 some files failed (the others were done), 2 usage error or nothing
could be done (no model, no pairs).
"""

from __future__ import annotations

import argparse
import sys

from dpe_hf import __version__
from dpe_hf.cli import apply_lut, enhance, eval, export, lut

COMMANDS = (enhance, eval, export, lut, apply_lut)  # in the order of `dpe --help`


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dpe", description="Deep Photo Enhancer: enhance photos and evaluate enhancers.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
