"""Argument checks shared by the full-resolution operations (`dpe_hf.ops.guided`) and the
inference core: image arrays, grids, strengths, positive ints. Each returns the value it
checked, normalised (native byte order, float32, a plain int), or raises ValueError naming the
argument. numpy only: tensors are accepted where torch is already imported.
"""

from __future__ import annotations

import operator
import sys
from typing import Any

import numpy as np

__all__ = ["as_hwc_float", "check_grid", "check_image", "check_levels", "check_out", "check_strength", "dtype_scale",
           "positive_int"]


def positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}") from None
    if v < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return v


def check_image(full_in: Any, name: str = "full_in") -> np.ndarray:
    if not isinstance(full_in, np.ndarray):
        raise ValueError(f"{name} must be a numpy array (H x W x 3, uint8 or uint16), "
                         f"got {type(full_in).__name__}")
    if full_in.ndim != 3 or full_in.shape[2] != 3:
        raise ValueError(f"{name} must have shape H x W x 3, got {full_in.shape}")
    if full_in.shape[0] < 1 or full_in.shape[1] < 1:
        raise ValueError(f"{name} is empty: {full_in.shape}")
    if full_in.dtype.kind != "u" or full_in.dtype.itemsize not in (1, 2):
        raise ValueError(f"{name} must be uint8 or uint16, got dtype {full_in.dtype}")
    if not full_in.dtype.isnative:
        full_in = full_in.astype(full_in.dtype.newbyteorder("="))
    return full_in


def check_out(out: np.ndarray | None, full_in: np.ndarray) -> np.ndarray:
    if out is None:
        return np.empty(full_in.shape, full_in.dtype.newbyteorder("="))
    if not isinstance(out, np.ndarray):
        raise ValueError(f"out must be a numpy array, got {type(out).__name__}")
    if out.shape != full_in.shape or out.dtype != full_in.dtype:
        raise ValueError(f"out must have the input's shape {full_in.shape} and dtype {full_in.dtype}, "
                         f"got {out.shape} {out.dtype}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be a writable C-contiguous array")
    return out


def dtype_scale(dtype: np.dtype) -> float:
    """The value of white for an image array: 255, 65535, or 1.0 for floats; else ValueError."""
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    if np.issubdtype(dtype, np.floating):
        return 1.0
    raise ValueError(f"unsupported array dtype {dtype}: use uint8, uint16 or float in [0,1]")


def as_hwc_float(x: Any, name: str) -> np.ndarray:
    """numpy H x W x 3 (uint8, uint16 or float in [0, 1]) or torch (3, H, W) / (1, 3, H, W)
    float in [0, 1] -> float32 numpy (H, W, 3)."""
    torch = sys.modules.get("torch")  # a tensor can only come from an imported torch
    if torch is not None and isinstance(x, torch.Tensor):
        t = x.detach()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 3 or t.shape[0] != 3:
            raise ValueError(f"{name}: a tensor must be (3, H, W) or (1, 3, H, W), got {tuple(x.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{name}: a tensor must be floating point in [0, 1], got {t.dtype}")
        a = t.to("cpu", torch.float32).permute(1, 2, 0).numpy()
    elif isinstance(x, np.ndarray):
        if x.ndim != 3 or x.shape[2] != 3:
            raise ValueError(f"{name}: an array must be H x W x 3, got {x.shape}")
        if x.dtype == np.uint8 or x.dtype == np.uint16:
            a = x.astype(np.float32) / np.float32(dtype_scale(x.dtype))
        elif x.dtype.kind == "f":
            a = np.asarray(x, np.float32)
        else:
            raise ValueError(f"{name}: unsupported dtype {x.dtype} (use uint8, uint16 or float in [0, 1])")
    else:
        raise ValueError(f"{name} must be a numpy array or a torch tensor, got {type(x).__name__}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"{name} is empty: {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} has NaN or infinite values")
    return np.ascontiguousarray(a)


def check_grid(grid: Any) -> np.ndarray:
    torch = sys.modules.get("torch")  # a tensor can only come from an imported torch
    if torch is not None and isinstance(grid, torch.Tensor):
        grid = grid.detach().cpu().numpy()
    if not isinstance(grid, np.ndarray):
        raise ValueError(f"grid must be a numpy array (gh, gw, gd, 3, 4), got {type(grid).__name__}")
    if grid.ndim != 5 or grid.shape[3:] != (3, 4) or min(grid.shape[:3]) < 2:
        raise ValueError(f"grid must have shape (gh, gw, gd, 3, 4) with gh, gw, gd >= 2, got {grid.shape}")
    if grid.dtype.kind != "f":
        raise ValueError(f"grid must be floating point, got {grid.dtype}")
    if not np.isfinite(grid).all():
        raise ValueError("grid has NaN or infinite coefficients")
    return grid


def check_strength(strength: Any) -> float:
    return _fraction(strength, "strength")


def check_levels(levels: Any) -> float:
    """The weight of auto-levels mixed into a network's output (`Enhancer(levels=)`)."""
    return _fraction(levels, "levels")


def _fraction(value: Any, name: str) -> float:
    try:
        s = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= s <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return s
