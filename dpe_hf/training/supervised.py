"""Supervised mode: MSE between the generator's output and the paired target (paper, Table 1)."""

from __future__ import annotations

import torch

from dpe_hf.losses import supervised_loss
from dpe_hf.training.config import TrainConfig
from dpe_hf.training.data import pair_stream
from dpe_hf.training.models import build_generator, lr_at


class SupervisedTask:
    """One generator, one optimizer, one stream of (input, target) crops."""

    def __init__(self, config: TrainConfig, accelerator):
        self.config = config
        self.accelerator = accelerator
        generator = build_generator(config)
        optimizer = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=config.betas)
        self.generator, self.optimizer = accelerator.prepare(generator, optimizer)
        self.stream = iter_stream = pair_stream(config, accelerator)
        self._examples = iter(iter_stream)

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = zip(*(next(self._examples) for _ in range(self.config.batch_size)))
        device = self.accelerator.device
        memory_format = torch.channels_last if self.config.channels_last else torch.contiguous_format
        return (torch.stack(xs).to(device, memory_format=memory_format),
                torch.stack(ys).to(device, memory_format=memory_format))

    def train_step(self, step: int) -> dict[str, float]:
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.config, step)
        total = 0.0
        for _ in range(self.config.grad_accum):
            x, y = self._batch()
            with self.accelerator.accumulate(self.generator), self.accelerator.autocast():
                loss = supervised_loss(self.generator(x), y)
                self.accelerator.backward(loss)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
            total += loss.detach().float().item()
        return {"loss/mse": total / self.config.grad_accum, "lr": self.optimizer.param_groups[0]["lr"]}

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
