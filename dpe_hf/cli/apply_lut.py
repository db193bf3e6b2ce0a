"""`dpe apply-lut`: map photos through a 3D LUT (.cube), with the batch conventions of enhance."""

from __future__ import annotations

import time
from pathlib import Path

from dpe_hf.batch import FALLBACK_EXT, launched_processes
from dpe_hf.cli.common import (EXIT_USAGE, add_batch_options, batch_workers, error, output_folder_is_a_file, plan_batch,
                               run_batch_command)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "apply-lut", help="apply a 3D LUT (.cube) to photos (files, folders, glob patterns)",
        description="Map every pixel of each photo through a 3D LUT and write the results to DIR "
                    "as {stem}{suffix}.{ext}, with the conventions of dpe enhance (metadata and "
                    "16-bit kept, inputs never overwritten, one line per bad file, exit 1 if any "
                    "failed).")
    p.add_argument("lut", metavar="LUT.cube", help="the 3D LUT (.cube, domain 0..1)")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders (their images) or glob patterns such as 'photos/*.jpg'")
    p.add_argument("--interp", choices=("trilinear", "tetrahedral"), default="trilinear",
                   help="interpolation between the LUT's nodes (default trilinear)")
    add_batch_options(p, suffix="_lut",
                      ext_help=f"output format: jpg, png, webp or tif (default: the input's format; "
                               f"{FALLBACK_EXT} for formats that cannot be written)",
                      overlap_auto_means="on: applying a LUT is cheap, reading and writing the photos is the work")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run `dpe apply-lut`; under a launcher, each process maps its share of the photos."""
    with launched_processes() as processes:
        return _run(args, processes)


def _run(args, processes) -> int:
    start = time.perf_counter()
    if output_folder_is_a_file(Path(args.output)):
        return EXIT_USAGE
    from dpe_hf.export.lut import apply_lut, read_cube

    try:
        lut = read_cube(args.lut)
    except ValueError as exc:
        error(str(exc))
        return EXIT_USAGE
    jobs = plan_batch(args, processes)
    return run_batch_command(args, jobs, lambda job, image, meta: apply_lut(image, lut, interp=args.interp),
                             "apply-lut", start, workers=batch_workers(args, jobs)[0], processes=processes)
