"""An exponential moving average of the generator's weights (`ema_decay` in the config).

With a few real pairs, where a run ends depends on the last few mini-batches, and the average of
the weights over the last few hundred steps can be a steadier model than the last weights (for
the bundled recipe, whose learning rate decays to 0, it was not: README, Results). This is
the average that timm (`ModelEmaV2`) and diffusers (`EMAModel`) keep, with TensorFlow's
warm-up: the decay at update n is min(decay, (1 + n) / (10 + n)), so that the first updates
are not dominated by the initial weights. Floating-point buffers (BatchNorm's running
statistics) are averaged like the weights; integer buffers (the batch counters) are copied.
"""

from __future__ import annotations

import copy

import torch


class WeightAverage:
    """Holds `model`, a frozen copy whose weights are the running average; `update` after
    each optimizer step. `state_dict`/`load_state_dict` make it part of a training checkpoint."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        decay = self.current_decay()
        self.updates += 1
        for average, value in zip(self.model.state_dict().values(), model.state_dict().values()):
            if average.is_floating_point():
                average.lerp_(value.detach().to(average.dtype), 1.0 - decay)
            else:
                average.copy_(value)

    def state_dict(self) -> dict:
        return {"updates": self.updates, "model": self.model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        self.model.load_state_dict(state["model"])
