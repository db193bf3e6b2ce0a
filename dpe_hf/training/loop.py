"""The training loop: one Accelerator, one task (supervised, gan1way, gan2way; the contract is
in task.py), logging, validation, checkpoints, and at the end the final models (publish.py)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed

from dpe_hf.inference import enhance_tensor
from dpe_hf.metrics import psnr
from dpe_hf.training.checkpoints import latest_checkpoint, load_checkpoint, save_checkpoint
from dpe_hf.training.config import TrainConfig, to_dict
from dpe_hf.training.data import validation_pairs
from dpe_hf.training.ema import WeightAverage
from dpe_hf.training.guards import StopRequest
from dpe_hf.training.progress import Progress
from dpe_hf.training.publish import publish
from dpe_hf.training.schedule import step_schedulers
from dpe_hf.training.task import make_task


class RunLog:
    """JSONL log (main process) plus Accelerate's trackers (TensorBoard)."""

    def __init__(self, accelerator, run_dir: Path):
        self.accelerator = accelerator
        self.path = run_dir / "log.jsonl"

    def __call__(self, step: int, values: dict) -> None:
        if not self.accelerator.is_main_process:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, "time": round(time.time(), 3), **values}) + "\n")
        self.accelerator.log({k: v for k, v in values.items() if isinstance(v, (int, float))}, step=step)


def validate(model: torch.nn.Module, pairs, max_side: int) -> dict[str, float]:
    was_training = model.training
    scores = [psnr(enhance_tensor(model, x, max_side=max_side), y).item() for _, x, y in pairs]
    model.train(was_training)
    return {"val/psnr": sum(scores) / len(scores)} if scores else {}


def sync_buffers(accelerator, model: torch.nn.Module) -> None:
    """Give every process rank 0's BN statistics: DDP syncs gradients, not running stats,
    and a generator called several times per step leaves them different on each rank."""
    if accelerator.num_processes == 1:
        return
    import torch.distributed as dist

    for buffer in model.buffers():
        dist.broadcast(buffer.data, src=0)


def _multi_process_cpu() -> bool:
    # `accelerate launch --multi_gpu` on a machine without GPUs: Accelerate only sets up gloo
    # processes (MULTI_CPU) when told to use the CPU; otherwise each process trains alone.
    return not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1


