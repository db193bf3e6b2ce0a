"""The `dpe` command line: enhance photos in batch and evaluate results against references.

    dpe enhance photos/ *.jpg -o enhanced/ [--model PATH_OR_REPO_ID] [--strength 0.7]
    dpe eval --pred enhanced/ --ref expert/ [--suffix _enhanced]
    dpe eval --model PATH_OR_REPO_ID --input photos/ --ref expert/
    dpe export onnx --model PATH_OR_REPO_ID -o model.onnx
    dpe lut --model PATH_OR_REPO_ID --images photos/ -o style.cube
    dpe apply-lut style.cube photos/ -o graded/ [--interp tetrahedral]

Start-up stays light: torch, numpy, PIL and huggingface_hub are imported inside the
subcommands, so `dpe --help` answers at once. Each subcommand is one `_add_<name>` function
that declares its options and one `_cmd_<name>` function that runs it.

Exit codes: 0 success, 1 some files failed (the others were done), 2 usage error or nothing
could be done (no model, no pairs).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from dpe_hf import __version__

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_SUFFIX = "_enhanced"
DEFAULT_MAX_SIDE = 512  # == dpe_hf.inference.DEFAULT_MAX_SIDE (not imported: it pulls in torch)
DEFAULT_MAX_PIXELS = 100_000_000  # == dpe_hf.imageio.DEFAULT_MAX_PIXELS (keeps numpy/PIL out)
DEFAULT_TILE, MIN_TILE = 1024, 64  # == dpe_hf.inference.DEFAULT_TILE, MIN_TILE (torch stays out)
FALLBACK_EXT = "png"  # for inputs whose format cannot be written (GIF, BMP)
_GLOB_CHARS = set("*?[")


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _error(message: str) -> None:
    """One line on stderr; through tqdm so that a progress bar is not torn."""
    line = f"error: {message}"
    try:
        from tqdm import tqdm

        tqdm.write(line, file=sys.stderr)
    except ImportError:  # pragma: no cover - tqdm is a dependency
        print(line, file=sys.stderr)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _progress(items, desc: str, total: int | None = None):
    from tqdm import tqdm

    return tqdm(items, desc=desc, total=total, unit="img", file=sys.stderr, disable=not sys.stderr.isatty(),
                dynamic_ncols=True, leave=False)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _int_range(lo: int, hi: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(
                f"must be between {lo} and {hi}, got {value}" if hi is not None else f"must be >= {lo}, got {value}")
        return value

    return parse


def _load_model(spec: str | None, device: str = "cpu"):
    """The generator `spec` names, or None after printing the reason (the caller exits 2)."""
    from dpe_hf.errors import ModelLoadError
    from dpe_hf.hub import load_generator

    try:
        if spec is not None and str(spec).lower().endswith(".onnx"):
            # onnxruntime on the CPU: no device to resolve, and no torch import (start-up)
            return load_generator(spec)
        from dpe_hf.inference import resolve_device

        return load_generator(spec, device=resolve_device(device))
    except (ModelLoadError, ValueError) as exc:
        _error(str(exc))
        return None


def _jsonable(value: float) -> float | None:
    """Strict JSON has no inf/nan (PSNR of identical images is inf): write them as null."""
    return value if value == value and value not in (float("inf"), float("-inf")) else None


# --------------------------------------------------------------------------------------------
# dpe enhance
# --------------------------------------------------------------------------------------------


def _add_enhance(sub) -> None:
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
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (created if needed)")
    p.add_argument("--model", metavar="PATH_OR_REPO_ID",
                   help="model folder, training run folder, bundled name or hub repo id "
                        "(default: the bundled model)")
    p.add_argument("--strength", type=_fraction, default=1.0,
                   help="blend between the input (0) and the full enhancement (1); default 1")
    p.add_argument("--auto-exposure", action="store_true",
                   help="re-expose each photo to the same brightness before the network sees it, so "
                        "that photos of a shoot taken at different exposures come out alike (the "
                        "models otherwise keep a dark photo darker, as expert C does)")
    p.add_argument("--suffix", default=DEFAULT_SUFFIX,
                   help=f"added to each output's file stem (default {DEFAULT_SUFFIX!r}; write "
                        "--suffix=-x for one that starts with '-')")
    p.add_argument("--ext", metavar="EXT",
                   help="output format: jpg, png, webp or tif (default: the input's format; "
                        f"{FALLBACK_EXT} for formats that cannot be written, such as GIF and BMP)")
    p.add_argument("--quality", type=_int_range(1, 100), default=95,
                   help="JPEG/WebP quality, 1-100 (default 95)")
    p.add_argument("--max-side", type=_int_range(1), default=DEFAULT_MAX_SIDE,
                   help="long side of the copy the network runs on (guided, residual) or takes its look "
                        f"from (tiled) (default {DEFAULT_MAX_SIDE})")
    p.add_argument("--max-pixels", type=_int_range(0), default=DEFAULT_MAX_PIXELS,
                   help="refuse images with more pixels than this, 0 for no limit "
                        f"(default {DEFAULT_MAX_PIXELS})")
    p.add_argument("--method", choices=("guided", "residual", "tiled"), default="guided",
                   help="how the result reaches full size: a bilateral grid of local colour "
                        "transforms fitted at --max-side (guided, default), the upsampled residual, "
                        "or the network itself on overlapping tiles of the full-size photo, all with "
                        "the look of the copy at --max-side (tiled: the most faithful and the "
                        "slowest, meant for a GPU; PyTorch models only)")
    p.add_argument("--tile", type=_int_range(MIN_TILE), metavar="N",
                   help=f"with --method tiled: tile side in pixels, rounded up to a multiple of 16; "
                        f"tiles overlap by 64 px (default {DEFAULT_TILE})")
    p.add_argument("--device", default="auto", metavar="auto|cpu|cuda[:N]|mps",
                   help="where the network runs (default auto: cuda, then mps, then cpu)")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace outputs that exist")
    existing.add_argument("--skip-existing", action="store_true", help="skip inputs whose output exists")
    p.add_argument("--recursive", action="store_true",
                   help="also take the images of subfolders, mirroring them under DIR")
    p.add_argument("--save-lut", action="store_true",
                   help="also write {stem}.cube next to each output: a 3D LUT of the photo's colour "
                        "change, fitted on the low-resolution copy the network saw")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    _add_overlap_io(p, "on when the network runs on a GPU; off on a CPU, where decoding and "
                       "encoding compete with the network for the same cores (no gain measured on "
                       "2 cores, 120 MB more memory at 12 MP)")
    p.set_defaults(func=_cmd_enhance)


def _add_overlap_io(p: argparse.ArgumentParser, auto_means: str) -> None:
    p.add_argument("--overlap-io", choices=("auto", "on", "off"), default="auto",
                   help="decode the next photo and write the previous result in worker threads while "
                        f"the current one is processed (default auto: {auto_means})")


@dataclass
class _Job:
    source: Path  # as given (for messages)
    output: Path | None  # None: the input itself failed (see error)
    error: str | None = None  # reason, without the path


def _normalise_ext(ext: str | None) -> str | None:
    if ext is None:
        return None
    ext = ext.strip().lstrip(".")
    return ext or None


def _collect_inputs(specs: list[str], out_dir: Path, *,
                    recursive: bool) -> list[tuple[Path, Path | None, str | None]]:
    """Expand INPUTs into (file, output subfolder relative to DIR, None), in order. A folder or
    pattern that yields nothing comes back as (spec, None, reason). Paths that do not exist are
    kept as files: reading them gives the "file not found" error. Files under DIR are left out
    of folder scans, so that re-running on a folder that holds DIR does not enhance outputs."""
    from dpe_hf.imageio import list_images

    found: list[tuple[Path, Path | None, str | None]] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            images = list_images(path, recursive=recursive, exclude=out_dir)
            if not images:
                hint = "" if recursive else " (use --recursive for subfolders)"
                found.append((path, None, f"no images in this folder{hint}"))
            found.extend((img, img.relative_to(path).parent, None) for img in images)
        elif path.exists() or os.path.lexists(path) or not (_GLOB_CHARS & set(spec)):
            found.append((path, Path("."), None))  # a file, or a missing path read_image will name
        else:
            matches = sorted(Path(m) for m in glob.glob(spec, recursive=recursive) if Path(m).is_file())
            if not matches:
                found.append((path, None, "no file matches this pattern"))
            found.extend((m, Path("."), None) for m in matches)
    return found


def _plan(args, out_dir: Path) -> list[_Job]:
    """Decide every input's output; refuse outputs that would overwrite an input or collide."""
    from dpe_hf.imageio import WRITE_SUFFIXES

    ext = _normalise_ext(args.ext)
    found = _collect_inputs(args.inputs, out_dir, recursive=args.recursive)
    seen_inputs: set[Path] = set()
    entries = []
    for src, rel, err in found:
        if err is None and rel is not None:
            key = src.resolve()
            if key in seen_inputs:  # the same file through a folder and a pattern: once
                continue
            seen_inputs.add(key)
        entries.append((src, rel, err))

    jobs: list[_Job] = []
    planned: dict[Path, Path] = {}
    for src, rel, err in entries:
        if err is not None:
            jobs.append(_Job(src, None, err))
            continue
        out_ext = ext or src.suffix.lstrip(".")
        if ext is None and "." + out_ext.lower() not in WRITE_SUFFIXES:
            out_ext = FALLBACK_EXT
        output = out_dir / rel / f"{src.stem}{args.suffix}.{out_ext}"
        key = output.resolve()
        if key == src.resolve() or (output.exists() and src.exists() and os.path.samefile(output, src)):
            jobs.append(_Job(src, None, "output would overwrite the input"))
            continue
        if key in seen_inputs:
            jobs.append(_Job(src, None, f"output {output} would overwrite another input of this batch"))
            continue
        if key in planned:
            jobs.append(_Job(src, None, f"output {output} is also the output of {planned[key]}"))
            continue
        planned[key] = src
        jobs.append(_Job(src, output))
    return jobs


