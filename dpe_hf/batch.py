"""Batches of photos, and the rules every front end shares: which device, how large a photo may
be, what its output is called.

    jobs = plan_outputs(["photos/", "*.tif"], out_dir, suffix="_enhanced")
    report = run_batch(jobs, BatchSettings(...), process, workers=2, on_error=print)

`dpe enhance` and `dpe apply-lut` run their photos through `run_batch`; the app names its
downloads with `output_name`, refuses photos above `DEFAULT_MAX_PIXELS` and loads models with
`load_model`, so a photo gets the same name, limit and device in both. Under a launcher
(`accelerate launch --num_processes N -m dpe_hf.cli enhance ...`), `launched_processes` gives
each process its share of the planned jobs.

Start-up stays light (the CLI imports this for its defaults): numpy, PIL and torch are imported
inside the functions that need them.
"""

from __future__ import annotations

import glob
import json
import os
import time
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from dpe_hf.defaults import DEFAULT_MAX_PIXELS

DEFAULT_SUFFIX = "_enhanced"
DEFAULT_QUALITY = 95
FALLBACK_EXT = "png"  # for inputs whose format cannot be written (GIF, BMP)
_GLOB_CHARS = set("*?[")


RUNTIMES = ("auto", "torch", "onnx")


def load_model(spec: str | Path | None, device: str = "auto", runtime: str = "torch", threads: int | None = None):
    """The generator `spec` names (see `dpe_hf.model_spec`), on `device`: `auto` is CUDA, then
    Apple MPS, then the CPU. An ONNX file runs with onnxruntime on the CPU and does not import
    torch (start-up). `runtime`: "auto" runs a bundled checkpoint's ONNX copy when the network
    would run on the CPU (the same network; outputs within a level of torch's, and no torch
    import, which is most of a single photo's start-up), "onnx" insists on it, "torch" never
    uses it. `threads`: CPU threads of an ONNX model's session (`photo_share`; None: all).
    Raises ModelLoadError, or ValueError for a device or runtime that cannot be."""
    from dpe_hf.errors import ModelLoadError
    from dpe_hf.hub import load_generator
    from dpe_hf.model_spec import bundled_onnx, parse_model_spec

    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if parse_model_spec(spec).kind == "onnx":  # a spec that names nothing fails here, before torch loads
        return load_generator(spec, threads=threads)
    onnx = bundled_onnx(spec) if runtime != "torch" else None
    if runtime == "onnx":
        if onnx is None:
            raise ModelLoadError(f"{spec}: no ONNX copy to run (bundled models have one; for another model, "
                                 "`dpe export onnx` and pass the .onnx file)")
        if device not in ("auto", "cpu"):
            raise ValueError(f"--device {device}: the ONNX runtime runs on the CPU here")
    if onnx is not None and (runtime == "onnx" or device == "cpu" or (device == "auto" and not _accelerator_possible())):
        generator = load_generator(onnx, threads=threads)
        generator.levels = json.loads((onnx.parent / "config.json").read_text()).get("levels", 0.0)
        return generator
    from dpe_hf.inference import resolve_device

    return load_generator(spec, device=resolve_device(device))


