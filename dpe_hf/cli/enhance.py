"""`dpe enhance`: enhance photos (files, folders, glob patterns) into an output folder."""

from __future__ import annotations

import time
from pathlib import Path

from dpe_hf.batch import DEFAULT_SUFFIX, FALLBACK_EXT, RUNTIMES, BatchJob, launched_processes
from dpe_hf.cli.common import (
    EXIT_USAGE,
    MODEL_HELP,
    add_batch_options,
    batch_workers,
    error,
    fraction,
    int_range,
    load_model,
    output_folder_is_a_file,
    plan_batch,
    run_batch_command,
)
from dpe_hf.defaults import DEFAULT_MAX_SIDE, DEFAULT_TILE, METHODS, MIN_TILE


def add_parser(sub) -> None:
    p = sub.add_parser(
        "enhance", help="enhance photos (files, folders, glob patterns) into an output folder",
        description="Enhance photos with a DPE generator and write them to DIR as "
                    "{stem}{suffix}.{ext}. EXIF and ICC profiles are carried over: a photo in another "
                    "colour space than sRGB (Display P3, Adobe RGB...) is shown to the network in "
                    "sRGB and written back in its own space, with its own profile. 16-bit PNG/TIFF "
                    "stay 16-bit. An input is never overwritten. A bad file is reported on stderr "
                    "and the batch goes on; the exit code is 1 if any file failed.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files (JPEG, PNG, WebP, TIFF, BMP, GIF; camera RAW and HEIF/HEIC with "
                        "the [raw] and [heif] extras), folders (their images) or glob patterns such "
                        "as 'photos/*.jpg'")
    p.add_argument("--model", metavar="PATH_OR_REPO_ID", help=MODEL_HELP)
    p.add_argument("--strength", type=fraction, default=1.0,
                   help="blend between the input (0) and the full enhancement (1); default 1")
    p.add_argument("--auto-exposure", action="store_true",
                   help="re-expose each photo to the same brightness before the network sees it, so "
                        "that photos of a shoot taken at different exposures come out alike (the "
                        "models otherwise keep a dark photo darker, as expert C does)")
    p.add_argument("--levels", type=fraction, default=None, metavar="WEIGHT",
                   help="mix this much (0-1) per-channel auto-levels of the network's copy into its "
                        "result: a second opinion on black point, white point and colour cast, "
                        "at no network cost (docs/results.md); default: the model's own weight "
                        "(`levels` in its config.json, 0 when it has none or with --auto-exposure); "
                        "0: the network alone")
    p.add_argument("--max-side", type=int_range(1), default=DEFAULT_MAX_SIDE,
                   help="long side of the copy the network runs on (guided, residual) or takes its look "
                        f"from (tiled) (default {DEFAULT_MAX_SIDE})")
    p.add_argument("--method", choices=METHODS, default="guided",
                   help="how the result reaches full size: a bilateral grid of local colour "
                        "transforms fitted at --max-side (guided, default), the upsampled residual, "
                        "or the network itself on overlapping tiles of the full-size photo, all with "
                        "the look of the copy at --max-side (tiled: the most faithful and the "
                        "slowest, meant for a GPU; PyTorch models only)")
    p.add_argument("--tile", type=int_range(MIN_TILE), metavar="N",
                   help=f"with --method tiled: tile side in pixels, rounded up to a multiple of 16; "
                        f"tiles overlap by 64 px (default {DEFAULT_TILE})")
    p.add_argument("--device", default="auto", metavar="auto|cpu|cuda[:N]|mps",
                   help="where the network runs (default auto: cuda, then mps, then cpu)")
    p.add_argument("--runtime", choices=RUNTIMES, default="auto",
                   help="what runs the network: auto (default) runs a bundled model's ONNX copy with "
                        "onnxruntime when the network runs on the CPU, without importing torch (the same "
                        "network; outputs within one level), and torch otherwise; torch or onnx to insist")
    p.add_argument("--save-lut", action="store_true",
                   help="also write {stem}.cube next to each output: a 3D LUT of the photo's colour "
                        "change, fitted on the low-resolution copy the network saw")
    add_batch_options(p, suffix=DEFAULT_SUFFIX,
                      ext_help="output format: jpg, png, webp or tif (default: the input's format; "
                               f"{FALLBACK_EXT} for formats that cannot be written, such as GIF and BMP)",
                      overlap_auto_means="on: on 2 CPU cores, 24%% less time per 12 MP photo and "
                                         "about 200 MB more memory (docs/fullres.md)")
    p.set_defaults(func=run)


def run(args, generator=None) -> int:
    """Run `dpe enhance` with parsed `args`; `generator`: a model already loaded, instead of
    loading args.model (benchmarks load it once, outside the timing). Under a launcher, each
    process enhances its share of the photos, on its own device with --device auto."""
    with launched_processes() as processes:
        return _run(args, generator, processes)


def _run(args, generator, processes) -> int:
    start = time.perf_counter()
    if output_folder_is_a_file(Path(args.output)):
        return EXIT_USAGE
    if args.tile is not None and args.method != "tiled":
        error("--tile goes with --method tiled")
        return EXIT_USAGE
    jobs = plan_batch(args, processes)
    # the photos at once decide each photo's threads, the network's session's among them
    workers, threads = batch_workers(args, jobs)
    if generator is None:
        device = processes.device if processes is not None and args.device == "auto" else args.device
        runtime = "torch" if args.method == "tiled" and args.runtime == "auto" else args.runtime
        generator = load_model(args.model, device, runtime, threads)
        if generator is None:
            return EXIT_USAGE

    from dpe_hf.enhancer import Enhancer

    options = dict(max_side=args.max_side, strength=args.strength, method=args.method,
                   auto_exposure=args.auto_exposure, levels=args.levels, threads=threads)
    if args.method == "tiled":
        options["tile"] = args.tile or DEFAULT_TILE
    try:
        enhancer = Enhancer(generator, **options)
    except ValueError as exc:  # e.g. tiles for an ONNX model, which computes its look per tile
        error(f"{args.model}: {exc}")
        return EXIT_USAGE

    def process(job: BatchJob, image, meta):
        if args.save_lut:
            return _save_lut(enhancer, image, meta, job, args)
        return enhancer(image, icc_profile=meta.icc_profile)

    return run_batch_command(args, jobs, process, "enhance", start, workers=workers, processes=processes)


def _save_lut(enhancer, image, meta, job: BatchJob, args):
    """--save-lut: the photo enhanced, and beside it the LUT of the pair the network saw in that run."""
    from dpe_hf.errors import ImageWriteError
    from dpe_hf.export.lut import fit_lut, write_cube

    path = job.output.with_name(f"{job.source.stem}.cube")
    if path.exists() and not args.overwrite:
        raise ImageWriteError(path, "exists; use --overwrite")
    result, pair = enhancer.with_pair(image, icc_profile=meta.icc_profile)
    job.output.parent.mkdir(parents=True, exist_ok=True)
    write_cube(path, fit_lut(pair.low_in, pair.low_out), title=f"DPE {job.source.stem}")
    return result
