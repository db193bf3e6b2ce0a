"""Enhancers that learn nothing per photo, to measure a model against (benchmarks/quality.py).

Each takes an H x W x 3 uint8 / uint16 / float image and returns an image of the same size:

* `identity`       the input as it is: the floor any enhancer must beat;
* `auto_levels`    each channel stretched so that two percentiles go to 0 and 1, clipped;
* `autocontrast`   PIL's per-channel autocontrast (8-bit out);
* `FixedLut`       one colour transform for every photo, e.g. an expert's average look: a 3D LUT
                   fitted over (input, retouch) pairs with `dpe_hf.export.lut.LutFitter`, each
                   photo weighing alike. It adapts to nothing, so a model that chooses per photo
                   should beat it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from dpe_hf.imageio import to_float32
from dpe_hf.export.lut import DEFAULT_SIZE, LutFitter, apply_lut
from dpe_hf.ops.levels import HIGH_PERCENTILE, LOW_PERCENTILE, apply_levels, levels_bounds

__all__ = ["FixedLut", "auto_levels", "autocontrast", "identity"]


def identity(image: np.ndarray) -> np.ndarray:
    return image


def auto_levels(image: np.ndarray, low: float = LOW_PERCENTILE, high: float = HIGH_PERCENTILE) -> np.ndarray:
    """Per channel: the `low` and `high` percentiles go to 0 and 1, clipped (float32 out)."""
    x = to_float32(image)
    return apply_levels(x, levels_bounds(x, low, high))


def autocontrast(image: np.ndarray, cutoff: float = 0.5) -> np.ndarray:
    """PIL.ImageOps.autocontrast per channel, `cutoff` % cut at each end; 16-bit input is rounded
    to 8 bits first (PIL's autocontrast works on 8-bit images)."""
    from PIL import Image, ImageOps

    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return np.asarray(ImageOps.autocontrast(Image.fromarray(image), cutoff=cutoff))


class FixedLut:
    """The same 3D colour LUT applied to every photo (trilinear, the image's dtype out)."""

    def __init__(self, lut: np.ndarray):
        self.lut = lut

    @classmethod
    def fit(cls, pairs: Iterable[tuple[np.ndarray, np.ndarray]], size: int = DEFAULT_SIZE) -> FixedLut:
        """The LUT that maps each pair's input to its target, over all pairs (images of any size,
        each weighing alike)."""
        fitter = LutFitter(size)
        for inputs, targets in pairs:
            fitter.add(inputs, targets)
        return cls(fitter.solve())

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return apply_lut(image, self.lut)