def _cmd_enhance(args) -> int:
    start = time.perf_counter()
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        _error(f"{out_dir}: the output path exists and is not a folder")
        return EXIT_USAGE
    if args.tile is not None and args.method != "tiled":
        _error("--tile goes with --method tiled")
        return EXIT_USAGE
    generator = _load_model(args.model, args.device)
    if generator is None:
        return EXIT_USAGE

    options = dict(max_side=args.max_side, strength=args.strength, method=args.method,
                   auto_exposure=args.auto_exposure)
    if getattr(generator, "numpy_native", False):  # OnnxGenerator: the torch-free path
        if args.method == "tiled":
            _error(f"{args.model}: --method tiled needs a PyTorch model (an ONNX model computes its "
                   "global feature from each tile, so tiles would differ in tone)")
            return EXIT_USAGE
        from dpe_hf.inference_numpy import enhance_numpy as enhance
    else:
        from dpe_hf.inference import enhance

        if args.method == "tiled":
            options["tile"] = args.tile or DEFAULT_TILE

    def process(job: _Job, image, meta):
        if args.save_lut:
            return _save_lut(generator, image, meta, job, args, options)
        return enhance(generator, image, icc_profile=meta.icc_profile, **options)

    overlap = args.overlap_io == "on" or (args.overlap_io == "auto" and _runs_on_accelerator(generator))
    return _run_batch(args, out_dir, process, "enhance", start, overlap=overlap)


