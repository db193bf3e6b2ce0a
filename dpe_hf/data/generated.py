"""Procedural, photo-like test images, so that smoke runs and tests need no binary fixture.

The images are not meant to be pretty, only to exercise what a photo enhancer sees: smooth
gradients (sky), a horizon and hard-edged shapes (sharp edges for resizing / tiling seams),
soft-edged coloured blobs (mid-frequency colour variation), dark and bright regions (room for
exposure edits), and mild grain (so that nothing is perfectly flat).
"""

from __future__ import annotations

import operator
from pathlib import Path

import numpy as np

__all__ = ["generated_photo", "write_generated_folder"]

_GRID = 12  # nodes per side of the low-frequency texture

_FORMATS = {
    "png": "PNG",
    "jpg": "JPEG",
    "jpeg": "JPEG",
    "tif": "TIFF",
    "tiff": "TIFF",
    "bmp": "BMP",
    "webp": "WEBP",
}


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    try:
        h, w = (operator.index(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be a (height, width) pair of ints, got {size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    return h, w


def _interp_matrix(n: int) -> np.ndarray:
    """(n, _GRID) weights that linearly interpolate _GRID nodes spanning [0, 1] to n points."""
    pos = (np.arange(n, dtype=np.float32) + 0.5) / n * (_GRID - 1)
    # Hat functions: weight 1 - |pos - k| for the two grid points around pos.
    return np.maximum(0.0, 1.0 - np.abs(pos[:, None] - np.arange(_GRID, dtype=np.float32)[None, :]))


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Blend colours a, b (3,) by weights t (..., 1) -> (..., 3)."""
    return a + (b - a) * t


def generated_photo(size: tuple[int, int], seed: int) -> np.ndarray:
    """A deterministic procedural photo-like image.

    Args:
        size: (height, width) in pixels, both >= 1.
        seed: any int accepted by ``numpy.random.default_rng``; same seed, same image.

    Returns:
        (H, W, 3) uint8 RGB array.
    """
    h, w = _check_size(size)
    rng = np.random.default_rng(seed)
    f32 = np.float32
    # Normalised coordinates in [0, 1]; the shorter side sets the scale of shapes so that the
    # composition looks alike at any aspect ratio.
    yy = (np.arange(h, dtype=f32) + 0.5)[:, None] / h
    xx = (np.arange(w, dtype=f32) + 0.5)[None, :] / w
    aspect = f32(w / h)

    # Sky: vertical gradient from a deeper zenith colour to a paler horizon colour.
    zenith = rng.uniform([0.15, 0.25, 0.45], [0.45, 0.6, 0.9]).astype(f32)
    horizon_col = rng.uniform([0.6, 0.6, 0.55], [0.95, 0.9, 0.95]).astype(f32)
    img = _lerp(zenith, horizon_col, (yy**0.8)[..., None] * np.ones((1, w, 1), f32))

    # Ground below a gently wavy horizon: a hard edge, darker and warmer than the sky.
    phase, freq, amp = rng.uniform(0, 2 * np.pi), rng.uniform(1, 4), rng.uniform(0.01, 0.05)
    horizon = rng.uniform(0.45, 0.75) + amp * np.sin(2 * np.pi * freq * xx + phase)
    ground_top = rng.uniform([0.2, 0.25, 0.05], [0.55, 0.5, 0.3]).astype(f32)
    ground_bot = ground_top * f32(rng.uniform(0.25, 0.6))
    below = yy >= horizon  # (H, W)
    t = np.clip((yy - horizon) / np.maximum(1.0 - horizon, 1e-3), 0, 1)[..., None]
    img = np.where(below[..., None], _lerp(ground_top, ground_bot, t), img)

    # Soft-edged elliptical blobs (foliage, clouds, out-of-focus objects). Each is blended only
    # inside its 3-sigma box: the Gaussian is < 1.2 % there, and this keeps the function cheap.
    for _ in range(rng.integers(3, 7)):
        cy, cx = rng.uniform(0.1, 0.95), rng.uniform(0.05, 0.95)
        sy, sx = rng.uniform(0.04, 0.18), rng.uniform(0.04, 0.18) / aspect
        colour = rng.uniform(0.05, 0.95, 3).astype(f32)
        opacity = rng.uniform(0.5, 0.95)
        r0, r1 = max(int((cy - 3 * sy) * h), 0), min(int((cy + 3 * sy) * h) + 1, h)
        c0, c1 = max(int((cx - 3 * sx) * w), 0), min(int((cx + 3 * sx) * w) + 1, w)
        if r0 >= r1 or c0 >= c1:
            continue
        gy = np.exp(-0.5 * ((yy[r0:r1] - cy) / sy) ** 2)
        gx = np.exp(-0.5 * ((xx[:, c0:c1] - cx) / sx) ** 2)
        patch = img[r0:r1, c0:c1]
        patch += (colour - patch) * (opacity * gy * gx)[..., None]
    # Hard-edged shapes: a "building" rectangle and a disc, for sharp edges in both directions.
    for _ in range(rng.integers(1, 3)):
        y0, x0 = rng.uniform(0.2, 0.8), rng.uniform(0.0, 0.8)
        y1, x1 = min(y0 + rng.uniform(0.1, 0.5), 1.0), min(x0 + rng.uniform(0.05, 0.3), 1.0)
        mask = (yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1)
        colour = rng.uniform(0.02, 0.9, 3).astype(f32)
        # A vertical shading ramp so the rectangle is lit, not flat.
        shade = (1.0 - 0.4 * (yy - y0) / max(y1 - y0, 1e-3))[..., None]
        img = np.where(mask[..., None], colour * shade, img)
    cy, cx, r = rng.uniform(0.15, 0.85), rng.uniform(0.1, 0.9), rng.uniform(0.03, 0.12)
    disc = ((yy - cy) ** 2 + ((xx - cx) * aspect) ** 2) < r * r
    img = np.where(disc[..., None], rng.uniform(0.3, 1.0, 3).astype(f32), img)

    # Gentle vignette, as from a real lens.
    vig = 1.0 - f32(rng.uniform(0.05, 0.3)) * ((yy - 0.5) ** 2 + (xx - 0.5) ** 2) * 2.0
    img = img * vig[..., None]

    # Grain: per-pixel noise plus a faint, smooth low-frequency luminance texture.
    img += rng.standard_normal((h, w, 3), dtype=f32) * f32(rng.uniform(0.005, 0.02))
    coarse = rng.standard_normal((_GRID, _GRID), dtype=f32) * f32(0.015)
    img += (_interp_matrix(h) @ coarse @ _interp_matrix(w).T)[..., None]

    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_generated_folder(
    folder: str | Path, n: int, size: tuple[int, int], seed: int, fmt: str = "png"
) -> list[Path]:
    """Write ``n`` generated photos to ``folder`` (created if missing) as ``gen_0000.<fmt>``, ...

    Image ``i`` uses its own seed derived from ``(seed, i)`` by ``numpy.random.SeedSequence``,
    so folders written with different seeds share no image (unlike ``seed + i``).

    Args:
        folder: output directory.
        n: number of images, >= 0.
        size: (height, width) of every image.
        seed: non-negative int.
        fmt: "png" (default), "jpg"/"jpeg" (quality 95), "tif"/"tiff", "bmp" or "webp" (lossless).

    Returns:
        The written paths, in index order.
    """
    from PIL import Image  # imported here so generated_photo alone needs only numpy

    fmt_key = str(fmt).lower().lstrip(".")
    if fmt_key not in _FORMATS:
        raise ValueError(f"fmt must be one of {sorted(_FORMATS)}, got {fmt!r}")
    try:
        n = operator.index(n)
    except TypeError:
        raise ValueError(f"n must be an int, got {n!r}") from None
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    _check_size(size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_kwargs = {"JPEG": {"quality": 95}, "WEBP": {"lossless": True}}.get(_FORMATS[fmt_key], {})
    paths = []
    for i in range(n):
        image_seed = int(np.random.SeedSequence((int(seed), i)).generate_state(1)[0])
        path = folder / f"gen_{i:04d}.{fmt_key}"
        pixels = generated_photo(size, image_seed)
        Image.fromarray(pixels, "RGB").save(path, _FORMATS[fmt_key], **save_kwargs)
        paths.append(path)
    return paths
