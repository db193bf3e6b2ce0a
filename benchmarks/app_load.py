"""Load and latency of the Gradio demo, through gradio_client clients against one app.

    OMP_NUM_THREADS=1 python benchmarks/app_load.py [--requests 200] [--clients 8] [--model SPEC]
    python benchmarks/app_load.py --latency [--data DIR] [--model SPEC]

The app is `app.build_demo(model)` on 127.0.0.1 (a free port) in this process.

Load (default): a tiny random model unless --model is given; --requests requests from --clients
threads, each with its own `gradio_client.Client`, cycling /enhance, /blend and /download over a
few generated photos of different sizes. Every /download must give a full-size file of the
photo that was sent (so no client gets another's file) and a .cube. Prints requests, errors,
wall time, requests per second, p50/p95 latency per endpoint and the peak RSS of the process
(server and clients together). Exit 1 on any error.

Latency (--latency): the bundled default model unless --model is given; one client sends 12 MP
JPEGs (the largest photos of DATA/target/debian resized with PIL, or synthetic ones when that
folder is missing): /enhance on 4 different photos, then /blend and /download of the last one
at 4 strengths. The first call of each endpoint is the warm-up; the table gives the median,
min and max of the other 3, upload and the client's download of the outputs included.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # app.py imports dpe_hf: this checkout's, as installed or not
sys.path.insert(0, str(ROOT / "tests"))

from helpers import serving  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data"
SIZES = [(97, 131), (240, 320), (600, 800), (1080, 720)]  # (h, w)
LOAD_ENDPOINTS = ("/enhance", "/blend", "/download")
LATENCY_MEGAPIXELS = 12
LATENCY_RUNS = 3  # after one warm-up call
LATENCY_STRENGTHS = (80, 30, 60, 90)  # /blend and /download: the warm-up, then the timed calls


@contextlib.contextmanager
def app_serving(model: str | None):
    """The demo on a free local port (the tests' `helpers.serving`): yields its address and its
    named endpoints."""
    with serving(model, max_file_size="200mb") as (url, demo):
        yield url, set(demo.get_api_info()["named_endpoints"])


def make_photos(folder: Path) -> list[Path]:
    paths = []
    for i, (h, w) in enumerate(SIZES):
        y, x = np.mgrid[0:h, 0:w]
        rng = np.random.default_rng(i)
        arr = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], axis=2)
        arr = np.clip(arr + rng.normal(0, 12, arr.shape), 0, 255).astype(np.uint8)
        path = folder / f"photo_{w}x{h}.{'jpg' if i % 2 else 'png'}"
        Image.fromarray(arr).save(path, **({"quality": 92} if i % 2 else {}))
        paths.append(path)
    return paths


def large_photos(data: Path, count: int, folder: Path) -> tuple[list[Path], str]:
    """`count` JPEGs (q92) of LATENCY_MEGAPIXELS: the largest photos of data/target/debian resized,
    else smooth synthetic scenes with noise; and where they came from."""
    sources = sorted((data / "target" / "debian").glob("*.jpg"), key=lambda p: -p.stat().st_size)[:count]
    made = []
    for i in range(count):
        if len(sources) == count:
            with Image.open(sources[i]) as im:
                im = ImageOps.exif_transpose(im).convert("RGB")
        else:
            h, w = 1500, 2000  # made at a quarter and resized up, as a photo's smooth areas are
            y, x = np.mgrid[0:h, 0:w] / np.float32(max(h, w))
            rng = np.random.default_rng(i)
            arr = np.stack([np.sin(6 * x + i) * 90 + 128, y * 200 + 20, (x * y + 0.3 * i) % 1 * 180 + 40], axis=2)
            im = Image.fromarray(np.clip(arr + rng.normal(0, 10, arr.shape), 0, 255).astype(np.uint8))
        f = math.sqrt(LATENCY_MEGAPIXELS * 1e6 / (im.width * im.height))
        path = folder / f"photo{i}_{LATENCY_MEGAPIXELS}MP.jpg"
        im.resize((round(im.width * f), round(im.height * f)), Image.Resampling.BICUBIC).save(path, quality=92)
        made.append(path)
    origin = f"{data / 'target' / 'debian'} resized" if len(sources) == count else "synthetic"
    return made, origin


def tiny_model(folder: Path) -> str:
    import torch

    from dpe_hf.models.generator import DPEGenerator

    torch.manual_seed(0)
    DPEGenerator(width=0.25, init_scale=None).save_pretrained(folder)
    return str(folder)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def check_answer(endpoint: str, answer, photo: Path) -> None:
    """What a client must get: the view's two files, or the photo's full-size result and its .cube."""
    if endpoint != "/download":
        (before, after), _info = answer
        if not (Path(before).is_file() and Path(after).is_file()):
            raise RuntimeError(f"no before/after files: {before}, {after}")
        return
    result, cube = answer
    with Image.open(result) as got, Image.open(photo) as sent:
        if got.size != sent.size:
            raise RuntimeError(f"download {Path(result).name} is {got.size}, the photo {sent.size}")
    if Path(cube).suffix != ".cube" or not Path(cube).is_file():
        raise RuntimeError(f"no .cube: {cube}")


def load(args: argparse.Namespace) -> int:
    from gradio_client import Client, handle_file

    with tempfile.TemporaryDirectory(prefix="dpe-load-") as tmp:
        tmp = Path(tmp)
        model = args.model or tiny_model(tmp / "model")
        photos = make_photos(tmp)
        latencies: dict[str, list[float]] = defaultdict(list)
        errors: list[str] = []
        lock = threading.Lock()
        counter = iter(range(args.requests))

        def worker(url: str, k: int) -> None:
            try:
                client = Client(url, verbose=False)
            except Exception as exc:  # noqa: BLE001
                with lock:
                    errors.append(f"client {k}: {type(exc).__name__}: {exc}")
                return
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                endpoint = LOAD_ENDPOINTS[i % len(LOAD_ENDPOINTS)]
                photo = photos[(i // len(LOAD_ENDPOINTS) + k) % len(photos)]
                strength = 100 if endpoint == "/enhance" else (i * 7) % 101
                t0 = time.perf_counter()
                try:
                    check_answer(endpoint, client.predict(handle_file(str(photo)), strength, model,
                                                          api_name=endpoint), photo)
                    dt = time.perf_counter() - t0
                    with lock:
                        latencies[endpoint].append(dt)
                except Exception as exc:  # noqa: BLE001
                    with lock:
                        errors.append(f"{endpoint} {photo.name}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")

        with app_serving(model) as (url, _):
            start = time.perf_counter()
            threads = [threading.Thread(target=worker, args=(url, k), daemon=True) for k in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - start

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    done = sum(len(v) for v in latencies.values())
    every = [x for v in latencies.values() for x in v]
    print(f"model {args.model or 'tiny random (width 0.25)'}; photos {', '.join(f'{w}x{h}' for h, w in SIZES)}")
    print(f"| {'endpoint':<10} | {'requests':>8} | {'ok':>5} | {'p50 s':>6} | {'p95 s':>6} |")
    print(f"|{'-' * 12}|{'-' * 10}|{'-' * 7}|{'-' * 8}|{'-' * 8}|")
    for j, endpoint in enumerate(LOAD_ENDPOINTS):
        v = latencies.get(endpoint, [])
        sent = len(range(j, args.requests, len(LOAD_ENDPOINTS)))
        print(f"| {endpoint:<10} | {sent:>8} | {len(v):>5} | {percentile(v, 50):>6.2f} | {percentile(v, 95):>6.2f} |")
    print(f"| {'all':<10} | {args.requests:>8} | {done:>5} | {percentile(every, 50):>6.2f} | {percentile(every, 95):>6.2f} |")
    print(f"clients {args.clients}, errors {len(errors)}, wall {wall:.1f} s, "
          f"{done / wall:.1f} req/s, peak RSS {peak_mb:.0f} MiB")
    for line in errors[:10]:
        print(f"  {line}", file=sys.stderr)
    return 1 if errors else 0


def latency(args: argparse.Namespace) -> int:
    from gradio_client import Client, handle_file

    with tempfile.TemporaryDirectory(prefix="dpe-latency-") as tmp:
        photos, origin = large_photos(args.data, 1 + LATENCY_RUNS, Path(tmp))
        last = photos[-1]
        calls = [("/enhance", photo, 100) for photo in photos]
        calls += [(endpoint, last, s) for endpoint in ("/blend", "/download") for s in LATENCY_STRENGTHS]
        seconds: dict[str, list[float]] = defaultdict(list)
        with app_serving(args.model) as (url, endpoints):
            client = Client(url, verbose=False)
            for endpoint, photo, strength in calls:
                if endpoint not in endpoints:
                    continue
                t0 = time.perf_counter()
                client.predict(handle_file(str(photo)), strength, args.model, api_name=endpoint)
                seconds[endpoint].append(time.perf_counter() - t0)
        with Image.open(last) as im:
            size = f"{im.width}x{im.height}"
    print(f"model {args.model or 'bundled default'}; {len(photos)} JPEGs of {LATENCY_MEGAPIXELS} MP ({size}, "
          f"{origin}); one client; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    median = f"median of {LATENCY_RUNS} s"
    print(f"| {'endpoint':<10} | {'warm-up s':>9} | {median:>13} | {'min s':>6} | {'max s':>6} |")
    print(f"|{'-' * 12}|{'-' * 11}|{'-' * 15}|{'-' * 8}|{'-' * 8}|")
    for endpoint in ("/enhance", "/blend", "/download"):
        if endpoint not in seconds:
            print(f"| {endpoint:<10} | {'n/a: the app has no such endpoint':>44} |")
            continue
        warm_up, *timed = seconds[endpoint]
        print(f"| {endpoint:<10} | {warm_up:>9.2f} | {statistics.median(timed):>13.2f} | {min(timed):>6.2f} | "
              f"{max(timed):>6.2f} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--latency", action="store_true",
                   help="time /enhance, /blend and /download on 12 MP JPEGs (default: the load test)")
    p.add_argument("--requests", type=int, default=200, help="load: requests in all (default 200)")
    p.add_argument("--clients", type=int, default=8, help="load: concurrent clients (threads, default 8)")
    p.add_argument("--model", default=None,
                   help="model spec (default: a tiny random model for the load test, the bundled one for --latency)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA,
                   help="--latency: the folder holding target/debian (default ../shared/data next to the repo)")
    args = p.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    return latency(args) if args.latency else load(args)


if __name__ == "__main__":
    sys.exit(main())
