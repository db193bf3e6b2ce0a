"""Enhance photos of any size with a trained generator.

The network runs once on a copy whose long side is `max_side` (512, the size it was trained
at; smaller images run at their own size), then the change is carried to full resolution by
upsampling the low-resolution residual (output - input) and adding it to the full-size input.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch
from PIL import Image

from dpe_hf.ops.resize import resize_long_side, resize_to

DEFAULT_MAX_SIDE = 512

ImageLike = TypeVar("ImageLike", Image.Image, np.ndarray, torch.Tensor)


@torch.inference_mode()
def enhance_tensor(generator: torch.nn.Module, x: torch.Tensor, *, max_side: int = DEFAULT_MAX_SIDE,
                   strength: float = 1.0) -> torch.Tensor:
    """Enhance (B,3,H,W) float in [0,1] at full size; returns the same shape, in [0,1]."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a (B,3,H,W) tensor, got shape {tuple(x.shape)}")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    generator.eval()
    param = next(generator.parameters())
    low = resize_long_side(x, max_side).to(param.device, param.dtype)
    out_low = generator(low).clamp(0, 1).to(x.device, x.dtype)
    if low.shape[-2:] == x.shape[-2:]:
        out = out_low
    else:
        residual = out_low - low.to(x.device, x.dtype)
        out = (x + resize_to(residual, x.shape[-2:])).clamp(0, 1)
    if strength != 1.0:
        out = x + strength * (out - x)
    return out


def enhance(generator: torch.nn.Module, image: ImageLike, *, max_side: int = DEFAULT_MAX_SIDE,
            strength: float = 1.0) -> ImageLike:
    """Enhance one photo at its own size and return it as the type it was given.

    - PIL image: any mode is enhanced as RGB; RGBA/LA keep their alpha; returns RGB or RGBA.
    - numpy array H×W×3: uint8, uint16 or float in [0,1]; returns the same dtype.
    - torch tensor (3,H,W) or (B,3,H,W), float in [0,1]; returns the same shape and dtype.
    """
    if isinstance(image, torch.Tensor):
        batched = image if image.ndim == 4 else image.unsqueeze(0)
        out = enhance_tensor(generator, batched.float(), max_side=max_side, strength=strength).to(image.dtype)
        return out if image.ndim == 4 else out[0]
    if isinstance(image, Image.Image):
        alpha = image.getchannel("A") if image.mode in ("RGBA", "LA") else None
        out = Image.fromarray(enhance(generator, np.asarray(image.convert("RGB")), max_side=max_side,
                                      strength=strength))
        if alpha is not None:
            out.putalpha(alpha)
        return out
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 array, got shape {image.shape}")
        scale = _dtype_scale(image.dtype)
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / scale
        out = enhance_tensor(generator, x, max_side=max_side, strength=strength)[0].permute(1, 2, 0).numpy()
        if scale == 1.0:
            return out.astype(image.dtype)
        return np.round(out * scale).astype(image.dtype)
    raise TypeError(f"enhance() takes a PIL image, a numpy array or a torch tensor, not {type(image).__name__}")


def _dtype_scale(dtype: np.dtype) -> float:
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    if np.issubdtype(dtype, np.floating):
        return 1.0
    raise ValueError(f"unsupported array dtype {dtype}: use uint8, uint16 or float in [0,1]")
