"""Load test of the Gradio demo: many concurrent gradio_client clients against one app.

    OMP_NUM_THREADS=1 python benchmarks/app_load.py [--requests 200] [--clients 8] [--model SPEC]

Starts `app.build_demo(model)` on 127.0.0.1 (a free port) in this process, with a tiny random
model unless --model is given, then sends --requests requests from --clients threads, each with
its own `gradio_client.Client`, alternating /enhance and /blend over a few generated photos of
different sizes.  Prints requests, errors, wall time, requests per second, p50/p95 latency per
endpoint and the peak RSS of the process (server and clients together).  Exit 1 on any error.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import socket
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SIZES = [(97, 131), (240, 320), (600, 800), (1080, 720)]  # (h, w)


def load_app():
    spec = importlib.util.spec_from_file_location("dpe_app", ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["dpe_app"] = module
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def tiny_model(folder: Path) -> str:
    import torch

    from dpe_hf.models.generator import DPEGenerator

    torch.manual_seed(0)
    DPEGenerator(width=0.25, init_scale=None).save_pretrained(folder)
    return str(folder)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=200, help="requests in all (default 200)")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (threads, default 8)")
    p.add_argument("--model", default=None, help="model spec (default: a tiny random model)")
    args = p.parse_args(argv)

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from gradio_client import Client, handle_file

    with tempfile.TemporaryDirectory(prefix="dpe-load-") as tmp:
        tmp = Path(tmp)
        model = args.model or tiny_model(tmp / "model")
        photos = make_photos(tmp)
        app = load_app()
        demo = app.build_demo(model)
        port = free_port()
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                    max_file_size="50mb")
        url = f"http://127.0.0.1:{port}/"
        latencies: dict[str, list[float]] = defaultdict(list)
        errors: list[str] = []
        lock = threading.Lock()
        counter = iter(range(args.requests))

        def worker(k: int) -> None:
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
                endpoint = "/enhance" if i % 2 == 0 else "/blend"
                photo = photos[(i // 2 + k) % len(photos)]
                strength = 100 if endpoint == "/enhance" else (i * 7) % 101
                t0 = time.perf_counter()
                try:
                    _, (result, _cube), _info = client.predict(handle_file(str(photo)), strength, model,
                                                               api_name=endpoint)
                    if not Path(result).is_file():
                        raise RuntimeError(f"no result file: {result}")
                    dt = time.perf_counter() - t0
                    with lock:
                        latencies[endpoint].append(dt)
                except Exception as exc:  # noqa: BLE001
                    with lock:
                        errors.append(f"{endpoint} {photo.name}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")

        start = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        demo.close()

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    done = sum(len(v) for v in latencies.values())
    every = [x for v in latencies.values() for x in v]
    print(f"model {args.model or 'tiny random (width 0.25)'}; photos {', '.join(f'{w}x{h}' for h, w in SIZES)}")
    print(f"| {'endpoint':<9} | {'requests':>8} | {'ok':>5} | {'p50 s':>6} | {'p95 s':>6} |")
    print(f"|{'-' * 11}|{'-' * 10}|{'-' * 7}|{'-' * 8}|{'-' * 8}|")
    for endpoint in ("/enhance", "/blend"):
        v = latencies.get(endpoint, [])
        sent = (args.requests + (1 if endpoint == "/enhance" else 0)) // 2
        print(f"| {endpoint:<9} | {sent:>8} | {len(v):>5} | {percentile(v, 50):>6.2f} | {percentile(v, 95):>6.2f} |")
    print(f"| {'all':<9} | {args.requests:>8} | {done:>5} | {percentile(every, 50):>6.2f} | {percentile(every, 95):>6.2f} |")
    print(f"clients {args.clients}, errors {len(errors)}, wall {wall:.1f} s, "
          f"{done / wall:.1f} req/s, peak RSS {peak_mb:.0f} MiB")
    for line in errors[:10]:
        print(f"  {line}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
