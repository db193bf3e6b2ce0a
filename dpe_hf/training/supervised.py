"""Supervised mode: MSE between the generator's output and the paired target (paper, Table 1)."""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LambdaLR

from dpe_hf.losses import supervised_loss
from dpe_hf.training.config import TrainConfig
from dpe_hf.training.data import pair_stream
from dpe_hf.training.guards import buffer_snapshot, injected_nan_steps, nonfinite, restore_buffers
from dpe_hf.training.models import build_generator
from dpe_hf.training.schedule import lr_factor


class SupervisedTask:
    """One generator, one optimizer, one stream of (input, target) crops (a `Task`, see task.py)."""

    def __init__(self, config: TrainConfig, accelerator):
        self.config = config
        self.accelerator = accelerator
        generator = build_generator(config)
        optimizer = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=config.betas)
        self.generator, self.optimizer = accelerator.prepare(generator, optimizer)
        self.schedulers = [LambdaLR(self.optimizer, lambda step: lr_factor(config, step))]
        self.stream = iter_stream = pair_stream(config, accelerator)
        self._examples = iter(iter_stream)
        self._inject_nan = injected_nan_steps(accelerator)  # testing hook (see its doc); empty normally

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = zip(*(next(self._examples) for _ in range(self.config.batch_size)))
        if self.config.data.reverse:
            xs, ys = ys, xs
        device = self.accelerator.device
        memory_format = torch.channels_last if self.config.channels_last else torch.contiguous_format
        return (torch.stack(xs).to(device, memory_format=memory_format),
                torch.stack(ys).to(device, memory_format=memory_format))

    def train_step(self, step: int) -> dict[str, float]:
        """One optimizer step. A NaN/Inf loss (on any process) skips the update: no backward,
        no step, BN statistics put back, and `skipped/nonfinite: 1` in the returned values."""
        inject = (step + 1) in self._inject_nan
        self._inject_nan.discard(step + 1)
        snapshot = buffer_snapshot(self.generator)
        total, skipped = 0.0, False
        for _ in range(self.config.grad_accum):
            x, y = self._batch()  # every micro-batch is read, skipped or not (same data positions)
            with self.accelerator.accumulate(self.generator), self.accelerator.autocast():
                if skipped:
                    continue
                loss = supervised_loss(self.generator(x), y)
                if inject:
                    loss = loss * float("nan")
                if nonfinite(self.accelerator, loss):
                    skipped = True
                    total = loss.detach().float().item() * self.config.grad_accum  # logged as is
                    continue
                self.accelerator.backward(loss)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
            total += loss.detach().float().item()
        values = {"loss/mse": total / self.config.grad_accum, "lr": self.optimizer.param_groups[0]["lr"]}
        if skipped:
            self.optimizer.zero_grad(set_to_none=True)  # gradients of earlier micro-batches
            restore_buffers(snapshot)
            values["skipped/nonfinite"] = 1
        return values

    # -- what the loop needs ---------------------------------------------------------------
    def enhancer(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.generator)

    def data_state(self) -> dict:
        return self.stream.state_dict()

    def load_data_state(self, state: dict) -> None:
        self.stream.load_state_dict(state)
        self._examples = iter(self.stream)

    def final_models(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.enhancer()}
