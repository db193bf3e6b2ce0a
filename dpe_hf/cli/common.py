"""What the `dpe` commands share: exit codes, one-line messages, argument types, loading the model
and running a batch with its report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dpe_hf.batch import DEFAULT_QUALITY
from dpe_hf.defaults import DEFAULT_MAX_PIXELS

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2
MODEL_HELP = ("model folder or training run folder (./path, /path or ~/path is only ever a path), .onnx file, "
              "bundled name, or hub repo id (org/name; hf-hub:org/name is only ever the hub) "
              "(default: the bundled model)")


def error(message: str) -> None:
    """One line on stderr; through tqdm so that a progress bar is not torn."""
    line = f"error: {message}"
    try:
        from tqdm import tqdm

        tqdm.write(line, file=sys.stderr)
    except ImportError:  # pragma: no cover - tqdm is a dependency
        print(line, file=sys.stderr)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def progress(items, desc: str, total: int | None = None):
    if not sys.stderr.isatty():  # no bar to draw: do not pay tqdm's import (15 ms) on a scripted run
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, total=total, unit="img", file=sys.stderr, dynamic_ncols=True, leave=False)


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def int_range(lo: int, hi: int | None = None):
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


def jsonable(value: float) -> float | None:
    """Strict JSON has no inf/nan (PSNR of identical images is inf): write them as null."""
    return value if value == value and value not in (float("inf"), float("-inf")) else None


def load_model(spec: str | None, device: str = "cpu", runtime: str = "torch", threads: int | None = None):
    """The generator `spec` names (`dpe_hf.batch.load_model`), or None after printing the
    reason (the caller exits 2)."""
    from dpe_hf.batch import load_model as load
    from dpe_hf.errors import ModelLoadError

    try:
        return load(spec, device, runtime, threads)
    except (ModelLoadError, ValueError) as exc:
        error(str(exc))
        return None


def refuse_existing_file(out: Path, overwrite: bool) -> bool:
    """True (after printing why) when `out` is a folder, or a file and not `overwrite`."""
    if out.is_dir() or (out.exists() and not overwrite):
        error(f"{out}: {'is a folder' if out.is_dir() else 'exists; use --overwrite'}")
        return True
    return False


# --------------------------------------------------------------------------------------------
# batch commands (enhance, apply-lut): shared options and the run
# --------------------------------------------------------------------------------------------


def add_batch_options(p: argparse.ArgumentParser, *, suffix: str, ext_help: str, overlap_auto_means: str) -> None:
    """Options of every command that writes one output per input photo into a folder."""
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (created if needed)")
    p.add_argument("--suffix", default=suffix,
                   help=f"added to each output's file stem (default {suffix!r}; write --suffix=-x for one "
                        "that starts with '-')")
    p.add_argument("--ext", metavar="EXT", help=ext_help)
    p.add_argument("--quality", type=int_range(1, 100), default=DEFAULT_QUALITY,
                   help=f"JPEG/WebP quality, 1-100 (default {DEFAULT_QUALITY})")
    p.add_argument("--max-pixels", type=int_range(0), default=DEFAULT_MAX_PIXELS,
                   help=f"refuse images with more pixels than this, 0 for no limit (default {DEFAULT_MAX_PIXELS})")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace outputs that exist")
    existing.add_argument("--skip-existing", action="store_true", help="skip inputs whose output exists")
    p.add_argument("--recursive", action="store_true",
                   help="also take the images of subfolders, mirroring them under DIR")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--overlap-io", choices=("auto", "on", "off"), default="auto",
                   help="work on two photos at a time, each read, processed and written in a worker "
                        "thread with half the CPU threads; off: one photo at a time, on all of them "
                        f"(default auto: {overlap_auto_means})")


def output_folder_is_a_file(out_dir: Path) -> bool:
    if out_dir.exists() and not out_dir.is_dir():
        error(f"{out_dir}: the output path exists and is not a folder")
        return True
    return False


def plan_batch(args, processes=None) -> list:
    """The jobs of args.inputs under args.output (`dpe_hf.batch.plan_outputs`); with `processes`
    (a `dpe_hf.batch.ProcessShare`), this process's share of them."""
    from dpe_hf.batch import plan_outputs

    jobs = plan_outputs(args.inputs, Path(args.output), suffix=args.suffix, ext=args.ext, recursive=args.recursive)
    return jobs if processes is None else processes.share(jobs)


def batch_workers(args, jobs: list) -> tuple[int, int]:
    """(photos at once, threads of each photo's passes) for these jobs and args.overlap_io."""
    from dpe_hf.batch import photo_share

    return photo_share(sum(job.output is not None for job in jobs), args.overlap_io != "off")


def run_batch_command(args, jobs: list, process, desc: str, start: float, *, workers: int, processes=None) -> int:
    """Run `process(job, image, meta) -> image` on the planned `jobs` (`plan_batch`), `workers`
    photos at a time, and report: one line per bad file, one summary, exit 1 if any failed.
    With `processes`, the summary is this process's share's and the exit code covers every
    process."""
    from dpe_hf.batch import BatchSettings, run_batch

    out_dir = Path(args.output)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        error(f"{out_dir}: cannot create the output folder ({exc.strerror or exc})")
        return EXIT_USAGE
    settings = BatchSettings(overwrite=args.overwrite, skip_existing=args.skip_existing,
                             max_pixels=args.max_pixels, quality=args.quality)
    report = run_batch(jobs, settings, process, workers=workers, on_error=error, start=start,
                       progress=lambda items, total: progress(items, desc, total=total))
    # one write each: under a launcher (unbuffered) print's text and newline are two writes, and
    # the processes' summaries could interleave on a shared stderr
    if args.json:
        sys.stdout.write(report.as_json() + "\n")
    else:
        sys.stderr.write(report.summary() + "\n")
    code = EXIT_SOME_FAILED if report.failed else EXIT_OK
    return code if processes is None else processes.worst(code)
