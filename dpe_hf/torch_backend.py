"""`TorchBackend`: a PyTorch generator as the inference core's network (`dpe_hf.enhancer`).

It runs under ``torch.inference_mode`` on the generator's own device and in its dtype; the
core hands it float32 H x W x 3 numpy in [0, 1] and gets the clipped output back as the same.
A generator with ``encode_global`` (`DPEGenerator`) supports ``method="tiled"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dpe_hf.models.generator import MULTIPLE

__all__ = ["TorchBackend"]


class TorchBackend:
    """A `DPEGenerator` (or any module with its call) for `dpe_hf.enhancer.Enhancer`.

    `device`, `dtype`: move the generator there first (`nn.Module.to`, in place); by default
    it runs where its parameters are. The generator is put in eval mode.
    """

    tile_multiple = MULTIPLE  # the U-Net's downsampling factor

    def __init__(self, generator: torch.nn.Module, *, device: str | torch.device | None = None,
                 dtype: torch.dtype | None = None):
        if not isinstance(generator, torch.nn.Module):
            raise TypeError(f"TorchBackend takes a torch.nn.Module, not {type(generator).__name__}")
        if device is not None or dtype is not None:
            generator.to(device=device, dtype=dtype)
        self.generator = generator.eval()
        param = next(generator.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.supports_tiling = hasattr(generator, "encode_global")

    def __repr__(self) -> str:
        return f"TorchBackend({type(self.generator).__name__}, device={self.device}, dtype={self.dtype})"

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        """float32 H x W x 3 -> (1, 3, H, W) on the generator's device, in its dtype."""
        return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].to(self.device, self.dtype)

    @torch.inference_mode()
    def run(self, x: np.ndarray, global_feature: Any = None) -> np.ndarray:
        t = self._tensor(x)
        y = self.generator(t) if global_feature is None else self.generator(t, global_feature=global_feature)
        return y.clamp(0, 1)[0].float().permute(1, 2, 0).cpu().numpy()

    @torch.inference_mode()
    def encode_global(self, x: np.ndarray) -> Any:
        return self.generator.encode_global(self._tensor(x))