def _runs_on_accelerator(generator) -> bool:
    if getattr(generator, "numpy_native", False):
        return False
    return next(generator.parameters()).device.type != "cpu"


def _save_lut(generator, image, meta, job: _Job, args, options: dict):
    """--save-lut: the photo enhanced, and beside it the LUT of the pair the network saw in that run."""
    from dpe_hf.enhancer import Enhancer
    from dpe_hf.errors import ImageWriteError
    from dpe_hf.export.lut import fit_lut, write_cube

    path = job.output.with_name(f"{job.source.stem}.cube")
    if path.exists() and not args.overwrite:
        raise ImageWriteError(path, "exists; use --overwrite")
    result, pair = Enhancer(generator, **options).with_pair(image, icc_profile=meta.icc_profile)
    job.output.parent.mkdir(parents=True, exist_ok=True)
    write_cube(path, fit_lut(pair.low_in, pair.low_out), title=f"DPE {job.source.stem}")
    return result


def _run_batch(args, out_dir: Path, process, desc: str, start: float, *, overlap: bool) -> int:
    """Plan the outputs of args.inputs, run `process(job, image, meta) -> image` on each, write the
    results and report: one line per bad file, exit 1 if any failed. Shared by `dpe enhance`
    and `dpe apply-lut` (their args: inputs, suffix, ext, recursive, overwrite, skip_existing,
    max_pixels, quality, json).

    I/O overlaps the work: while a photo is processed, a worker thread decodes the next one and
    another encodes and writes the previous result (`_BatchIO`). At most one photo is read ahead
    and one result waits to be written, so memory stays bounded; every outcome is recorded here,
    in order, and the files are the same byte for byte as with `overlap=False`."""
    from dpe_hf.imageio import read_image, write_image
    from dpe_hf.errors import DPEError

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _error(f"{out_dir}: cannot create the output folder ({exc.strerror or exc})")
        return EXIT_USAGE

    written: list[str] = []
    skipped: list[str] = []
    failed: list[dict] = []

    def fail(path: Path | str, reason: str) -> None:
        failed.append({"path": str(path), "reason": reason})
        _error(f"{path}: {reason}")

    def attempt(job: _Job, step):
        """step()'s value, or None once its failure is recorded (the batch goes on)."""
        try:
            return step()
        except DPEError as exc:
            failed.append({"path": getattr(exc, "path", str(job.source)),
                           "reason": getattr(exc, "reason", str(exc))})
            _error(str(exc))
        except (ValueError, RuntimeError, MemoryError, OSError) as exc:
            fail(job.source, f"{type(exc).__name__}: {exc}")
        return None

    def read(job: _Job):
        return read_image(job.source, max_pixels=args.max_pixels or None)

    def write(job: _Job, result, meta) -> Path:
        job.output.parent.mkdir(parents=True, exist_ok=True)
        return write_image(job.output, result, meta, quality=args.quality)

    def collect_writes(batch_io: _BatchIO) -> None:
        for job, writing in batch_io.written():
            if attempt(job, writing.result) is not None:
                written.append(str(job.output))

    todo = []
    for job in _plan(args, out_dir):
        if job.output is None:
            fail(job.source, job.error)
        elif not (job.output.exists() or os.path.lexists(job.output)) or args.overwrite:
            todo.append(job)
        elif args.skip_existing:
            skipped.append(str(job.output))
        else:
            fail(job.source, f"output {job.output} exists; use --overwrite or --skip-existing")

    with _BatchIO(overlap=overlap) as batch_io:
        for job, reading in _progress(batch_io.read_ahead(todo, read), desc, total=len(todo)):
            loaded = attempt(job, reading.result)
            result = None if loaded is None else attempt(job, lambda: process(job, *loaded))
            collect_writes(batch_io)  # the previous result, written while this one was computed
            if result is not None:
                batch_io.write(job, write, result, loaded[1])
        collect_writes(batch_io)

    seconds = time.perf_counter() - start
    if args.json:
        print(json.dumps({"written": written, "skipped": skipped, "failed": failed,
                          "seconds": round(seconds, 3)}, indent=2))
    else:
        parts = [f"{len(written)} written"]
        if skipped:
            parts.append(f"{len(skipped)} skipped")
        if failed:
            parts.append(f"{len(failed)} failed")
        print(f"{', '.join(parts)} ({seconds:.1f} s)", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


class _BatchIO:
    """Reads and writes of a batch, in two worker threads or (overlap=False) in the caller's.

    `read_ahead(jobs, read)` yields (job, future of read(job)) in order, the next job's read
    already running while a job is handed out; `write(job, fn, *args)` starts fn(job, *args)
    and `written()` hands back the write started before, once (its future is done or raises).
    Outcomes are only ever taken from futures in the caller's thread, so reporting stays in
    order and identical in both modes."""

    def __init__(self, overlap: bool):
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(2, thread_name_prefix="dpe-io") if overlap else None
        self._writing: list = []

    def _submit(self, fn, *args):
        from concurrent.futures import Future

        if self._pool is not None:
            return self._pool.submit(fn, *args)
        future = Future()  # no overlap: run now, keep the outcome for the caller
        try:
            future.set_result(fn(*args))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def read_ahead(self, jobs, read):
        ahead = None
        for job in jobs:
            current, ahead = ahead, (job, self._submit(read, job))
            if current is not None:
                yield current
        if ahead is not None:
            yield ahead

    def write(self, job, fn, *args) -> None:
        self._writing.append((job, self._submit(fn, job, *args)))

    def written(self) -> list:
        done, self._writing = self._writing, []
        return done

    def __enter__(self) -> _BatchIO:
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:  # on an interrupt: finish what runs (writes are atomic), drop the rest
            self._pool.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------------------------
# dpe eval
# --------------------------------------------------------------------------------------------


def _add_eval(sub) -> None:
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
    p.add_argument("--strength", type=_fraction, default=1.0, help="enhancement strength (with --model)")
    p.add_argument("--max-side", type=_int_range(1), default=DEFAULT_MAX_SIDE,
                   help=f"network resolution, long side (with --model; default {DEFAULT_MAX_SIDE})")
    p.add_argument("--max-pixels", type=_int_range(0), default=DEFAULT_MAX_PIXELS,
                   help=f"refuse larger images, 0 for no limit (default {DEFAULT_MAX_PIXELS})")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args) -> int:
    if (args.pred is None) == (args.model is None and args.input is None):
        _error("give either --pred DIR, or --model M with --input DIR")
        return EXIT_USAGE
    if args.pred is None and (args.model is None or args.input is None):
        _error("--model and --input go together")
        return EXIT_USAGE
    first_dir = Path(args.pred if args.pred is not None else args.input)
    for d in (first_dir, Path(args.ref)):
        if not d.is_dir():
            _error(f"{d}: not a folder")
            return EXIT_USAGE

    method = None
    if args.model is not None:
        generator = _load_model(args.model)
        if generator is None:
            return EXIT_USAGE
        from dpe_hf.inference import enhance

        def method(image):
            return enhance(generator, image, max_side=args.max_side, strength=args.strength)

    from dpe_hf.evaluation import evaluate_pairs, format_table, pair_by_stem

    pairing = pair_by_stem(first_dir, args.ref, first_suffix=args.suffix if args.pred else "")
    for line in pairing.ambiguous:
        _warn(f"{line}; left out")
    if pairing.only_first:
        _warn(f"{len(pairing.only_first)} stem(s) only in {first_dir}: {', '.join(pairing.only_first)}")
    if pairing.only_ref:
        _warn(f"{len(pairing.only_ref)} stem(s) only in {args.ref}: {', '.join(pairing.only_ref)}")
    if not pairing.pairs:
        _error(f"no image stems in common between {first_dir} and {args.ref}")
        return EXIT_USAGE

    result = evaluate_pairs(pairing.pairs, method, max_pixels=args.max_pixels or None,
                            on_error=_error, progress=lambda it: _progress(it, "eval"))
    if args.json:
        def clean(row):
            return {k: (_jsonable(v) if isinstance(v, float) else v) for k, v in row.items()}

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
        _error("no pair could be evaluated")
    return EXIT_SOME_FAILED if result.failed else EXIT_OK


