"""Training checkpoints that an interruption never corrupts.

Each checkpoint is written by `Accelerator.save_state` into a temporary folder, then each
process adds its own small JSON state (step, data stream position), and only then is the folder
renamed into place and `latest` (a one-line file, replaced atomically) pointed at it. A kill at
any moment leaves `latest` naming a complete checkpoint.

The learning-rate schedulers are in the Accelerate state since format 2 (the JSON state says
its `format`; format 1 has no `format` key and no scheduler files, and still loads). After a
load, the schedulers are put at the checkpoint's step with the lrs of the current config: the
schedule is a function of the step alone, and a run resumed with a lower `lr` (as the
divergence error advises) must get it.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from dpe_hf.imageio import atomic_write
from dpe_hf.training.schedule import move_schedulers_to

CHECKPOINTS = "checkpoints"
LATEST = "latest"
FORMAT = 2


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
    state = json.dumps({**process_state, "format": FORMAT}).encode()
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


def load_checkpoint(accelerator, path: str | Path, schedulers=()) -> dict:
    """Restore models, optimisers, RNG, registered objects and the lr `schedulers` from `path`;
    returns this process's own state."""
    path = Path(path)
    own = path / f"process_{accelerator.process_index}.json"
    if not own.is_file():
        raise FileNotFoundError(f"{path}: no state for process {accelerator.process_index} "
                                "(was it written with a different number of processes?)")
    state = json.loads(own.read_text())
    configured = [list(scheduler.base_lrs) for scheduler in schedulers]
    if state.get("format", 1) >= 2:
        accelerator.load_state(str(path))
    else:
        with _not_registered(accelerator, schedulers):  # format 1 has no file for them
            accelerator.load_state(str(path))
    for scheduler, base_lrs in zip(schedulers, configured):
        scheduler.base_lrs = base_lrs
    move_schedulers_to(schedulers, state["step"])
    return state


@contextmanager
def _not_registered(accelerator, objects):
    """Leave `objects` out of what `load_state` loads. Accelerate wants a file for every object
    registered for checkpointing and has no public way to skip one, hence its private list."""
    registered = accelerator._custom_objects
    accelerator._custom_objects = [o for o in registered if not any(o is x for x in objects)]
    try:
        yield
    finally:
        accelerator._custom_objects = registered
