"""Decoders imported only when a file needs them: OpenCV (JPEG, 16-bit PNG, alpha resizing) and the
packages of the optional extras [raw] and [heif]."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from dpe_hf.errors import ImageReadError


def optional_module(module: str, kind: str, extra: str, path: str | Path) -> Any:
    """Import the package of an optional extra, or say in one line how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImageReadError(path, f'{kind} needs the optional extra: pip install "dpe_hf[{extra}]"') from None


def import_cv2() -> Any:
    # We check the pixel count ourselves; keep OpenCV's own (lower, 2**30) cap out of the way.
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(1 << 40))
    import cv2

    return cv2
