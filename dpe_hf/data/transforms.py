"""Tensor transforms for training data: the dihedral group, paired random crops, PIL conversion.

Everything works on ``(..., C, H, W)`` tensors of any dtype (crops and padding are done by
indexing, so ``uint8`` caches can be cropped before the float conversion). Randomness comes only
from an explicit ``numpy.random.Generator``, so a sequence of crops is reproducible from a seed.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "augment_pair",
    "dihedral",
    "dihedral_inverse",
    "pad_to",
    "pil_to_tensor",
    "random_crop",
    "undo_dihedral",
]


# --------------------------------------------------------------------------------------------
# dihedral group D4
# --------------------------------------------------------------------------------------------


def _check_k(k: int) -> int:
    try:
        k = operator.index(k)
    except TypeError:
        raise ValueError(f"dihedral k must be an int in 0..7, got {k!r}") from None
    if not 0 <= k < 8:
        raise ValueError(f"dihedral k must be in 0..7, got {k}")
    return k


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Element ``k`` (0..7) of the dihedral group D4 applied to the last two dims of ``x``.

    ``k % 4`` counter-clockwise rotations by 90 degrees (``torch.rot90`` on dims (-2, -1)),
    then, if ``k >= 4``, a horizontal flip (mirror of the width axis). ``k = 0`` is the identity
    (``x`` itself is returned). Odd ``k % 4`` swaps H and W.
    """
    k = _check_k(k)
    if x.dim() < 2:
        raise ValueError(f"dihedral needs a (..., H, W) tensor, got shape {tuple(x.shape)}")
    y = x
    if k % 4:
        y = torch.rot90(y, k % 4, dims=(-2, -1))
    if k >= 4:
        y = torch.flip(y, dims=(-1,))
    return y


def dihedral_inverse(k: int) -> int:
    """The ``k'`` with ``dihedral(dihedral(x, k), k') == x``.

    Rotations invert (``(4 - k) % 4``); reflections (``k >= 4``) are their own inverse.
    """
    k = _check_k(k)
    return (4 - k) % 4 if k < 4 else k


