"""Bilateral guided upsampling on a torch device: `dpe_hf.ops.guided` on a GPU.

`fit_bilateral_grid` is the same fit as the numpy one (the same moments, the same coarse prior
and ridge solves, in float64 on the device), and `slice_bilateral_grid` its full-size pass.

The same grid, the same conventions (node ``k`` of an axis with ``n`` nodes at ``k / (n - 1)``
of the normalised image or guide range; pixel ``x`` of a ``w``-wide image at ``(x + 0.5) / w``;
the guide is the photo's Rec. 601 luma, rounded to the photo's integer levels as OpenCV's
RGB2GRAY rounds it), so the result is `apply_bilateral_grid`'s to within a level: that one
rounds its coordinates to 1/32 of a texel for OpenCV's remap, this one keeps float32.

One ``F.grid_sample`` (trilinear, ``align_corners=True`` puts the first and last nodes at -1
and 1) gathers each pixel's 12 coefficients from the grid as a (12, gd, gh, gw) volume; the
affine transform, the clip and the rounding follow on the device. The photo goes up as
integers and comes back as integers, in bands of rows that bound the device memory. Used by
`dpe_hf.enhancer.Enhancer` when the network runs on a CUDA GPU, so that the one pass over
every pixel runs there too.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from dpe_hf.ops.checks import check_grid, check_image
from dpe_hf.ops import guided
from dpe_hf.ops.guided import DEFAULT_CELL, DEFAULT_DEPTH, DEFAULT_LAMBDA, GUIDE_WEIGHTS

__all__ = ["fit_bilateral_grid", "guided_upsample", "slice_bilateral_grid"]

#: Pixels per band: the coefficient volume of a band is 12 float32 per pixel (~200 MB here).
BAND_PIXELS = 1 << 22


def _centres(n: int, device: torch.device) -> torch.Tensor:
    """Pixel centres of an axis of ``n`` pixels in grid_sample's [-1, 1] (the end nodes at +-1)."""
    return (torch.arange(n, device=device, dtype=torch.float32) + 0.5) / n * 2 - 1


