"""`dpe eval`: PSNR / SSIM / ΔE00 of predictions (or of a model's output) against references."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dpe_hf.cli.common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    error,
    fraction,
    int_range,
    jsonable,
    load_model,
    progress,
    warn,
)
from dpe_hf.defaults import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE


def add_parser(sub) -> None:
    p = sub.add_parser(
        "eval", help="PSNR / SSIM / ΔE00 of predictions (or of a model's output) against references",
        description="Pair images by file stem and print PSNR, SSIM and CIEDE2000 (ΔE00) per image and "
                    "their mean. Either compare a folder of predictions (--pred) to the references, "
                    "or enhance the images of --input with --model in memory and compare those.")
    p.add_argument("--ref", required=True, metavar="DIR", help="folder of reference (target) images")
    p.add_argument("--pred", metavar="DIR", help="folder of predictions (e.g. the output of dpe enhance)")
    p.add_argument("--suffix", default="", metavar="SUFFIX",
                   help="removed from prediction stems before pairing (e.g. _enhanced); default none")
    p.add_argument("--model", metavar="PATH_OR_REPO_ID", help="enhance --input with this model")
    p.add_argument("--input", metavar="DIR", help="folder of inputs to enhance (with --model)")
    p.add_argument("--strength", type=fraction, default=1.0, help="enhancement strength (with --model)")
    p.add_argument("--max-side", type=int_range(1), default=DEFAULT_MAX_SIDE,
                   help=f"network resolution, long side (with --model; default {DEFAULT_MAX_SIDE})")
    p.add_argument("--max-pixels", type=int_range(0), default=DEFAULT_MAX_PIXELS,
                   help=f"refuse larger images, 0 for no limit (default {DEFAULT_MAX_PIXELS})")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    if (args.pred is None) == (args.model is None and args.input is None):
        error("give either --pred DIR, or --model M with --input DIR")
        return EXIT_USAGE
    if args.pred is None and (args.model is None or args.input is None):
        error("--model and --input go together")
        return EXIT_USAGE
    first_dir = Path(args.pred if args.pred is not None else args.input)
    for d in (first_dir, Path(args.ref)):
        if not d.is_dir():
            error(f"{d}: not a folder")
            return EXIT_USAGE

    method = None
    if args.model is not None:
        generator = load_model(args.model)
        if generator is None:
            return EXIT_USAGE
        from dpe_hf.enhancer import Enhancer

        method = Enhancer(generator, max_side=args.max_side, strength=args.strength)

    from dpe_hf.evaluation import evaluate_pairs, format_table, pair_by_stem

    pairing = pair_by_stem(first_dir, args.ref, first_suffix=args.suffix if args.pred else "")
    for line in pairing.ambiguous:
        warn(f"{line}; left out")
    if pairing.only_first:
        warn(f"{len(pairing.only_first)} stem(s) only in {first_dir}: {', '.join(pairing.only_first)}")
    if pairing.only_ref:
        warn(f"{len(pairing.only_ref)} stem(s) only in {args.ref}: {', '.join(pairing.only_ref)}")
    if not pairing.pairs:
        error(f"no image stems in common between {first_dir} and {args.ref}")
        return EXIT_USAGE

    result = evaluate_pairs(pairing.pairs, method, max_pixels=args.max_pixels or None,
                            on_error=error, progress=lambda it: progress(it, "eval"))
    if args.json:
        def clean(row):
            return {k: (jsonable(v) if isinstance(v, float) else v) for k, v in row.items()}

        mean = result.mean
        print(json.dumps({
            "images": [clean(r) for r in result.rows],
            "mean": clean(mean) if mean else None,
            "failed": result.failed,
            "only_pred" if args.pred else "only_input": pairing.only_first,
            "only_ref": pairing.only_ref,
        }, indent=2))
    elif result.rows:
        print(format_table(result.rows, encoding=getattr(sys.stdout, "encoding", None)))
    if not result.rows:
        error("no pair could be evaluated")
    return EXIT_SOME_FAILED if result.failed else EXIT_OK
