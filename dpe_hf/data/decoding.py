"""Decoding the images of a corpus, once, to uint8 tensors brought to ``max_side``.

Decoding is done here, not by ``datasets`` (the image columns are cast to
``Image(decode=False)``), so that an undecodable file is skipped with a
:class:`CorruptImageWarning` that names it instead of crashing the run. Images are brought to
``max_side`` on their long side once (the paper's 512-px protocol); the crop streams keep them
in memory: decoding a 6000-px JPEG per example is far slower than a training step.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import torch

from dpe_hf.data.transforms import pil_to_tensor
from dpe_hf.errors import ImageReadError
from dpe_hf.imageio import DEFAULT_MAX_PIXELS, from_float, read_image, to_float32
from dpe_hf.ops.guided import downscale_long_side


class CorruptImageWarning(UserWarning):
    """An image of a corpus could not be decoded and was skipped."""


def _value_name(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("path") or "<image bytes>")
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    return getattr(value, "filename", None) or f"<{type(value).__name__}>"


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)


def decode_image(value: Any, max_side: int | None = 512) -> torch.Tensor:
    """Decode one image value to a (3, H, W) uint8 tensor, long side reduced to ``max_side``.

    ``value`` is what an ``Image(decode=False)`` column holds (``{"bytes", "path"}``), a path,
    or a PIL image. Files and bytes are read by :func:`dpe_hf.imageio.read_image` (upright, RGB,
    16 bits kept until the final rounding, at most ``DEFAULT_MAX_PIXELS``); a PIL image is
    converted by :func:`~dpe_hf.data.transforms.pil_to_tensor`. Images larger than ``max_side``
    are area-averaged by ``dpe_hf.ops.guided.downscale_long_side`` on the integer array, the
    copy `dpe enhance` shows the network; never upscaled. Big JPEGs are decoded at a reduced DCT
    scale first (never below twice ``max_side``).

    Raises ``ImageReadError`` for an undecodable file (see :func:`try_decode`).
    """
    from PIL import Image

    if isinstance(value, Image.Image):  # a caller's image, decoded already; 16 bits until the end
        arr = from_float(pil_to_tensor(value).permute(1, 2, 0).numpy(), np.uint16)
    elif isinstance(value, dict) and value.get("bytes") is not None:
        arr, _ = read_image(value.get("path") or "<image bytes>", data=value["bytes"],
                            max_pixels=DEFAULT_MAX_PIXELS, jpeg_draft_side=max_side)
    elif isinstance(value, dict) and value.get("path"):
        arr, _ = read_image(value["path"], max_pixels=DEFAULT_MAX_PIXELS, jpeg_draft_side=max_side)
    elif isinstance(value, (str, os.PathLike)):
        arr, _ = read_image(value, max_pixels=DEFAULT_MAX_PIXELS, jpeg_draft_side=max_side)
    else:
        raise ValueError(f"not an image value: {type(value).__name__}")
    if max_side:
        arr = downscale_long_side(arr, max_side)
    return to_uint8(torch.from_numpy(np.ascontiguousarray(to_float32(arr).transpose(2, 0, 1))))


def try_decode(
    value: Any, max_side: int | None, warned: set[str] | None = None
) -> torch.Tensor | None:
    """:func:`decode_image`; on failure None and a :class:`CorruptImageWarning` (once per name)."""
    try:
        return decode_image(value, max_side)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except ModuleNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - a caller's PIL image may raise many types
        name = _value_name(value)
        if warned is None or name not in warned:
            if warned is not None:
                warned.add(name)
            if isinstance(e, ImageReadError):  # its message starts with the name again
                msg = e.reason
            else:
                msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            warnings.warn(f"{name}: skipping undecodable image ({type(e).__name__}: {msg})",
                          CorruptImageWarning, stacklevel=3)
        return None