# --------------------------------------------------------------------------------------------
# dpe export onnx
# --------------------------------------------------------------------------------------------


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="export a model for other tools (ONNX)",
                       description="Export a model for other tools.")
    targets = p.add_subparsers(dest="target", metavar="FORMAT", required=True)
    onnx = targets.add_parser(
        "onnx", help="an ONNX model with dynamic batch, height and width",
        description="Write the generator as an ONNX model (input 'image', output 'enhanced': "
                    "(B,3,H,W) float32 in [0,1], any H and W; the output is not clipped). Needs "
                    "the [export] extra (onnx, onnxruntime). The file is checked with onnxruntime "
                    "against PyTorch before this command succeeds.")
    onnx.add_argument("--model", metavar="PATH_OR_REPO_ID",
                      help="model folder, training run folder, bundled name or hub repo id "
                           "(default: the bundled model)")
    onnx.add_argument("-o", "--output", required=True, metavar="FILE.onnx", help="the ONNX file to write")
    onnx.add_argument("--opset", type=_int_range(17), default=17, help="ONNX opset, 17 or newer (default 17)")
    onnx.add_argument("--overwrite", action="store_true", help="replace the file if it exists")
    onnx.set_defaults(func=_cmd_export_onnx)


def _cmd_export_onnx(args) -> int:
    out = Path(args.output)
    if out.is_dir() or (out.exists() and not args.overwrite):
        _error(f"{out}: {'is a folder' if out.is_dir() else 'exists; use --overwrite'}")
        return EXIT_USAGE
    try:
        import onnxruntime  # noqa: F401  (checked here: the exporter needs onnx, the check onnxruntime)
        import onnx  # noqa: F401
    except ImportError as exc:
        _error(f"ONNX export needs the [export] extra: pip install 'dpe_hf[export]' ({exc.name} is missing)")
        return EXIT_USAGE
    generator = _load_model(args.model)
    if generator is None:
        return EXIT_USAGE
    if not hasattr(generator, "select_bn"):
        _error(f"{args.model}: already an exported model")
        return EXIT_USAGE
    import torch

    from dpe_hf.export.onnx import OnnxGenerator, export_onnx

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        export_onnx(generator, out, opset=args.opset)
    except OSError as exc:
        _error(f"{out}: cannot write ({exc.strerror or exc})")
        return EXIT_USAGE
    x = torch.rand(1, 3, 67, 91, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        difference = (OnnxGenerator(out)(x) - generator(x)).abs().max().item()
    if not difference <= 1e-3:
        _error(f"{out}: onnxruntime and PyTorch differ by up to {difference:.2g} on a test image; "
               "the file is written but should not be trusted")
        return EXIT_SOME_FAILED
    print(f"wrote {out} (opset {args.opset}; onnxruntime vs PyTorch at 67x91: max |diff| {difference:.1e})",
          file=sys.stderr)
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# dpe lut / dpe apply-lut
# --------------------------------------------------------------------------------------------


def _add_lut(sub) -> None:
    p = sub.add_parser(
        "lut", help="fit one 3D LUT (.cube) to a model's average look over many photos",
        description="Run the model on each photo (at --max-side, as dpe enhance does) and fit one "
                    "3D LUT to all the input/output colour pairs, each photo weighing alike: the "
                    "model's average colour change, for tools that take .cube files (ffmpeg lut3d, "
                    "Resolve, Photoshop...). A LUT maps colours only; the model also adapts to "
                    "each photo and to local content, which no LUT reproduces.")
    p.add_argument("--model", metavar="PATH_OR_REPO_ID",
                   help="model folder, training run folder, bundled name or hub repo id "
                        "(default: the bundled model)")
    p.add_argument("--images", required=True, nargs="+", metavar="DIR",
                   help="folders, files or glob patterns of photos to fit on")
    p.add_argument("-o", "--output", required=True, metavar="FILE.cube", help="the .cube file to write")
    p.add_argument("--size", type=_int_range(2, 256), default=33, help="lattice nodes per axis (default 33)")
    p.add_argument("--max-side", type=_int_range(1), default=DEFAULT_MAX_SIDE,
                   help=f"long side at which the model runs (default {DEFAULT_MAX_SIDE})")
    p.add_argument("--strength", type=_fraction, default=1.0, help="enhancement strength (default 1)")
    p.add_argument("--title", help="TITLE line of the file (default: the model's name)")
    p.add_argument("--recursive", action="store_true", help="also take the images of subfolders")
    p.add_argument("--max-pixels", type=_int_range(0), default=DEFAULT_MAX_PIXELS,
                   help=f"refuse larger images, 0 for no limit (default {DEFAULT_MAX_PIXELS})")
    p.add_argument("--overwrite", action="store_true", help="replace the file if it exists")
    p.set_defaults(func=_cmd_lut)


def _cmd_lut(args) -> int:
    out = Path(args.output)
    if out.is_dir() or (out.exists() and not args.overwrite):
        _error(f"{out}: {'is a folder' if out.is_dir() else 'exists; use --overwrite'}")
        return EXIT_USAGE
    generator = _load_model(args.model)
    if generator is None:
        return EXIT_USAGE

    from dpe_hf.imageio import read_image
    from dpe_hf.errors import DPEError
    from dpe_hf.export.lut import LutFitter, network_pair, write_cube

    fitter = LutFitter(args.size)
    used, failed = 0, 0
    for src, _, reason in _progress(_collect_inputs(args.images, out, recursive=args.recursive), "lut"):
        try:
            if reason is not None:
                _error(f"{src}: {reason}")
            else:
                image, _meta = read_image(src, max_pixels=args.max_pixels or None)
                fitter.add(*network_pair(generator, image, max_side=args.max_side, strength=args.strength))
                used += 1
                continue
        except DPEError as exc:
            _error(str(exc))
        except (ValueError, RuntimeError, MemoryError, OSError) as exc:
            _error(f"{src}: {type(exc).__name__}: {exc}")
        failed += 1
    if used == 0:
        _error("no photo could be used; nothing written")
        return EXIT_USAGE
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_cube(out, fitter.solve(), title=args.title or f"DPE {Path(str(args.model or 'dpe-expertC')).name}")
    except OSError as exc:
        _error(f"{out}: cannot write ({exc.strerror or exc})")
        return EXIT_USAGE
    print(f"wrote {out} ({args.size}^3, fitted on {used} photo(s){f', {failed} failed' if failed else ''})",
          file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _add_apply_lut(sub) -> None:
    p = sub.add_parser(
        "apply-lut", help="apply a 3D LUT (.cube) to photos (files, folders, glob patterns)",
        description="Map every pixel of each photo through a 3D LUT and write the results to DIR "
                    "as {stem}{suffix}.{ext}, with the conventions of dpe enhance (metadata and "
                    "16-bit kept, inputs never overwritten, one line per bad file, exit 1 if any "
                    "failed).")
    p.add_argument("lut", metavar="LUT.cube", help="the 3D LUT (.cube, domain 0..1)")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders (their images) or glob patterns such as 'photos/*.jpg'")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (created if needed)")
    p.add_argument("--interp", choices=("trilinear", "tetrahedral"), default="trilinear",
                   help="interpolation between the LUT's nodes (default trilinear)")
    p.add_argument("--suffix", default="_lut",
                   help="added to each output's file stem (default '_lut'; write --suffix=-x for one "
                        "that starts with '-')")
    p.add_argument("--ext", metavar="EXT",
                   help=f"output format: jpg, png, webp or tif (default: the input's format; {FALLBACK_EXT} "
                        "for formats that cannot be written)")
    p.add_argument("--quality", type=_int_range(1, 100), default=95, help="JPEG/WebP quality, 1-100 (default 95)")
    p.add_argument("--max-pixels", type=_int_range(0), default=DEFAULT_MAX_PIXELS,
                   help=f"refuse images with more pixels than this, 0 for no limit (default {DEFAULT_MAX_PIXELS})")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace outputs that exist")
    existing.add_argument("--skip-existing", action="store_true", help="skip inputs whose output exists")
    p.add_argument("--recursive", action="store_true",
                   help="also take the images of subfolders, mirroring them under DIR")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    _add_overlap_io(p, "on: applying a LUT is cheap, reading and writing the photos is the work")
    p.set_defaults(func=_cmd_apply_lut)


def _cmd_apply_lut(args) -> int:
    start = time.perf_counter()
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        _error(f"{out_dir}: the output path exists and is not a folder")
        return EXIT_USAGE
    from dpe_hf.export.lut import apply_lut, read_cube

    try:
        lut = read_cube(args.lut)
    except ValueError as exc:
        _error(str(exc))
        return EXIT_USAGE
    return _run_batch(args, out_dir, lambda job, image, meta: apply_lut(image, lut, interp=args.interp),
                      "apply-lut", start, overlap=args.overlap_io != "off")


# --------------------------------------------------------------------------------------------
# the parser
# --------------------------------------------------------------------------------------------


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dpe", description="Deep Photo Enhancer: enhance photos and evaluate enhancers.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_enhance(sub)
    _add_eval(sub)
    _add_export(sub)
    _add_lut(sub)
    _add_apply_lut(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
