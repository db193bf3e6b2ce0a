"""`dpe lut`: fit one 3D LUT (.cube) to a model's average look over many photos."""

from __future__ import annotations

import sys
from pathlib import Path

from dpe_hf.batch import collect_inputs
from dpe_hf.cli.common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    MODEL_HELP,
    error,
    fraction,
    int_range,
    load_model,
    progress,
    refuse_existing_file,
)
from dpe_hf.defaults import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE


def add_parser(sub) -> None:
    p = sub.add_parser(
        "lut", help="fit one 3D LUT (.cube) to a model's average look over many photos",
        description="Run the model on each photo (at --max-side, as dpe enhance does) and fit one "
                    "3D LUT to all the input/output colour pairs, each photo weighing alike: the "
                    "model's average colour change, for tools that take .cube files (ffmpeg lut3d, "
                    "Resolve, Photoshop...). A LUT maps colours only; the model also adapts to "
                    "each photo and to local content, which no LUT reproduces.")
    p.add_argument("--model", metavar="PATH_OR_REPO_ID", help=MODEL_HELP)
    p.add_argument("--images", required=True, nargs="+", metavar="DIR",
                   help="folders, files or glob patterns of photos to fit on")
    p.add_argument("-o", "--output", required=True, metavar="FILE.cube", help="the .cube file to write")
    p.add_argument("--size", type=int_range(2, 256), default=33, help="lattice nodes per axis (default 33)")
    p.add_argument("--max-side", type=int_range(1), default=DEFAULT_MAX_SIDE,
                   help=f"long side at which the model runs (default {DEFAULT_MAX_SIDE})")
    p.add_argument("--strength", type=fraction, default=1.0, help="enhancement strength (default 1)")
    p.add_argument("--title", help="TITLE line of the file (default: the model's name)")
    p.add_argument("--recursive", action="store_true", help="also take the images of subfolders")
    p.add_argument("--max-pixels", type=int_range(0), default=DEFAULT_MAX_PIXELS,
                   help=f"refuse larger images, 0 for no limit (default {DEFAULT_MAX_PIXELS})")
    p.add_argument("--overwrite", action="store_true", help="replace the file if it exists")
    p.set_defaults(func=run)


def run(args) -> int:
    out = Path(args.output)
    if refuse_existing_file(out, args.overwrite):
        return EXIT_USAGE
    generator = load_model(args.model)
    if generator is None:
        return EXIT_USAGE

    from dpe_hf.enhancer import Enhancer
    from dpe_hf.errors import DPEError
    from dpe_hf.export.lut import LutFitter, write_cube
    from dpe_hf.imageio import read_image

    enhancer = Enhancer(generator, max_side=args.max_side, strength=args.strength)

    fitter = LutFitter(args.size)
    used, failed = 0, 0
    for src, _, reason in progress(collect_inputs(args.images, out, recursive=args.recursive), "lut"):
        try:
            if reason is not None:
                error(f"{src}: {reason}")
            else:
                image, meta = read_image(src, max_pixels=args.max_pixels or None)
                pair = enhancer.look(image, icc_profile=meta.icc_profile)
                fitter.add(pair.low_in, pair.low_out)
                used += 1
                continue
        except DPEError as exc:
            error(str(exc))
        except (ValueError, RuntimeError, MemoryError, OSError) as exc:
            error(f"{src}: {type(exc).__name__}: {exc}")
        failed += 1
    if used == 0:
        error("no photo could be used; nothing written")
        return EXIT_USAGE
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_cube(out, fitter.solve(), title=args.title or f"DPE {Path(str(args.model or 'dpe-expertC')).name}")
    except OSError as exc:
        error(f"{out}: cannot write ({exc.strerror or exc})")
        return EXIT_USAGE
    print(f"wrote {out} ({args.size}^3, fitted on {used} photo(s){f', {failed} failed' if failed else ''})",
          file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK
