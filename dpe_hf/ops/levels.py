"""Per-channel levels: each channel stretched so that two of its percentiles go to 0 and 1.

The classic one-click fix (auto-levels), used as a baseline (`dpe_hf.baselines.auto_levels`)
and, mixed into a network's output (`Enhancer(levels=...)`), as a second opinion on the photo's
black point, white point and colour cast. numpy only.
"""

from __future__ import annotations

import numpy as np

LOW_PERCENTILE, HIGH_PERCENTILE = 0.5, 99.5


def levels_bounds(x: np.ndarray, low: float = LOW_PERCENTILE,
                  high: float = HIGH_PERCENTILE) -> tuple[np.ndarray, np.ndarray]:
    """The `low` and `high` percentiles of each channel of H x W x 3 float `x`: two arrays of 3."""
    return np.percentile(x, low, axis=(0, 1)), np.percentile(x, high, axis=(0, 1))


def apply_levels(x: np.ndarray, bounds: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """`x` (float, H x W x 3) with each channel's bounds moved to 0 and 1, clipped; float32."""
    lo, hi = bounds
    return np.clip((x - lo) / np.maximum(hi - lo, 1e-6), 0.0, 1.0).astype(np.float32)
