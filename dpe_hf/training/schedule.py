"""The learning-rate schedule (the paper's): constant, then linear to zero from `lr_decay_start`
of the run.

Each optimizer gets a `torch.optim.lr_scheduler.LambdaLR` whose factor is a function of the
loop's step. The loop steps every scheduler once per loop step, skipped or not, and registers
them with `accelerator.register_for_checkpointing`, so `save_state`/`load_state` carry them.
They are not `accelerator.prepare`d: Accelerate's wrapper steps a scheduler once per process
per call and not at all after an fp16-skipped update, and here the lr follows the step count
alone (as it did when it was set by hand).
"""

from __future__ import annotations

import warnings

from dpe_hf.training.config import TrainConfig


def lr_factor(config: TrainConfig, step: int) -> float:
    """The lr at `step` (0-based) as a multiple of `config.lr`: 1, then linear to 0."""
    start = int(config.lr_decay_start * config.steps)
    if step < start or config.steps <= start:
        return 1.0
    return max(0.0, (config.steps - step) / (config.steps - start))


def lr_at(config: TrainConfig, step: int) -> float:
    # `LambdaLR` computes initial lr * factor: this is that product, float for float
    return config.lr * lr_factor(config, step)


def step_schedulers(schedulers) -> None:
    """Move every scheduler to the next loop step. The schedule counts loop steps, not updates
    (a GAN's generator updates every `n_critic` steps; a skipped step updates nothing), so
    torch's warning about a scheduler step before any `optimizer.step()` does not apply."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
        for scheduler in schedulers:
            scheduler.step()


def move_schedulers_to(schedulers, step: int) -> None:
    """Put the schedulers (and their optimizers' lr) at loop step `step`, as if stepped there."""
    for scheduler in schedulers:
        scheduler.last_epoch = step - 1
    step_schedulers(schedulers)