@torch.inference_mode()
def slice_bilateral_grid(full_in: np.ndarray, grid: np.ndarray | torch.Tensor, device: str | torch.device,
                         *, band_pixels: int = BAND_PIXELS) -> np.ndarray:
    """``apply_bilateral_grid(full_in, grid)`` computed on ``device``.

    Args:
        full_in: H x W x 3 uint8 or uint16.
        grid: (gh, gw, gd, 3, 4) from either `fit_bilateral_grid` (numpy, or a tensor anywhere).
        device: where to compute (``"cuda"``; ``"cpu"`` works too, for tests).
        band_pixels: pixels per band of rows sent to the device at once.

    Returns:
        A new array of ``full_in``'s shape and dtype, clipped and rounded (half to even).
    """
    full_in = check_image(full_in)
    device = torch.device(device)
    # checked on the host (a tensor's 1.3 MB come down and go up again: nothing beside the photo)
    grid = torch.from_numpy(np.ascontiguousarray(check_grid(grid), np.float32)).to(device)
    height, width = full_in.shape[:2]
    gh, gw, gd = grid.shape[:3]
    scale = float(np.iinfo(full_in.dtype).max)
    # (1, 12, gd, gh, gw): grid_sample's (N, C, D, H, W), D the guide axis
    volume = grid.permute(3, 4, 2, 0, 1).reshape(1, 12, gd, gh, gw).contiguous()
    weights = torch.tensor(GUIDE_WEIGHTS, dtype=torch.float32, device=device)
    xs, ys = _centres(width, device), _centres(height, device)
    rows = max(1, band_pixels // width)
    out = np.empty_like(full_in)
    # results come back as 1 byte per value for 8-bit photos; int32 for 16-bit ones
    back = torch.uint8 if full_in.dtype == np.uint8 else torch.int32
    for r0 in range(0, height, rows):
        r1 = min(r0 + rows, height)
        band = full_in[r0:r1]
        # uint16 goes up as int32: not every device has uint16 arithmetic
        band = np.ascontiguousarray(band) if band.dtype == np.uint8 else band.astype(np.int32)
        rgb = torch.from_numpy(band).to(device).float() / scale  # (n, W, 3)
        guide = torch.round((rgb @ weights) * scale) / scale  # luma on the photo's integer levels
        coords = torch.stack([xs.expand(r1 - r0, width), ys[r0:r1, None].expand(r1 - r0, width),
                              guide * 2 - 1], dim=-1)
        coeffs = F.grid_sample(volume, coords[None, None], mode="bilinear", padding_mode="border",
                               align_corners=True)[0, :, 0]  # (12, n, W)
        a = coeffs.view(3, 4, r1 - r0, width)
        y = (a[:, 0] * rgb[..., 0] + a[:, 1] * rgb[..., 1] + a[:, 2] * rgb[..., 2] + a[:, 3])  # (3, n, W)
        levels = torch.round(y.clamp(0, 1) * scale).permute(1, 2, 0)
        out[r0:r1] = levels.to(back).cpu().numpy()
    return out


def _moments(lin: torch.Tensor, lout: torch.Tensor, size: tuple[int, int, int]):
    """`guided._moments` on the device: S (gh, gw, gd, 4, 4) and R (gh, gw, gd, 4, 3), float64."""
    gh, gw, gd = size
    h, w, _ = lin.shape
    b = guided._BLOCK
    hb, wb = -(-h // b), -(-w // b)
    dev = lin.device
    y = torch.zeros((hb * b, wb * b, 7), dtype=torch.float32, device=dev)
    y[:h, :w, :3] = lin
    y[:h, :w, 3] = 1.0
    y[:h, :w, 4:] = lout
    y = y.reshape(hb, b, wb, b, 7).permute(0, 2, 4, 1, 3).reshape(hb * wb, 7, b * b)
    g = (y[:, 0] * GUIDE_WEIGHTS[0] + y[:, 1] * GUIDE_WEIGHTS[1] + y[:, 2] * GUIDE_WEIGHTS[2]) * (gd - 1)
    z = (1 - (g[:, None, :] - torch.arange(gd, dtype=torch.float32, device=dev)[None, :, None]).abs()).clamp_min(0)
    py = (y[:, :4, None, :] * y[:, None, :, :]).reshape(hb * wb, 28, b * b)
    blocks = torch.matmul(py, z.transpose(1, 2)).reshape(hb, wb * 28 * gd)
    hat_y, hat_x = (torch.from_numpy(hat).to(dev) for hat in guided._block_hats(h, w, gh, gw))
    acc = (hat_y @ blocks).reshape(gh, wb, 28 * gd)
    acc = torch.matmul(hat_x, acc).double()
    acc = acc.reshape(gh, gw, 4, 7, gd).permute(0, 1, 4, 2, 3)
    return acc[..., :4], acc[..., 4:]


def _ridge_solve(s: torch.Tensor, r: torch.Tensor, prior: torch.Tensor, lam: float) -> torch.Tensor:
    eye = torch.eye(4, dtype=torch.float64, device=s.device) * lam
    rhs = r + eye @ prior
    return torch.linalg.solve(s + eye, rhs.expand(s.shape[:-2] + rhs.shape[-2:]))


@torch.inference_mode()
def fit_bilateral_grid(low_in: torch.Tensor, low_out: torch.Tensor, *, grid: tuple[int, int, int] | None = None,
                       lam: float = DEFAULT_LAMBDA) -> torch.Tensor:
    """`dpe_hf.ops.guided.fit_bilateral_grid` on the pair's device.

    ``low_in``, ``low_out``: float H x W x 3 tensors in [0, 1] on one device. Returns the
    (gh, gw, gd, 3, 4) float32 grid on that device."""
    if low_in.shape != low_out.shape or low_in.ndim != 3 or low_in.shape[2] != 3:
        raise ValueError(f"low_in and low_out must be H x W x 3 of one size, got {tuple(low_in.shape)} "
                         f"and {tuple(low_out.shape)}")
    h, w, _ = low_in.shape
    size, lam = guided._fit_size(h, w, grid, lam, DEFAULT_CELL, DEFAULT_DEPTH)
    gh, gw, gd = size
    n = float(h * w)
    dev = low_in.device
    s, r = _moments(low_in.float(), low_out.float(), size)
    identity = torch.cat([torch.eye(3, dtype=torch.float64, device=dev), torch.zeros((1, 3), dtype=torch.float64,
                                                                                      device=dev)])
    a_global = _ridge_solve(s.sum((0, 1, 2)), r.sum((0, 1, 2)), identity, 1e-4 * n)
    csize, prolong = guided._coarse_grid(size)
    py, px, pz = (torch.from_numpy(m).to(dev) for m in prolong)
    sc = torch.einsum("yxzij,ya,xb,zc->abcij", s, py, px, pz)
    rc = torch.einsum("yxzij,ya,xb,zc->abcij", r, py, px, pz)
    a_coarse = _ridge_solve(sc, rc, a_global, lam * n / (csize[0] * csize[1] * csize[2]))
    prior = torch.einsum("abcij,ya,xb,zc->yxzij", a_coarse, py, px, pz)
    a = _ridge_solve(s, r, prior, lam * n / (gh * gw * gd))
    return a.transpose(-1, -2).float().contiguous()


def guided_upsample(full_in: np.ndarray, low_in: np.ndarray, low_out: np.ndarray, device: str | torch.device, *,
                    strength: float = 1.0) -> np.ndarray:
    """`dpe_hf.ops.guided.guided_upsample` with the fit and the slicing on ``device``.

    ``full_in``: H x W x 3 uint8 / uint16; ``low_in``, ``low_out``: float32 H x W x 3 numpy in
    [0, 1], the low-resolution pair. Returns a new array of ``full_in``'s shape and dtype."""
    device = torch.device(device)
    lin, lout = (torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(device) for x in (low_in, low_out))
    coeffs = fit_bilateral_grid(lin, lout)
    if strength != 1.0:
        coeffs = guided.blend_grid(coeffs, strength)
    return slice_bilateral_grid(full_in, coeffs, device)
