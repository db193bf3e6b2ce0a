"""Plain helpers shared by several test modules (fixtures live in conftest.py).

Import them as `from helpers import photo, save` from any folder under tests/: pyproject's
pytest `pythonpath` puts tests/ on sys.path.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "configs" / "smoke.yaml"


# -- images ------------------------------------------------------------------------------------


def photo(h: int = 40, w: int = 56, seed: int = 0, dtype=np.uint8) -> np.ndarray:
    """A smooth colour image with some texture (not white noise: JPEG keeps it recognisable)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([xx, yy, 1 - (xx + yy) / 2], axis=2) * 0.8 + 0.1
    img = np.clip(base + rng.normal(0, 0.04, (h, w, 3)), 0, 1)
    top = 65535 if dtype == np.uint16 else 255
    return np.round(img * top).astype(dtype)


def save(path: Path, array: np.ndarray, **kwargs) -> Path:
    Image.fromarray(array).save(path, **kwargs)
    return path


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def _s15f16(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def adobe_rgb_like_icc() -> bytes:
    """A matrix/TRC RGB ICC v2 profile with Adobe RGB (1998) primaries (D50-adapted) and gamma 2.2,
    built by hand: ImageCms can only create sRGB, LAB and XYZ profiles."""

    def xyz(x, y, z):
        return b"XYZ " + b"\0" * 4 + _s15f16(x) + _s15f16(y) + _s15f16(z)

    def desc(text: str):
        ascii_ = text.encode() + b"\0"
        return (b"desc" + b"\0" * 4 + struct.pack(">I", len(ascii_)) + ascii_
                + b"\0" * 8 + b"\0" * 3 + b"\0" * 67)

    curve = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, 0x0233) + b"\0\0"  # gamma 563/256 = 2.199
    tags = [
        (b"desc", desc("Adobe-RGB-like test profile")),
        (b"cprt", b"text" + b"\0" * 4 + b"no copyright\0"),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.6097, 0.3111, 0.0195)),
        (b"gXYZ", xyz(0.2053, 0.6257, 0.0609)),
        (b"bXYZ", xyz(0.1492, 0.0632, 0.7446)),
        (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (struct.pack(">I", size) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"mntr" + b"RGB " + b"XYZ "
              + b"\0" * 12 + b"acsp" + b"APPL" + b"\0" * 4 + b"\0" * 8 + b"\0" * 8 + b"\0" * 4
              + _s15f16(0.9642) + _s15f16(1.0) + _s15f16(0.8249) + b"\0" * 4)
    header += b"\0" * (128 - len(header))
    return header + struct.pack(">I", len(tags)) + table + body


# -- training runs -----------------------------------------------------------------------------


def run_training(args, *, processes=1, timeout=300):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    if processes == 1:
        cmd = [sys.executable, str(REPO / "train_accelerate.py"), *args]
    else:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
               str(processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               str(REPO / "train_accelerate.py"), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def training_env(**extra) -> dict:
    """The environment of a training subprocess started by hand (offline, one thread)."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1", **extra}


def digests(run_dir: Path) -> list[str]:
    return [p.read_text().strip() for p in sorted((run_dir / "digests").glob("process_*.txt"))]


def read_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


CHECKPOINT_FILES = ("model.safetensors", "optimizer.bin", "random_states_0.pkl", "process_0.json")


def check_latest(run: Path) -> int | None:
    """The step of the checkpoint `latest` names, after checking that it is complete and loads."""
    import torch
    from safetensors.torch import load_file

    from dpe_hf.training.checkpoints import latest_checkpoint

    path = latest_checkpoint(run)
    if path is None:
        assert not (run / "checkpoints" / "latest").exists(), "latest names a missing folder"
        return None
    for name in CHECKPOINT_FILES:
        assert (path / name).is_file(), f"{path} lacks {name}"
    assert load_file(path / "model.safetensors")
    assert torch.load(path / "optimizer.bin", weights_only=False)["state"] is not None
    torch.load(path / "random_states_0.pkl", weights_only=False)
    step = json.loads((path / "process_0.json").read_text())["step"]
    assert path.name == f"step_{step:08d}"
    return step


# -- the app ----------------------------------------------------------------------------------


def load_app():
    """app.py as the module `dpe_app`, loaded once (it is a script at the repository root)."""
    if "dpe_app" in sys.modules:
        return sys.modules["dpe_app"]
    spec = importlib.util.spec_from_file_location("dpe_app", REPO / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["dpe_app"] = module
    spec.loader.exec_module(module)
    return module


# `python -c TORCH_PROBE ARGS...`: the dpe CLI on ARGS, then whether it imported torch
TORCH_PROBE = """
import sys
from dpe_hf.cli import main
code = main(sys.argv[1:])
print("TORCH_IMPORTED", "torch" in sys.modules, flush=True)
sys.exit(code)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(model: str | None, max_file_size: str = "50mb"):
    """The demo on a free local port until the block ends: yields (its address, the Blocks).
    `benchmarks/app_load.py` serves the app with it too."""
    demo = load_app().build_demo(model)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                max_file_size=max_file_size)
    try:
        yield f"http://127.0.0.1:{port}/", demo
    finally:
        demo.close()


def serve_app(model: str | None):
    """The demo on a free local port, for a module-scoped fixture: yields its address, then closes it."""
    with serving(model) as (url, _):
        yield url