def undo_dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Inverse of :func:`dihedral`: ``undo_dihedral(dihedral(x, k), k) == x`` (self-ensembles)."""
    return dihedral(x, dihedral_inverse(k))


# --------------------------------------------------------------------------------------------
# padding and cropping
# --------------------------------------------------------------------------------------------


def _as_hw(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        h = w = int(size)
    else:
        try:
            h, w = (operator.index(v) for v in size)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise ValueError(
                f"size must be an int or an (h, w) pair of ints, got {size!r}"
            ) from None
    if h < 1 or w < 1:
        raise ValueError(f"crop size must be positive, got {size!r}")
    return h, w


def _pad_index(n: int, before: int, after: int) -> torch.Tensor:
    """Source indices of an axis of length ``n`` padded by (before, after).

    Reflect when both pads are smaller than ``n``, else replicate the edge.
    """
    idx = torch.arange(-before, n + after)
    if before < n and after < n:  # reflect without repeating the edge sample (as F.pad "reflect")
        idx = torch.where(idx < 0, -idx, idx)
        idx = torch.where(idx >= n, 2 * (n - 1) - idx, idx)
    else:  # too small to reflect (e.g. 1 pixel): replicate the edge
        idx = idx.clamp(0, n - 1)
    return idx


def pad_to(x: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """Mirror-pad ``x`` (..., H, W) symmetrically so that H >= size[0] and W >= size[1].

    Each axis is reflected (``F.pad`` "reflect" semantics) when the padding is smaller than the
    axis, else replicated. Axes already large enough are untouched; ``x`` itself is returned
    when nothing needs padding. Works for any dtype.
    """
    th, tw = _as_hw(size)
    h, w = x.shape[-2], x.shape[-1]
    if h < 1 or w < 1:
        raise ValueError(f"cannot pad an empty image of shape {tuple(x.shape)}")
    if h < th:
        d = th - h
        x = x.index_select(-2, _pad_index(h, d // 2, d - d // 2).to(x.device))
    if w < tw:
        d = tw - w
        x = x.index_select(-1, _pad_index(w, d // 2, d - d // 2).to(x.device))
    return x


def random_crop(
    *tensors: torch.Tensor, size: int | Sequence[int], rng: np.random.Generator
) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """Random ``size`` crop of each tensor (..., H, W); one window per distinct H x W.

    All tensors of the same spatial size (a paired input / target) get the *same* window; a
    tensor of another size draws its own window (windows are drawn in order of first
    appearance of each size, so the result is a pure function of the rng state). Images smaller
    than ``size`` are first mirror-padded up to it (:func:`pad_to`).

    Returns a single tensor when one is given, else a tuple in the input order. The crops are
    views of the (padded) inputs; clone them if you modify them in place.
    """
    if not tensors:
        raise ValueError("random_crop needs at least one tensor")
    th, tw = _as_hw(size)
    windows: dict[tuple[int, int], tuple[int, int]] = {}
    out = []
    for t in tensors:
        if t.dim() < 2:
            raise ValueError(f"random_crop needs (..., H, W) tensors, got shape {tuple(t.shape)}")
        key = (t.shape[-2], t.shape[-1])
        t = pad_to(t, (th, tw))
        h, w = t.shape[-2], t.shape[-1]
        if key not in windows:
            windows[key] = (int(rng.integers(0, h - th + 1)), int(rng.integers(0, w - tw + 1)))
        top, left = windows[key]
        out.append(t[..., top : top + th, left : left + tw])
    return out[0] if len(out) == 1 else tuple(out)


def augment_pair(
    x: torch.Tensor,
    y: torch.Tensor,
    size: int | Sequence[int],
    rng: np.random.Generator,
    dihedral: bool = True,  # noqa: A002 - the documented keyword
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random crop and (if ``dihedral``) the same random D4 element for ``x`` and ``y``.

    ``x`` and ``y`` should have the same H x W (a registered pair); they then get the same
    window. Draws from ``rng``: the crop window, then ``k`` in 0..7 (only when ``dihedral``).
    """
    cx, cy = random_crop(x, y, size=size, rng=rng)
    if dihedral:
        k = int(rng.integers(0, 8))
        cx, cy = _dihedral(cx, k), _dihedral(cy, k)
    return cx, cy


_dihedral = dihedral  # augment_pair's keyword shadows the function inside it


# --------------------------------------------------------------------------------------------
# PIL -> tensor
# --------------------------------------------------------------------------------------------


def pil_to_tensor(img) -> torch.Tensor:
    """A PIL image as a (3, H, W) float32 tensor in [0, 1], upright and RGB.

    The EXIF orientation is applied (``ImageOps.exif_transpose``). 8-bit modes (L, LA, P, PA,
    RGBA, CMYK, YCbCr, 1, ...) are converted to RGB, alpha is dropped. 16/32-bit integer modes
    (``I;16*``, ``I``) are scaled by 1/65535 (they come from 16-bit PNG / TIFF files), float
    mode ``F`` is clipped to [0, 1]; single channels are repeated to RGB.
    """
    from PIL import Image, ImageOps

    if not isinstance(img, Image.Image):
        raise TypeError(f"pil_to_tensor expects a PIL.Image.Image, got {type(img).__name__}")
    img = ImageOps.exif_transpose(img) or img
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(img).astype(np.float32) / 65535.0
        arr = np.clip(arr, 0.0, 1.0)
    elif mode == "F":
        arr = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
    else:
        if mode != "RGB":
            if mode in ("P", "PA") or "transparency" in img.info:
                img = img.convert("RGBA")
            img = img.convert("RGB")
        arr = np.asarray(img, dtype=np.uint8).astype(np.float32) / 255.0
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
