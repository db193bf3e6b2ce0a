"""Resizing of image tensors: bilinear, antialiased when shrinking (PIL-like, not aliased).

Used to bring photos down to the network's working resolution (the paper trains at 512 on the
long side) and to bring low-resolution results back to full size.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F

__all__ = ["resize_long_side", "resize_to"]

# torch's antialiased CPU kernel has no half-precision implementation.
_UPCAST = (torch.float16, torch.bfloat16)


def _check_image(x: torch.Tensor, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in (3, 4):
        raise ValueError(f"{name} must have shape (C, H, W) or (B, C, H, W), got {tuple(x.shape)}")
    if x.shape[-1] < 1 or x.shape[-2] < 1 or x.shape[-3] < 1:
        raise ValueError(f"{name} must have C, H, W >= 1, got {tuple(x.shape)}")
    if not (x.is_floating_point() or x.dtype == torch.uint8):
        raise ValueError(f"{name} must be a floating-point or uint8 tensor, got dtype {x.dtype}")


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be a positive int, got {value!r}") from None
    if v < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return v


def _interpolate(x: torch.Tensor, size: tuple[int, int], antialias: bool) -> torch.Tensor:
    batched = x.dim() == 4
    y = x if batched else x.unsqueeze(0)
    dtype = y.dtype
    if dtype in _UPCAST:
        y = y.float()
    y = F.interpolate(y, size=size, mode="bilinear", align_corners=False, antialias=antialias)
    y = y.to(dtype)
    return y if batched else y.squeeze(0)


def resize_long_side(
    x: torch.Tensor, long_side: int, *, allow_upscale: bool = False, antialias: bool = True
) -> torch.Tensor:
    """Resize so that the longer of H, W equals ``long_side``, keeping the aspect ratio.

    Args:
        x: (C, H, W) or (B, C, H, W), floating point or uint8.
        long_side: target length of the longer side, >= 1.
        allow_upscale: if False (default), an image whose long side is already <= ``long_side``
            is returned as is (the same tensor object), since enlarging adds no detail.
        antialias: low-pass before shrinking, as PIL does; only matters when shrinking.

    Returns:
        Same rank, dtype and device; the long side is ``long_side`` and the short side is
        ``round(short * long_side / long)`` (half up), at least 1.
        Bilinear, ``align_corners=False``.
    """
    _check_image(x)
    long_side = _positive_int(long_side, "long_side")
    h, w = x.shape[-2:]
    long, short = max(h, w), min(h, w)
    if long == long_side or (long < long_side and not allow_upscale):
        return x
    # Exact integer round-half-up of short * long_side / long (no float surprises at .5).
    new_short = max(1, (2 * short * long_side + long) // (2 * long))
    size = (long_side, new_short) if h >= w else (new_short, long_side)
    return _interpolate(x, size, antialias and long_side < long)


def resize_to(x: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """Resize to exactly ``size_hw`` = (height, width), bilinear, antialiased when shrinking.

    Args:
        x: (C, H, W) or (B, C, H, W), floating point or uint8.
        size_hw: (height, width), both >= 1. The aspect ratio may change.

    Returns:
        Same rank, dtype and device. ``x`` itself when it already has that size.
    """
    _check_image(x)
    try:
        th, tw = size_hw
    except (TypeError, ValueError):
        raise ValueError(f"size_hw must be a (height, width) pair, got {size_hw!r}") from None
    th, tw = _positive_int(th, "size_hw[0]"), _positive_int(tw, "size_hw[1]")
    h, w = x.shape[-2:]
    if (th, tw) == (h, w):
        return x
    # torch's antialias acts per axis and equals plain bilinear on an enlarged axis, so this is
    # only about skipping the (slower) antialiased kernel when nothing shrinks.
    return _interpolate(x, (th, tw), th < h or tw < w)