def _accelerator_possible() -> bool:
    """Whether this machine may have a GPU torch could use, without importing torch (which only
    confirms it): an NVIDIA or AMD driver's device files, or an Apple silicon Mac. Elsewhere
    (Windows) the answer is yes, and torch decides."""
    import platform
    import sys

    if sys.platform == "darwin":
        return platform.machine() == "arm64"
    if sys.platform.startswith("linux"):
        return any(os.path.exists(p) for p in ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/kfd"))
    return True


def normalise_ext(ext: str | None) -> str | None:
    if ext is None:
        return None
    ext = ext.strip().lstrip(".")
    return ext or None


def output_name(source: str | Path, suffix: str = DEFAULT_SUFFIX, ext: str | None = None) -> str:
    """`{stem}{suffix}.{ext}`: `ext` (without its dot), else the source's own extension when that
    format can be written, else png."""
    from dpe_hf.imageio import WRITE_SUFFIXES

    source = Path(source)
    out_ext = normalise_ext(ext)
    if out_ext is None:
        out_ext = source.suffix.lstrip(".")
        if "." + out_ext.lower() not in WRITE_SUFFIXES:
            out_ext = FALLBACK_EXT
    return f"{source.stem}{suffix}.{out_ext}"


# --------------------------------------------------------------------------------------------
# planning: which inputs, which outputs
# --------------------------------------------------------------------------------------------


@dataclass
class BatchJob:
    source: Path  # as given (for messages)
    output: Path | None  # None: the input itself failed (see error)
    error: str | None = None  # reason, without the path


def collect_inputs(specs: list[str], out_dir: Path, *,
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


def plan_outputs(inputs: list[str], out_dir: Path, *, suffix: str = DEFAULT_SUFFIX, ext: str | None = None,
                 recursive: bool = False) -> list[BatchJob]:
    """Decide every input's output; refuse outputs that would overwrite an input or collide."""
    found = collect_inputs(inputs, out_dir, recursive=recursive)
    seen_inputs: set[Path] = set()
    entries = []
    for src, rel, err in found:
        if err is None and rel is not None:
            key = src.resolve()
            if key in seen_inputs:  # the same file through a folder and a pattern: once
                continue
            seen_inputs.add(key)
        entries.append((src, rel, err))

    jobs: list[BatchJob] = []
    planned: dict[Path, Path] = {}
    for src, rel, err in entries:
        if err is not None:
            jobs.append(BatchJob(src, None, err))
            continue
        output = out_dir / rel / output_name(src, suffix, ext)
        key = output.resolve()
        if key == src.resolve() or (output.exists() and src.exists() and os.path.samefile(output, src)):
            jobs.append(BatchJob(src, None, "output would overwrite the input"))
            continue
        if key in seen_inputs:
            jobs.append(BatchJob(src, None, f"output {output} would overwrite another input of this batch"))
            continue
        if key in planned:
            jobs.append(BatchJob(src, None, f"output {output} is also the output of {planned[key]}"))
            continue
        planned[key] = src
        jobs.append(BatchJob(src, output))
    return jobs


# --------------------------------------------------------------------------------------------
# running: photos in worker threads, one report in order
# --------------------------------------------------------------------------------------------


@dataclass
class BatchSettings:
    overwrite: bool = False
    skip_existing: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS  # 0: no limit
    quality: int = DEFAULT_QUALITY


@dataclass
class BatchReport:
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)  # {"path", "reason"}
    seconds: float = 0.0

    def summary(self) -> str:
        """One line: `3 written, 1 skipped, 1 failed (2.0 s)`."""
        parts = [f"{len(self.written)} written"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        return f"{', '.join(parts)} ({self.seconds:.1f} s)"

    def as_json(self) -> str:
        return json.dumps({"written": self.written, "skipped": self.skipped, "failed": self.failed,
                           "seconds": round(self.seconds, 3)}, indent=2)


def photo_workers(count: int, overlap: bool) -> int:
    """How many photos of a batch of `count` are processed at once: two (each in a worker thread,
    read, enhanced and written there) when `overlap` and there are two or more, else one, in the
    caller's thread. Two photos on one core each beat one photo on two cores: the full-size
    passes are bound by memory, decoding and encoding run on one core (docs/fullres.md)."""
    return 2 if overlap and count >= 2 else 1


def threads_per_photo(workers: int) -> int:
    """Threads of one photo's own passes (the network's session, the full-size carry) when
    `workers` photos run at once: the CPU threads (`dpe_hf.ops.strips.worker_threads`) shared
    out, at least one."""
    from dpe_hf.ops.strips import worker_threads

    return max(1, worker_threads(None) // workers)


def photo_share(count: int, overlap: bool) -> tuple[int, int]:
    """(photos at once, threads of each photo's passes) for a batch of `count` photos: what the
    model is loaded with (an ONNX session's threads are fixed then) and `run_batch` is given."""
    workers = photo_workers(count, overlap)
    return workers, threads_per_photo(workers)


def run_batch(jobs: list[BatchJob], settings: BatchSettings, process, *, workers: int, on_error,
              progress=None, start: float | None = None) -> BatchReport:
    """Run `process(job, image, meta) -> image` on each planned job, write the results and report:
    `on_error(line)` once per bad file, and the batch goes on. `progress(items, total)` may wrap
    the loop (a progress bar); `start` is the `time.perf_counter()` the report's seconds count
    from (default: now).

    With `workers` > 1, that many photos are in work at once, each read, processed and written in
    a worker thread (`photo_workers`): memory holds at most `workers` photos and their results.
    Outcomes are recorded here, in the caller's thread and in the jobs' order, so the report, the
    error lines and the files are the same as with one worker. On an interrupt the photos in work
    are finished (writes are atomic) and the rest dropped."""
    from dpe_hf.imageio import read_image, write_image
    from dpe_hf.errors import DPEError

    start = time.perf_counter() if start is None else start
    report = BatchReport()

    def fail(path: Path | str, reason: str, line: str | None = None) -> None:
        report.failed.append({"path": str(path), "reason": reason})
        on_error(line or f"{path}: {reason}")

    def run_one(job: BatchJob) -> tuple[str, str, str] | None:
        """Read, process and write one photo: None, or (path, reason, line) of its failure."""
        try:
            image, meta = read_image(job.source, max_pixels=settings.max_pixels or None)
            result = process(job, image, meta)
            del image  # a worker holds one photo's arrays at a time
            job.output.parent.mkdir(parents=True, exist_ok=True)
            write_image(job.output, result, meta, quality=settings.quality)
            return None
        except DPEError as exc:
            return getattr(exc, "path", str(job.source)), getattr(exc, "reason", str(exc)), str(exc)
        except (ValueError, RuntimeError, MemoryError, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            return str(job.source), reason, f"{job.source}: {reason}"

    todo = []
    for job in jobs:
        if job.output is None:
            fail(job.source, job.error)
        elif not (job.output.exists() or os.path.lexists(job.output)) or settings.overwrite:
            todo.append(job)
        elif settings.skip_existing:
            report.skipped.append(str(job.output))
        else:
            fail(job.source, f"output {job.output} exists; use --overwrite or --skip-existing")

    side_by_side = workers > 1 and len(todo) > 1
    with ExitStack() as stack:
        if side_by_side:
            from concurrent.futures import ThreadPoolExecutor

            stack.enter_context(library_threads(threads_per_photo(workers)))
            pool = ThreadPoolExecutor(workers, thread_name_prefix="dpe-photo")
            # on an interrupt: finish the photos in work (writes are atomic), drop the rest
            stack.callback(pool.shutdown, wait=True, cancel_futures=True)
            # all submitted at once: a queued job holds no image, only `workers` run at a time
            futures = [pool.submit(run_one, job) for job in todo]
            outcomes = (future.result() for future in futures)
        else:
            outcomes = (run_one(job) for job in todo)
        done = zip(todo, outcomes)
        for job, failure in (progress(done, len(todo)) if progress else done):
            if failure is None:
                report.written.append(str(job.output))
            else:
                fail(*failure)
    report.seconds = time.perf_counter() - start
    return report


@contextmanager
def library_threads(threads: int):
    """OpenBLAS's (numpy's) and OpenCV's own thread pools at `threads` for the duration: with
    photos side by side, each library call would otherwise use every core, and the calls of
    two photos contend (on 2 cores: 0.45 s per 12 MP photo as they are, 0.38 s limited)."""
    import cv2

    try:
        from threadpoolctl import threadpool_limits
        blas = threadpool_limits(threads, user_api="blas")
    except ImportError:  # a --no-deps install: slower, not wrong
        blas = nullcontext()
    saved = cv2.getNumThreads()
    cv2.setNumThreads(threads)
    try:
        with blas:
            yield
    finally:
        cv2.setNumThreads(saved)


# --------------------------------------------------------------------------------------------
# scale-out: `accelerate launch --num_processes N -m dpe_hf.cli enhance ...`
# --------------------------------------------------------------------------------------------


def launched_world_size() -> int:
    """How many processes a launcher (accelerate launch, torchrun) started; 1 without one."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


class ProcessShare:
    """This process's place among those a launcher started: its device, its share of a batch and
    the exit code of them all. Accelerate is imported here only, so a plain run does not pay for it."""

    def __init__(self):
        import torch
        from accelerate import PartialState

        # on a machine without GPUs, Accelerate sets up (gloo) processes only when told to use the CPU
        self._state = PartialState(cpu=not torch.cuda.is_available())

    @property
    def device(self) -> str:
        device = self._state.device
        return "cpu" if device.type == "cpu" else str(device)  # Accelerate says cpu:0, safetensors wants cpu

    def share(self, jobs: list[BatchJob]) -> list[BatchJob]:
        """A contiguous slice of `jobs` (planned alike in every process): each job runs once."""
        with self._state.split_between_processes(jobs) as mine:
            return list(mine)

    def worst(self, code: int) -> int:
        """The highest exit code of all processes, so that each exits with what covers them all."""
        from accelerate.utils import gather_object

        return max(gather_object([code]))

    def close(self) -> None:
        self._state.destroy_process_group()


@contextmanager
def launched_processes():
    """A `ProcessShare` when this process is one of several a launcher started, else None."""
    if launched_world_size() == 1:
        yield None
        return
    share = ProcessShare()
    try:
        yield share
    finally:
        share.close()
