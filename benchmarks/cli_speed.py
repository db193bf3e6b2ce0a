"""`dpe enhance` on 12 MP JPEGs, as a user runs it: warm, single run, memory, fidelity, and the
I/O floor, in one table (`python benchmarks/fullres.py --cli` runs this).

    python benchmarks/cli_speed.py [--data ../shared/data] [--photos 5] [--repeats 3] [--runtimes auto,torch]

Photos: copies of the largest DATA/target/debian photos resized to 12 MP (JPEG q92).

* floor: a bare Pillow decode (`Image.open(p).load()`) plus an encode with dpe's own JPEG
  settings (q95, 4:4:4) of each photo, in this process: the I/O no enhancer can avoid;
* warm: `dpe enhance` on all the photos in one call, in a fresh process whose model is loaded
  as the CLI loads it for that batch and which enhanced one photo before (the CLI's `run` with
  the loaded model), total / photos;
* single: `python -m dpe_hf.cli enhance PHOTO -o DIR` from a fresh interpreter, start-up,
  imports and model loading included (wall time); peak RSS of that process (`wait4`; the CLI
  starts no other process);
* fidelity: PSNR between the output, downscaled to the network's size, and the network's own
  output there (`Enhancer.with_pair`), median over the photos;
* max |diff|: the largest difference, in levels of 255, between this runtime's output arrays
  and those of the first runtime listed, over all pixels of all photos (before JPEG encoding).

Each figure is the median of `--repeats` runs; the runtimes alternate, so that a busy spell of
the machine hits each of them. `--runtimes`: `dpe enhance --runtime` values (auto runs the
bundled model's ONNX copy on a CPU).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run from a checkout without installing

from benchmarks.common import DEFAULT_DATA  # noqa: E402

MEGAPIXELS = 12


def _floor_seconds(files: list[Path]) -> float:
    from PIL import Image

    times = []
    for path in files:
        t = time.perf_counter()
        with Image.open(path) as im:
            im.load()
            im.save(io.BytesIO(), "JPEG", quality=95, subsampling=0)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _single(photo: Path, out_dir: Path, runtime: str) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one `dpe enhance` of one photo in a fresh interpreter."""
    cmd = [sys.executable, "-m", "dpe_hf.cli", "enhance", str(photo), "-o", str(out_dir), "--overwrite",
           "--runtime", runtime]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO_ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"dpe enhance --runtime {runtime} failed: {proc.stderr.read().decode().strip()}")
    return seconds, usage.ru_maxrss / 1024


def _warm_worker(args: argparse.Namespace) -> None:
    """In a fresh process: load the model, enhance one photo, then time the batch; then the
    fidelity and the output arrays (for max |diff|) of each photo."""
    import numpy as np

    from dpe_hf.batch import load_model, photo_share
    from dpe_hf.cli import build_parser, enhance
    from dpe_hf.enhancer import Enhancer
    from dpe_hf.imageio import read_image
    from dpe_hf.ops.guided import downscale_long_side

    # as `dpe enhance` loads it for this batch: each photo's share of the threads
    generator = load_model(None, "auto", args.runtime, photo_share(len(args.files), True)[1])
    flags = ["-o", args.out_dir, "--overwrite", "--runtime", args.runtime]
    parser = build_parser()
    enhance.run(parser.parse_args(["enhance", args.files[0], *flags]), generator=generator)  # warm-up
    t = time.perf_counter()
    code = enhance.run(parser.parse_args(["enhance", *args.files, *flags]), generator=generator)
    seconds = time.perf_counter() - t
    fidelity = []
    enhancer = Enhancer(generator)
    for k, path in enumerate(args.files):
        image = read_image(path)[0]
        out, pair = enhancer.with_pair(image)
        small = downscale_long_side(out, max(pair.low_out.shape[:2])).astype(np.float64) / 255
        mse = float(np.mean((small - pair.low_out) ** 2))
        fidelity.append(10 * np.log10(1 / mse))
        np.save(Path(args.arrays) / f"{k}.npy", out)
    print(json.dumps({"code": code, "per_photo": seconds / len(args.files), "fidelity": statistics.median(fidelity)}))


def _warm(files: list[Path], out_dir: Path, runtime: str, arrays: Path) -> dict:
    cmd = [sys.executable, __file__, "--warm-worker", "--runtime", runtime, "--out-dir", str(out_dir),
           "--arrays", str(arrays), "--files", *map(str, files)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"warm run --runtime {runtime} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _max_diff(a: Path, b: Path, count: int) -> int:
    import numpy as np

    return max(int(np.abs(np.load(a / f"{k}.npy").astype(int) - np.load(b / f"{k}.npy")).max()) for k in range(count))


def measure(files: list[Path], runtimes: list[str], repeats: int, tmp: Path) -> str:
    from benchmarks.fullres import _columns

    floor = statistics.median(_floor_seconds(files) for _ in range(repeats))
    single: dict[str, list[tuple[float, float]]] = {r: [] for r in runtimes}
    warm: dict[str, list[dict]] = {r: [] for r in runtimes}
    for _ in range(repeats):
        for runtime in runtimes:  # alternating
            single[runtime].append(_single(files[0], tmp / "single", runtime))
            (tmp / runtime).mkdir(exist_ok=True)
            warm[runtime].append(_warm(files, tmp / "warm", runtime, tmp / runtime))
    lines = [["runtime", "warm s/photo", "x floor", "single run s", "peak RSS MB", "fidelity dB",
              f"max |diff| vs {runtimes[0]}"]]
    for runtime in runtimes:
        per = statistics.median(w["per_photo"] for w in warm[runtime])
        lines.append([runtime, f"{per:.3f}", f"{per / floor:.1f}",
                      f"{statistics.median(s for s, _ in single[runtime]):.2f}",
                      f"{max(m for _, m in single[runtime]):.0f}",
                      f"{statistics.median(w['fidelity'] for w in warm[runtime]):.1f}",
                      str(_max_diff(tmp / runtimes[0], tmp / runtime, len(files)))])
    head = (f"{len(files)} JPEGs of {MEGAPIXELS} MP, {os.cpu_count()} CPU cores, median of {repeats} runs; "
            f"floor (Pillow decode + encode q95 4:4:4): {floor:.3f} s/photo")
    return head + "\n" + _columns(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--photos", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--runtimes", default="auto,torch", help="dpe enhance --runtime values, the first the reference")
    p.add_argument("--warm-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--runtime", help=argparse.SUPPRESS)
    p.add_argument("--out-dir", help=argparse.SUPPRESS)
    p.add_argument("--arrays", help=argparse.SUPPRESS)
    p.add_argument("--files", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.warm_worker:
        _warm_worker(args)
        return 0
    from benchmarks.fullres import _resized_copies

    photos = sorted((args.data / "target" / "debian").glob("*.jpg"))
    if not photos:
        print(f"no photos in {args.data / 'target' / 'debian'} (use --data)", file=sys.stderr)
        return 2
    from PIL import Image

    def pixels(path: Path) -> int:
        with Image.open(path) as im:
            return im.width * im.height

    largest = sorted(photos, key=pixels, reverse=True)
    with tempfile.TemporaryDirectory(prefix="dpe-cli-speed-") as name:
        tmp = Path(name)
        files = _resized_copies(largest, MEGAPIXELS, args.photos, tmp)
        print(measure(files, [r for r in args.runtimes.split(",") if r], args.repeats, tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
