"""Carry a low-resolution edit to full resolution: bilateral guided upsampling, and the residual.

The generator runs once on a copy of the photo with long side 512. Two ways bring its result
back to the photo's own size, both working strip by strip from / to uint8 or uint16 arrays, so
that no full-size float copy of the image ever exists (peak memory: the input, the output and
a few strips):

* ``guided_upsample`` (the default, "Bilateral Guided Upsampling", Chen et al. 2016, sliced as
  in HDRNet): fit a bilateral grid of local affine colour transforms (3x4 matrices) that maps
  the low-resolution input to the low-resolution output, then slice that grid with the
  full-resolution image as guide and apply each pixel's transform to that pixel. Edges of the
  full-resolution photo stay sharp, because the transform depends on the pixel's own
  brightness, not only on its position.
* ``residual_upsample`` (the earlier method): upsample the low-resolution residual
  (output - input) bilinearly and add it. Cheaper, and close to any low-resolution edit on
  average, but the edit is blurred across edges (halos) and a change of contrast is not
  carried to fine detail.

Conventions shared by the fit and the slicing
---------------------------------------------
* Colours are in [0, 1] (uint8 / 255, uint16 / 65535).
* Guide: luma ``0.299 R + 0.587 G + 0.114 B`` (OpenCV's RGB2GRAY, Rec. 601), in [0, 1].
* Grid: ``(gh, gw, gd, 3, 4)`` float32, ``A[y, x, z, c, :]`` gives output channel ``c`` as
  ``A[..., c, 0] R + A[..., c, 1] G + A[..., c, 2] B + A[..., c, 3]``. Node ``k`` of an axis
  with ``n`` nodes sits at ``k / (n - 1)`` of the normalised image (pixel ``x`` of a ``w``-wide
  image is at ``(x + 0.5) / w``) or of the guide range; the transform at a pixel is the
  trilinear interpolation of the 8 nodes around (its position, its guide value). The same
  grid therefore applies at any resolution.

Speed (``apply_bilateral_grid``): per strip of rows, the grid is interpolated to each row
(a small 2-D "texture" per row: guide levels x grid columns x 12 coefficients), then one
``cv2.remap`` gathers every pixel's 12 coefficients (bilinear in column and guide), one
``cv2.multiply`` and one ``cv2.resize(INTER_AREA)`` form the three dot products, and
``cv2.convertScaleAbs`` rounds into the output. About 10 arithmetic passes over the strip,
in OpenCV's SIMD code; strips are shared among ``threads`` worker threads (OpenCV's own pool
is switched off meanwhile). About 20-25 ns per pixel on one busy core of the development
machine, i.e. ~0.3 s for 12 MP; the fit adds 30-50 ms.

Precision: ``cv2.remap`` resolves coordinates to 1/32 of a texel. The guide axis is upsampled
(linear interpolation of a piecewise-linear function, so the grid is unchanged) to
``(gd - 1) * GUIDE_UPSAMPLE + 1`` levels (17 for the default 9), which puts the guide
quantisation at 1/512 of its range; along x the step is 1/32 of a grid cell. Both are far
below one output level for grids fitted to photos. Coordinates are rounded to 1/32 before
remap, so every pixel's result is independent of how the image is cut into strips (strip
processing equals single-pass processing bit for bit).
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

# numpy and OpenCV only (torch tensors are accepted when torch is loaded), so the ONNX path
# runs without importing torch
from dpe_hf.ops.checks import (as_hwc_float, check_grid, check_image, check_out, check_strength, dtype_scale,
                               positive_int)
from dpe_hf.ops import strips  # strips.REMAP_MAX read at call time (the tests lower it)
from dpe_hf.ops.strips import column_tiles, run_strips, store_rounded, worker_threads

__all__ = [
    "GUIDE_WEIGHTS",
    "DEFAULT_DEPTH",
    "DEFAULT_CELL",
    "DEFAULT_LAMBDA",
    "DEFAULT_STRIP_ROWS",
    "auto_grid_size",
    "fit_bilateral_grid",
    "blend_grid",
    "apply_bilateral_grid",
    "guided_upsample",
    "residual_upsample",
    "downscale_long_side",
]

#: Luma weights of the guide (OpenCV's RGB2GRAY): R, G, B.
GUIDE_WEIGHTS = (0.299, 0.587, 0.114)
#: Guide-axis nodes of the default grid.
DEFAULT_DEPTH = 9
#: Default spatial node spacing, in low-resolution pixels (65 nodes along a 512 px side).
DEFAULT_CELL = 8
#: Default regularisation (see `fit_bilateral_grid`).
DEFAULT_LAMBDA = 1e-3
#: Default strip height of the full-resolution passes.
DEFAULT_STRIP_ROWS = 32
#: Each guide interval of the grid is split into this many texels for slicing.
GUIDE_UPSAMPLE = 2

_SUB = 32  # cv2.remap's sub-texel resolution (INTER_BITS = 5)
_BLOCK = 4  # the fit pools its moments over BLOCKxBLOCK pixel blocks


# --------------------------------------------------------------------------------------------
# fitting
# --------------------------------------------------------------------------------------------


def auto_grid_size(height: int, width: int, *, cell: int = DEFAULT_CELL, depth: int = DEFAULT_DEPTH
                   ) -> tuple[int, int, int]:
    """Grid nodes for a low-resolution image of ``height x width``: one node every ``cell``
    pixels (at least 2 per axis), ``depth`` guide levels: (65, 45, 9) for 512 x 352."""
    height, width = positive_int(height, "height"), positive_int(width, "width")
    cell, depth = positive_int(cell, "cell"), positive_int(depth, "depth", 2)
    return (max(2, round(height / cell) + 1), max(2, round(width / cell) + 1), depth)


def _coarse_size(n: int, factor: int) -> int:
    return max(2, round((n - 1) / factor) + 1)


def _tent(nodes: int, pos: np.ndarray) -> np.ndarray:
    """(nodes, len(pos)) linear-interpolation ("hat") weights of positions in [0, 1]."""
    p = pos.astype(np.float64)[None, :] * (nodes - 1)
    return np.maximum(1 - np.abs(p - np.arange(nodes, dtype=np.float64)[:, None]), 0)


def _prolong(fine: int, coarse: int) -> np.ndarray:
    """(fine, coarse): the coarse hat functions evaluated at the fine nodes."""
    return _tent(coarse, np.arange(fine, dtype=np.float64) / (fine - 1)).T


def _block_hats(h: int, w: int, gh: int, gw: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 (gh, blocks down) and (gw, blocks across): the grid rows' and columns' hat
    weights at the centres of the fit's BLOCKxBLOCK pixel blocks of an h x w image."""
    b = _BLOCK
    i = np.arange(-(-h // b), dtype=np.float64)
    cy = (i * b + (np.minimum(i * b + b, h) - i * b) / 2) / h
    j = np.arange(-(-w // b), dtype=np.float64)
    cx = (j * b + (np.minimum(j * b + b, w) - j * b) / 2) / w
    return _tent(gh, cy).astype(np.float32), _tent(gw, cx).astype(np.float32)


def _fit_size(h: int, w: int, grid, lam: float, cell: int, depth: int) -> tuple[tuple[int, int, int], float]:
    """The checked grid nodes (gh, gw, gd) and regularisation of `fit_bilateral_grid`."""
    if grid is None:
        size = auto_grid_size(h, w, cell=cell, depth=depth)
    else:
        try:
            size = tuple(positive_int(v, "grid sizes", 2) for v in grid)
        except TypeError:
            raise ValueError(f"grid must be (gh, gw, gd), got {grid!r}") from None
        if len(size) != 3:
            raise ValueError(f"grid must be (gh, gw, gd), got {grid!r}")
    lam = float(lam)
    if not (lam > 0 and math.isfinite(lam)):
        raise ValueError(f"lam must be a positive number, got {lam!r}")
    return size, lam


def _coarse_grid(size: tuple[int, int, int]) -> tuple[tuple[int, int, int], list[np.ndarray]]:
    """The prior's coarse grid (about 8x fewer nodes per spatial axis, 3 guide levels for 9) and
    the (fine, coarse) prolongation of each axis."""
    csize = (_coarse_size(size[0], 8), _coarse_size(size[1], 8), _coarse_size(size[2], 4))
    return csize, [_prolong(f, c) for f, c in zip(size, csize)]


def _moments(lin: np.ndarray, lout: np.ndarray, size: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Splatted normal equations of every node: S (gh, gw, gd, 4, 4) = sum w p p^T and
    R (gh, gw, gd, 4, 3) = sum w p q^T with p = (r, g, b, 1), q the output colour and w the
    trilinear weight of the pixel at that node. The guide axis is splatted exactly; the two
    spatial axes at the centres of BLOCKxBLOCK pixel blocks (one contraction by a batched
    matmul per block, then two small matmuls with the hat weights)."""
    gh, gw, gd = size
    h, w, _ = lin.shape
    b = _BLOCK
    hb, wb = -(-h // b), -(-w // b)
    y = np.zeros((hb * b, wb * b, 7), np.float32)
    y[:h, :w, :3] = lin
    y[:h, :w, 3] = 1.0
    y[:h, :w, 4:] = lout
    y = np.ascontiguousarray(y.reshape(hb, b, wb, b, 7).transpose(0, 2, 4, 1, 3)).reshape(hb * wb, 7, b * b)
    wr, wg, wb_ = (np.float32(v) for v in GUIDE_WEIGHTS)
    g = (y[:, 0] * wr + y[:, 1] * wg + y[:, 2] * wb_) * np.float32(gd - 1)
    z = np.maximum(1 - np.abs(g[:, None, :] - np.arange(gd, dtype=np.float32)[None, :, None]), np.float32(0))
    py = (y[:, :4, None, :] * y[:, None, :, :]).reshape(hb * wb, 28, b * b)
    blocks = np.matmul(py, z.transpose(0, 2, 1)).reshape(hb, wb * 28 * gd)
    hat_y, hat_x = _block_hats(h, w, gh, gw)
    acc = (hat_y @ blocks).reshape(gh, wb, 28 * gd)
    acc = np.matmul(hat_x, acc).astype(np.float64)
    acc = acc.reshape(gh, gw, 4, 7, gd).transpose(0, 1, 4, 2, 3)
    return np.ascontiguousarray(acc[..., :4]), np.ascontiguousarray(acc[..., 4:])


def _ridge_solve(s: np.ndarray, r: np.ndarray, prior: np.ndarray, lam: float) -> np.ndarray:
    """argmin_A sum w |A^T p - q|^2 + lam |A - prior|^2 for every node (A: 4 x 3)."""
    eye = np.eye(4, dtype=np.float64) * lam
    rhs = r + eye @ prior
    return np.linalg.solve(s + eye, np.broadcast_to(rhs, s.shape[:-2] + rhs.shape[-2:]))


def fit_bilateral_grid(low_in: Any, low_out: Any, *, grid: tuple[int, int, int] | None = None,
                       lam: float = DEFAULT_LAMBDA, cell: int = DEFAULT_CELL,
                       depth: int = DEFAULT_DEPTH) -> np.ndarray:
    """Fit a bilateral grid of affine colour transforms that maps ``low_in`` to ``low_out``.

    Args:
        low_in, low_out: the low-resolution pair, same size: numpy H x W x 3 (uint8, uint16 or
            float in [0, 1]) or torch (3, H, W) / (1, 3, H, W) float in [0, 1].
        grid: nodes (gh, gw, gd), each >= 2; None: ``auto_grid_size(H, W, cell=cell,
            depth=depth)``, one node every 8 px and 9 guide levels.
        lam: regularisation, relative to the mean weight of pixels per node. Each node's
            transform is a ridge regression of its trilinearly weighted pixels, pulled toward
            a prior with weight ``lam * (pixels / nodes)``: where a node sees many pixels with
            varied colours the data decide, where it sees few (or only a narrow range of
            colours) the prior does, so colours that are rare at low resolution cannot
            produce wild extrapolations at full resolution. The prior is a coarse grid (about
            8x fewer nodes per spatial axis, 3 guide levels) fitted the same way against the
            global affine fit, which is itself lightly pulled toward the identity.
        cell, depth: used only when ``grid`` is None.

    Returns:
        float32 array (gh, gw, gd, 3, 4): see the module docstring for the layout.

    Cost: O(pixels x 28 x depth) multiply-adds for the moments, plus one 4x4 solve per node
    (float64); about 30-60 ms for 512 x 384 on one core. numpy only, so the ONNX path runs
    without torch.
    """
    lin = as_hwc_float(low_in, "low_in")
    lout = as_hwc_float(low_out, "low_out")
    if lin.shape != lout.shape:
        raise ValueError(f"low_in and low_out differ in size: {tuple(lin.shape)} vs {tuple(lout.shape)}")
    h, w, _ = lin.shape
    size, lam = _fit_size(h, w, grid, lam, cell, depth)
    gh, gw, gd = size
    n = float(h * w)

    s, r = _moments(lin, lout, size)
    identity = np.concatenate([np.eye(3, dtype=np.float64), np.zeros((1, 3), np.float64)])
    a_global = _ridge_solve(s.sum((0, 1, 2)), r.sum((0, 1, 2)), identity, 1e-4 * n)
    csize, (py, px, pz) = _coarse_grid(size)
    sc = np.einsum("yxzij,ya,xb,zc->abcij", s, py, px, pz, optimize=True)
    rc = np.einsum("yxzij,ya,xb,zc->abcij", r, py, px, pz, optimize=True)
    a_coarse = _ridge_solve(sc, rc, a_global, lam * n / math.prod(csize))
    prior = np.einsum("abcij,ya,xb,zc->yxzij", a_coarse, py, px, pz, optimize=True)
    a = _ridge_solve(s, r, prior, lam * n / math.prod(size))  # (gh, gw, gd, 4, 3)
    return np.ascontiguousarray(a.swapaxes(-1, -2).astype(np.float32))


def blend_grid(grid: np.ndarray, strength: float) -> np.ndarray:
    """The grid of ``x + strength * (T(x) - x)``: an exact, free way to apply an edit partly."""
    grid = check_grid(grid)
    s = check_strength(strength)
    identity = np.zeros((3, 4), np.float64)
    identity[:, :3] = np.eye(3)
    return (identity + s * (grid.astype(np.float64) - identity)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# slicing
# --------------------------------------------------------------------------------------------


def _textures(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Grid -> (base, step, gz): (3, gz, gh, gw, 4) float32 coefficient textures with the guide
    axis upsampled to gz levels and premultiplied by 4 (INTER_AREA averages the 4 products),
    and step = base[:, :, y+1] - base[:, :, y]."""
    gh, gw, gd = grid.shape[:3]
    gz = (gd - 1) * GUIDE_UPSAMPLE + 1
    # numpy (float64, as `_tent`), so that slicing needs no torch
    t = grid.astype(np.float64).transpose(0, 1, 3, 4, 2).reshape(gh * gw * 12, gd)
    p = (np.arange(gz, dtype=np.float64) / (gz - 1))[None, :] * (gd - 1)
    interp = np.maximum(1 - np.abs(p - np.arange(gd, dtype=np.float64)[:, None]), 0)  # (gd, gz)
    t = (t @ interp).reshape(gh, gw, 3, 4, gz).transpose(2, 4, 0, 1, 3) * 4.0  # (3, gz, gh, gw, 4)
    step = np.zeros_like(t)
    step[:, :, :-1] = t[:, :, 1:] - t[:, :, :-1]
    return np.ascontiguousarray(t, np.float32), np.ascontiguousarray(step, np.float32), gz


def _rows(r0: int, r1: int, height: int, nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid row below each image row and the weight of the one above (float64 math, so the
    result is the same whatever strip the row falls in)."""
    v = (np.arange(r0, r1, dtype=np.float64) + 0.5) / height * (nodes - 1)
    iy = np.minimum(v.astype(np.int64), nodes - 2)
    return iy, (v - iy).astype(np.float32)


def apply_bilateral_grid(full_in: np.ndarray, grid: np.ndarray, *, strip_rows: int = DEFAULT_STRIP_ROWS,
                         threads: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """Slice ``grid`` with the full-resolution image and apply each pixel's affine transform.

    Args:
        full_in: H x W x 3 uint8 or uint16 (any H, W >= 1); read strip by strip, never copied
            whole.
        grid: (gh, gw, gd, 3, 4) from `fit_bilateral_grid` (colours in [0, 1]).
        strip_rows: rows per strip (memory per worker ~ 80 bytes x strip_rows x W).
        threads: worker threads sharing the strips; None: ``torch.get_num_threads()`` where
            torch is imported (so ``OMP_NUM_THREADS`` / ``torch.set_num_threads`` govern it),
            else ``OMP_NUM_THREADS`` or the CPU count; at most the CPU count.
            OpenCV's own pool is switched off for the duration of the call.
        out: optional preallocated C-contiguous array of the input's shape and dtype; may be
            ``full_in`` itself (in place).

    Returns:
        ``out`` (or a new array): same shape and dtype as ``full_in``, clipped and rounded
        (half to even).
    """
    full_in = check_image(full_in)
    grid = check_grid(grid)
    strip_rows = positive_int(strip_rows, "strip_rows")
    threads = worker_threads(threads)
    out = check_out(out, full_in)
    height, width = full_in.shape[:2]
    gh, gw, _ = grid.shape[:3]
    base, step, gz = _textures(grid)
    scale = dtype_scale(full_in.dtype)
    eight_bit = full_in.dtype == np.uint8
    n_max = min(strip_rows, height)

    # Texture of a strip of n rows: texel rows (output channel c, guide level), texel columns
    # (strip row r, grid column). The remap output has 3n rows (c, r): pixel x of strip row r
    # reads column r * gw + (x + 0.5) / W * (gw - 1) and row c * gz + guide * (gz - 1), both
    # rounded to 1/32 here so that cv2.remap's own rounding is exact.
    n_max = max(1, min(n_max, strips.REMAP_MAX // gw))  # cv2.remap needs the texture < 32767 wide
    tiles = column_tiles(width)
    xq = np.rint((np.arange(width, dtype=np.float64) + 0.5) / width * (gw - 1) * _SUB) / _SUB
    mapx_rows = (np.arange(n_max, dtype=np.float64)[:, None] * gw + xq[None, :]).astype(np.float32)
    mapx: dict[tuple[int, int], np.ndarray] = {}
    for n in {n_max, (height - 1) % n_max + 1}:  # the two strip heights: full and last
        for x0, x1 in tiles:
            mapx[n, x0] = np.concatenate([mapx_rows[:n, x0:x1]] * 3)
    levels = 256 if eight_bit else 65536
    lut = (np.rint(np.arange(levels, dtype=np.float64) / (levels - 1) * (gz - 1) * _SUB) / _SUB).astype(np.float32)
    tile_w = max(x1 - x0 for x0, x1 in tiles)

    def worker(row_start: int, row_stop: int) -> None:
        tex = np.empty(3 * gz * n_max * gw * 4, np.float32)
        tmp = np.empty_like(tex)
        # flat buffers, viewed per strip size (so every view is contiguous)
        mapy = np.empty(3 * n_max * tile_w, np.float32)
        rgba = np.empty(n_max * tile_w * 4, full_in.dtype)
        coef = np.empty(3 * n_max * tile_w * 4, np.float32)
        acc = np.empty(3 * n_max * tile_w, np.float32)
        acc8 = np.empty(3 * n_max * tile_w, np.uint8)
        staged = np.empty(n_max * tile_w * 3, out.dtype) if len(tiles) > 1 else None
        for r0 in range(row_start, row_stop, n_max):
            r1 = min(r0 + n_max, row_stop)
            n = r1 - r0
            # 1. per-row textures: base[iy] + fy * step[iy], as two exactly rounded numpy ops,
            #    so a row's values do not depend on the strip it falls in
            iy, fy = _rows(r0, r1, height, gh)
            size = 3 * gz * n * gw * 4
            t_n = tex[:size].reshape(3, gz, n, gw, 4)
            s_n = tmp[:size].reshape(3, gz, n, gw, 4)
            for k in np.unique(iy):  # one or two grid rows per strip
                a, b = np.searchsorted(iy, k), np.searchsorted(iy, k, side="right")
                np.multiply(step[:, :, k:k + 1], fy[a:b].reshape(1, 1, b - a, 1, 1), out=s_n[:, :, a:b])
                np.add(s_n[:, :, a:b], base[:, :, k:k + 1], out=t_n[:, :, a:b])
            src = t_n.reshape(3 * gz, n * gw, 4)
            for x0, x1 in tiles:  # one tile unless the image is over 32000 px wide
                w = x1 - x0
                strip = full_in[r0:r1, x0:x1]
                if not strip.flags.c_contiguous:
                    strip = np.ascontiguousarray(strip)
                # 2. texel rows from the luma
                gray = cv2.cvtColor(strip, cv2.COLOR_RGB2GRAY)
                my = mapy[:3 * n * w].reshape(3, n, w)
                if eight_bit:
                    cv2.LUT(gray, lut, dst=my[0])
                else:
                    np.take(lut, gray, out=my[0])
                cv2.add(my[0], float(gz), dst=my[1])
                cv2.add(my[0], float(2 * gz), dst=my[2])
                # 3. gather the 12 coefficients of every pixel, multiply them by (R, G, B, max)
                #    and sum groups of four (INTER_AREA by 4 along the row: the mean; the
                #    textures are x4)
                c = coef[:3 * n * w * 4].reshape(3, n, w, 4)
                cv2.remap(src, mapx[n, x0], my.reshape(3 * n, w), cv2.INTER_LINEAR,
                          dst=c.reshape(3 * n, w, 4), borderMode=cv2.BORDER_REPLICATE)
                m = rgba[:n * w * 4].reshape(n, w, 4)
                cv2.cvtColor(strip, cv2.COLOR_RGB2RGBA, dst=m)  # alpha = the dtype's max
                for ch in range(3):
                    cv2.multiply(c[ch], m, dst=c[ch], dtype=cv2.CV_32F)
                v = acc[:3 * n * w].reshape(3, n, w)
                cv2.resize(c.reshape(3 * n, 4 * w), (w, 3 * n), dst=v.reshape(3 * n, w),
                           interpolation=cv2.INTER_AREA)
                # 4. clip, round, interleave into the output rows
                target = out[r0:r1] if staged is None else staged[:n * w * 3].reshape(n, w, 3)
                if eight_bit:
                    v2 = v.reshape(3 * n, w)
                    cv2.max(v2, 0.0, dst=v2)
                    v8 = acc8[:3 * n * w].reshape(3, n, w)
                    cv2.convertScaleAbs(v2, dst=v8.reshape(3 * n, w))
                    cv2.merge([v8[0], v8[1], v8[2]], dst=target)
                else:
                    merged = cv2.merge([v[0], v[1], v[2]]).reshape(n, 3 * w)
                    store_rounded(merged, target.reshape(n, 3 * w), False, scale)
                if staged is not None:
                    out[r0:r1, x0:x1] = target

    run_strips(height, n_max, threads, worker)
    return out



def guided_upsample(full_in: np.ndarray, low_in: Any, low_out: Any, *, strength: float = 1.0,
                    grid: tuple[int, int, int] | None = None, lam: float = DEFAULT_LAMBDA,
                    strip_rows: int = DEFAULT_STRIP_ROWS, threads: int | None = None,
                    out: np.ndarray | None = None) -> np.ndarray:
    """Fit a bilateral grid on (low_in -> low_out) and apply it to ``full_in``.

    ``full_in``: H x W x 3 uint8 / uint16; ``low_in``, ``low_out``: see `fit_bilateral_grid`
    (``low_in`` should be ``full_in`` downscaled, e.g. by `downscale_long_side`).
    ``strength`` in [0, 1] blends the transform with the identity (exact, at no cost).
    Returns an array of ``full_in``'s shape and dtype (``out`` if given).
    """
    full_in = check_image(full_in)
    strength = check_strength(strength)
    coeffs = fit_bilateral_grid(low_in, low_out, grid=grid, lam=lam)
    if strength != 1.0:
        coeffs = blend_grid(coeffs, strength)
    return apply_bilateral_grid(full_in, coeffs, strip_rows=strip_rows, threads=threads, out=out)


# --------------------------------------------------------------------------------------------
# residual method
# --------------------------------------------------------------------------------------------


def _source_coords(dst: int, src: int) -> np.ndarray:
    """Bilinear source coordinates as torch's ``F.interpolate(align_corners=False)`` computes
    them (negative ones clamped to 0), rounded to 1/32."""
    c = (np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5
    return (np.rint(np.maximum(c, 0.0) * _SUB) / _SUB).astype(np.float32)


def residual_upsample(full_in: np.ndarray, low_in: Any, low_out: Any, *, strength: float = 1.0,
                      strip_rows: int = DEFAULT_STRIP_ROWS, threads: int | None = None,
                      out: np.ndarray | None = None) -> np.ndarray:
    """``full_in + upsample(low_out - low_in)``: the residual, upsampled bilinearly
    (``align_corners=False``, as `dpe_hf.inference` did with float tensors), added strip by
    strip to the uint8 / uint16 image. Arguments as for `guided_upsample`."""
    full_in = check_image(full_in)
    strength = check_strength(strength)
    lin = as_hwc_float(low_in, "low_in")
    lout = as_hwc_float(low_out, "low_out")
    if lin.shape != lout.shape:
        raise ValueError(f"low_in and low_out differ in size: {tuple(lin.shape)} vs {tuple(lout.shape)}")
    strip_rows = positive_int(strip_rows, "strip_rows")
    threads = worker_threads(threads)
    out = check_out(out, full_in)
    height, width = full_in.shape[:2]
    h, w = lin.shape[:2]
    if max(h, w) > strips.REMAP_MAX:
        raise ValueError(f"the low-resolution pair is too large ({h} x {w}): at most {strips.REMAP_MAX} px a side")
    scale = dtype_scale(full_in.dtype)
    eight_bit = full_in.dtype == np.uint8
    residual = np.zeros((h, w, 4), np.float32)  # 4 channels: OpenCV's fast remap path
    residual[..., :3] = (lout - lin) * np.float32(strength * scale)
    mx = _source_coords(width, w)
    my_all = _source_coords(height, h)
    n_max = min(strip_rows, height, strips.REMAP_MAX)
    tiles = column_tiles(width)
    tile_w = max(x1 - x0 for x0, x1 in tiles)

    def worker(row_start: int, row_stop: int) -> None:
        mapx = np.empty(n_max * tile_w, np.float32)
        mapy = np.empty(n_max * tile_w, np.float32)
        up = np.empty(n_max * tile_w * 4, np.float32)
        acc = np.empty(n_max * tile_w * 3, np.float32)
        staged = np.empty(n_max * tile_w * 3, out.dtype) if len(tiles) > 1 else None
        for r0 in range(row_start, row_stop, n_max):
            r1 = min(r0 + n_max, row_stop)
            n = r1 - r0
            for x0, x1 in tiles:
                w_ = x1 - x0
                mx_ = mapx[:n * w_].reshape(n, w_)
                my_ = mapy[:n * w_].reshape(n, w_)
                mx_[:] = mx[None, x0:x1]
                my_[:] = my_all[r0:r1, None]
                u = up[:n * w_ * 4].reshape(n, w_, 4)
                cv2.remap(residual, mx_, my_, cv2.INTER_LINEAR, dst=u, borderMode=cv2.BORDER_REPLICATE)
                a = acc[:n * w_ * 3].reshape(n, w_, 3)
                cv2.cvtColor(u, cv2.COLOR_RGBA2RGB, dst=a)
                strip = full_in[r0:r1, x0:x1]
                if not strip.flags.c_contiguous:
                    strip = np.ascontiguousarray(strip)
                cv2.add(a, strip, dst=a, dtype=cv2.CV_32F)
                target = out[r0:r1] if staged is None else staged[:n * w_ * 3].reshape(n, w_, 3)
                store_rounded(a.reshape(n, 3 * w_), target.reshape(n, 3 * w_), eight_bit, scale)
                if staged is not None:
                    out[r0:r1, x0:x1] = target

    run_strips(height, n_max, threads, worker)
    return out


# --------------------------------------------------------------------------------------------
# the low-resolution copy
# --------------------------------------------------------------------------------------------


def downscale_long_side(image: np.ndarray, long_side: int) -> np.ndarray:
    """Area-averaged copy whose long side is ``long_side`` (never enlarged: a smaller image is
    returned as is), same dtype. The short side is ``round(short * long_side / long)`` half up,
    at least 1, as `dpe_hf.ops.resize.resize_long_side` computes it. Works on the uint8 /
    uint16 array directly (OpenCV's INTER_AREA), so no full-size float copy is made."""
    image = check_image(image, "image")
    long_side = positive_int(long_side, "long_side")
    h, w = image.shape[:2]
    long, short = max(h, w), min(h, w)
    if long <= long_side:
        return image
    new_short = max(1, (2 * short * long_side + long) // (2 * long))
    size_hw = (long_side, new_short) if h >= w else (new_short, long_side)
    if not image.flags.c_contiguous:
        image = np.ascontiguousarray(image)
    return cv2.resize(image, (size_hw[1], size_hw[0]), interpolation=cv2.INTER_AREA)
