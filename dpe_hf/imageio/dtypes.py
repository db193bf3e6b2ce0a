"""Conversions between uint8 / uint16 pixels and float in [0, 1]."""

from __future__ import annotations

from typing import Any

import numpy as np


def to_float32(arr: np.ndarray) -> np.ndarray:
    """uint8 -> /255, uint16 -> /65535, as float32 in [0, 1]; float input is cast unchanged."""
    arr = np.asarray(arr)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / np.float32(65535.0)
    if arr.dtype.kind == "f":
        return arr.astype(np.float32, copy=False)
    raise TypeError(f"to_float32 expects uint8, uint16 or float, got {arr.dtype}")


def from_float(arr: np.ndarray, dtype: Any = np.uint8) -> np.ndarray:
    """Float in [0, 1] -> uint8 (x255) or uint16 (x65535): NaN -> 0, clipped to [0, 1], then
    rounded half to even (np.rint)."""
    dt = np.dtype(dtype)
    if dt not in (np.uint8, np.uint16):
        raise TypeError(f"from_float supports uint8 and uint16, got {dt}")
    scale = 255.0 if dt == np.uint8 else 65535.0
    x = np.nan_to_num(np.asarray(arr, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    x = np.clip(x, 0.0, 1.0) * np.float32(scale)
    return np.rint(x).astype(dt)


def to_8bit(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    # round(v / 257) exactly (257 is odd, so there are no ties)
    return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)


def match_dtype(alpha: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """An alpha plane in the dtype of the colour it goes with."""
    if alpha.dtype == dtype:
        return alpha
    if dtype == np.uint16 and alpha.dtype == np.uint8:
        return alpha.astype(np.uint16) * 257
    if dtype == np.uint8 and alpha.dtype == np.uint16:
        return to_8bit(alpha)
    if alpha.dtype.kind == "f":
        return from_float(alpha, dtype)
    return np.clip(alpha, 0, np.iinfo(dtype).max).astype(dtype)


def gray_to_rgb(arr: np.ndarray) -> np.ndarray:
    return np.repeat(arr[:, :, None], 3, axis=2)
