"""The training contract: what a training mode gives the loop (`Task`), and which class trains
which mode (`TASKS`).

The loop (`dpe_hf.training.loop.train`) owns the Accelerator, seeding, logging, validation,
checkpoints, the weight average and publishing; a task owns its models, optimizers, learning-rate
schedulers, data streams and the arithmetic of one step. The split follows pytorch-CycleGAN-and-
pix2pix's `BaseModel`, adapted:

* `__init__` + `setup` (networks, optimizers, schedulers) -> `__init__(config, accelerator)`;
* `set_input` + `optimize_parameters` -> `train_step(step)`: a task reads its own data
  streams, whose positions (`data_state`) a checkpoint keeps;
* `get_current_losses` -> the values `train_step` returns;
* `update_learning_rate` -> the loop steps the task's `schedulers` after each step;
* `save_networks` / `load_networks` -> Accelerate's `save_state`/`load_state` (all that was
  `prepare`d or registered), and `final_models` for publishing.

A task module imports neither the loop nor this module (whose registry imports it): what the
loop and the tasks share (non-finite checks, BN snapshots, the NaN hook, stop requests) is in
`guards`, the schedule in `schedule`; a task keeps the contract by its shape (a Protocol), and
tests/test_training.py checks every registered class against it.
"""

from __future__ import annotations

from typing import Callable, Protocol

import torch
from torch.optim.lr_scheduler import LRScheduler

from dpe_hf.training.config import TrainConfig


class Task(Protocol):
    """One training mode, built as `TaskClass(config, accelerator)` on every process after the
    loop has seeded (so every process builds the same initial weights). The constructor
    `accelerator.prepare`s the models and optimizers, registers any other state that a
    checkpoint must carry (`register_for_checkpointing`, e.g. the A-WGAN λ controllers), builds
    one `LambdaLR` per optimizer and its data streams (sharded by process)."""

    schedulers: list[LRScheduler]
    """One per optimizer, each at the lr of the next step. The loop steps them once after every
    `train_step` (skipped or not) and registers them for checkpointing, after the task's own
    objects and the weight average (Accelerate matches saved objects by position)."""

    def train_step(self, step: int) -> dict[str, float]:
        """Train one step: `step` is 0-based, the log calls it `step + 1`. Reads this step's
        batch from the task's streams, updates the models, and returns the values to log (losses,
        `lr`; floats). A non-finite loss on any process must skip the update on every process,
        leave the models' weights and BN statistics as they were, and return `skipped/nonfinite: 1`
        with the values: the loop counts such steps and restores the last checkpoint after
        `max_bad_steps` in a row."""
        ...

    def enhancer(self) -> torch.nn.Module:
        """The unwrapped model that enhances photos (validation, the weight average)."""
        ...

    def data_state(self) -> dict:
        """This process's data stream positions, JSON-serialisable: saved with each checkpoint."""
        ...

    def load_data_state(self, state: dict) -> None:
        """Go back to the positions `data_state` returned (resume, restore after bad steps)."""
        ...

    def final_models(self) -> dict[str, torch.nn.Module]:
        """The unwrapped models to publish, by folder name; "generator" is the enhancer."""
        ...


def _supervised() -> type:
    from dpe_hf.training.supervised import SupervisedTask

    return SupervisedTask


def _gan() -> type:
    from dpe_hf.training.gan import GANTask

    return GANTask


# Imported on use, one module per mode: a broken GAN module must not break supervised training.
TASKS: dict[str, Callable[[], type]] = {"supervised": _supervised, "gan1way": _gan, "gan2way": _gan}


def make_task(config: TrainConfig, accelerator) -> Task:
    """The task that trains `config.mode` (one of `config.MODES`, checked when the config was built)."""
    return TASKS[config.mode]()(config, accelerator)