def train(config: TrainConfig, *, resume: bool = False, push_to_hub: str | None = None) -> Path:
    run_dir = Path(config.output_dir)
    accelerator = Accelerator(
        cpu=_multi_process_cpu(),
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.grad_accum,
        log_with="tensorboard",
        project_config=ProjectConfiguration(project_dir=str(run_dir), logging_dir=str(run_dir / "tensorboard")),
    )
    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(_yaml(to_dict(config)))
    set_seed(config.seed)  # the same initial weights on every process
    task = make_task(config, accelerator)
    average = None
    if config.ema_decay:
        average = WeightAverage(task.enhancer(), config.ema_decay)
        accelerator.register_for_checkpointing(average)  # saved and restored with the checkpoints
    # last, so that older checkpoints' objects keep their positions (checkpoints.py)
    accelerator.register_for_checkpointing(*task.schedulers)
    log = RunLog(accelerator, run_dir)
    val_pairs = validation_pairs(config) if accelerator.is_main_process else []

    start = 0
    if resume:
        checkpoint = latest_checkpoint(run_dir)
        if checkpoint is None:
            accelerator.print(f"no checkpoint in {run_dir}; starting from step 0")
        else:
            state = load_checkpoint(accelerator, checkpoint, task.schedulers)
            start = state["step"]
            task.load_data_state(state["data"])
            accelerator.print(f"resumed from {checkpoint} at step {start}")
    accelerator.init_trackers("dpe", config=_flat(to_dict(config)))

    progress = Progress(config.steps, start, desc=config.mode, enabled=accelerator.is_main_process)
    end = min(config.steps, config.stop_at or config.steps)
    stop = StopRequest()
    bad_streak = 0  # non-finite (skipped) steps in a row
    restored_from = None  # the checkpoint the last restore loaded, until a newer one is saved
    step = start
    while step < end:
        values = task.train_step(step)
        step_schedulers(task.schedulers)  # before any checkpoint of step `done`
        done = step + 1
        logged = False  # values logged (and shown) at this step
        if stop.requested(accelerator):  # Ctrl-C or SIGTERM: keep the work done so far
            end = done
            break
        if values.get("skipped/nonfinite"):  # the task skipped the update (same on every process)
            bad_streak += 1
            accelerator.print(f"step {done}: non-finite loss, update skipped ({bad_streak} in a row): "
                              + ", ".join(f"{k}={v:.4g}" for k, v in values.items()))
            log(done, {k: (v if math.isfinite(v) else str(v)) for k, v in values.items()})
            if bad_streak >= config.max_bad_steps:
                restored_from, step = _restore_last_good(accelerator, task, run_dir, done, bad_streak,
                                                         restored_from)
                bad_streak = 0
                progress.update(step)
                continue
        else:
            bad_streak = 0
            if average is not None:
                average.update(task.enhancer())
            if not all(math.isfinite(v) for v in values.values()):
                accelerator.print(f"step {done}: non-finite value {values}")
            logged = done % config.log_every == 0 or done == config.steps
            if logged:
                log(done, values)
        if config.val_every and (done % config.val_every == 0 or done == config.steps):
            if accelerator.is_main_process:
                scores = validate(_enhancer(task, average), val_pairs, config.data.max_side)
                log(done, scores)
                if scores:
                    progress.note(f"step {done}: " + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
            accelerator.wait_for_everyone()
        # no checkpoint in a streak of skipped steps: `latest` stays the last good one
        if config.save_every and done % config.save_every == 0 and done != end and bad_streak == 0:
            save_checkpoint(accelerator, run_dir, done, {"step": done, "data": task.data_state()},
                            keep=config.keep_checkpoints)
            restored_from = None
        progress.update(done, values if logged else None)
        step = done
    progress.close()
    stop.restore()  # a second Ctrl-C now aborts at once; checkpoints are atomic, so nothing breaks
    if end < config.steps:
        save_checkpoint(accelerator, run_dir, end, {"step": end, "data": task.data_state()},
                        keep=config.keep_checkpoints)
        accelerator.print(f"stopped at step {end} of {config.steps}; continue with --resume")
        accelerator.end_training()
        return run_dir

    models = _final_models(task, average)
    for model in models.values():
        sync_buffers(accelerator, model)
    _write_digest(accelerator, run_dir, models)
    save_checkpoint(accelerator, run_dir, config.steps, {"step": config.steps, "data": task.data_state()},
                    keep=config.keep_checkpoints)
    if accelerator.is_main_process:
        publish(models, config, run_dir, push_to_hub)
    accelerator.end_training()
    return run_dir


def _enhancer(task, average: WeightAverage | None) -> torch.nn.Module:
    return task.enhancer() if average is None else average.model


def _final_models(task, average: WeightAverage | None) -> dict[str, torch.nn.Module]:
    """The task's models by folder name; with `ema_decay`, `generator` is the weight average
    and the last weights are kept as `generator_online`."""
    models = task.final_models()
    if average is not None:
        models = {**models, "generator": average.model, "generator_online": models["generator"]}
    return models


def _restore_last_good(accelerator, task, run_dir: Path, done: int, streak: int, restored_from):
    """After `max_bad_steps` skipped steps in a row: load the latest checkpoint (models,
    optimisers, RNG, data position) and go on from its step. Returns (checkpoint, step)."""
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise RuntimeError(f"step {done}: {streak} non-finite losses in a row and no checkpoint in "
                           f"{run_dir} to restore; lower the learning rate or check the data "
                           "(max_bad_steps sets how many skipped steps are tolerated)")
    if restored_from is not None and Path(restored_from) == checkpoint:
        raise RuntimeError(f"step {done}: {streak} non-finite losses in a row again after restoring "
                           f"{checkpoint}; the divergence is reproducible from there, giving up "
                           "(lower the learning rate or check the data)")
    state = load_checkpoint(accelerator, checkpoint, task.schedulers)
    task.load_data_state(state["data"])
    accelerator.print(f"step {done}: {streak} non-finite losses in a row; restored {checkpoint} "
                      f"(step {state['step']})")
    return checkpoint, state["step"]


def weights_digest(models: dict[str, torch.nn.Module]) -> str:
    """SHA-256 of every parameter and buffer: equal digests mean bit-identical models."""
    h = hashlib.sha256()
    for name, model in sorted(models.items()):
        for key, tensor in sorted(model.state_dict().items()):
            h.update(f"{name}.{key}".encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _write_digest(accelerator, run_dir: Path, models) -> None:
    """Each process records its final weights' digest: data-parallel processes must agree."""
    folder = run_dir / "digests"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"process_{accelerator.process_index}.txt").write_text(weights_digest(models) + "\n")


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out


def _yaml(tree: dict) -> str:
    import yaml

    def plain(v):
        if isinstance(v, tuple):
            return list(v)
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return yaml.safe_dump(plain(tree), sort_keys=False)
