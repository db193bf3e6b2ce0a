"""Enhancers that learn nothing per photo, to measure a model against (benchmarks/quality.py).

Each takes an H x W x 3 uint8 / uint16 / float image and returns an image of the same size:

* `identity`       the input as it is: the floor any enhancer must beat;
* `auto_levels`    each channel stretched so that two percentiles go to 0 and 1, clipped;
* `autocontrast`   PIL's per-channel autocontrast (8-bit out);
* `FixedLut`       one colour transform for every photo, e.g. an expert's average look: a 3D LUT
                   fitted over (input, retouch) pairs with `dpe_hf.export.lut.LutFitter`, each
                   photo weighing alike. It adapts to nothing, so a model that chooses per photo
                   should beat it;
* `ToneMatch`      one tone distribution for every photo, e.g. an expert's average: each
                   channel's histogram matched to the mean quantile curve of a set of photos
                   (retouches without their inputs will do). It adapts the curve to each
                   photo, but always toward the same distribution.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from dpe_hf.imageio import to_float32
from dpe_hf.export.lut import DEFAULT_SIZE, LutFitter, apply_lut
from dpe_hf.ops.levels import HIGH_PERCENTILE, LOW_PERCENTILE, apply_levels, levels_bounds

__all__ = ["FixedLut", "ToneMatch", "auto_levels", "autocontrast", "identity"]


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


class ToneMatch:
    """Each channel mapped so that its quantiles become `quantiles` (float32 out, in [0, 1])."""

    #: the percentiles matched: 0.5 to 99.5 %, as auto-levels' ends, in 100 steps
    PERCENTILES = np.linspace(LOW_PERCENTILE, HIGH_PERCENTILE, 100)

    def __init__(self, quantiles: np.ndarray):
        self.quantiles = quantiles  # len(PERCENTILES) x 3, non-decreasing per channel

    @classmethod
    def fit(cls, images: Iterable[np.ndarray]) -> ToneMatch:
        """The mean over `images` of each channel's quantile curve (the 1-D Wasserstein barycentre
        of their histograms): every photo weighs alike, whatever its size."""
        curves = [np.percentile(to_float32(image).reshape(-1, 3), cls.PERCENTILES, axis=0) for image in images]
        if not curves:
            raise ValueError("ToneMatch.fit needs at least one image")
        return cls(np.mean(curves, axis=0))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        x = to_float32(image)
        own = np.percentile(x.reshape(-1, 3), self.PERCENTILES, axis=0)
        # a flat channel has repeated quantiles: np.interp needs them non-decreasing, which they are
        out = [np.interp(x[..., c], own[:, c], self.quantiles[:, c]) for c in range(3)]
        return np.clip(np.stack(out, axis=-1), 0.0, 1.0).astype(np.float32)
