"""Training checkpoints that an interruption never corrupts.

Each checkpoint is written by `Accelerator.save_state` into a temporary folder, then each
process adds its own small JSON state (step, data stream position), and only then is the folder
renamed into place and `latest` (a one-line file, replaced atomically) pointed at it. A kill at
any moment leaves `latest` naming a complete checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from dpe_hf.imageio import atomic_write

CHECKPOINTS = "checkpoints"
LATEST = "latest"


def checkpoint_root(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINTS


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    pointer = checkpoint_root(run_dir) / LATEST
    if not pointer.is_file():
        return None
    path = checkpoint_root(run_dir) / pointer.read_text().strip()
    return path if path.is_dir() else None


def save_checkpoint(accelerator, run_dir: str | Path, step: int, process_state: dict, keep: int = 2) -> Path:
    """Save everything needed to continue at `step`; call on every process."""
    root = checkpoint_root(run_dir)
    name = f"step_{step:08d}"
    final = root / name
    tmp = root / f".tmp_{name}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    tmp.mkdir(parents=True, exist_ok=True)
    state = json.dumps(process_state).encode()
    atomic_write(tmp / f"process_{accelerator.process_index}.json", lambda f: f.write(state))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        atomic_write(root / LATEST, lambda f: f.write(name.encode()))
        older = sorted(p for p in root.glob("step_*") if p.name != name)
        for p in older[: max(0, len(older) - (keep - 1))]:
            shutil.rmtree(p, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator, path: str | Path) -> dict:
    """Restore models, optimisers and RNG from `path`; returns this process's own state."""
    path = Path(path)
    accelerator.load_state(str(path))
    own = path / f"process_{accelerator.process_index}.json"
    if not own.is_file():
        raise FileNotFoundError(f"{path}: no state for process {accelerator.process_index} "
                                "(was it written with a different number of processes?)")
    return json.loads(own.read_text())
