"""Image-quality metrics for enhanced photos: PSNR, SSIM and CIEDE2000 colour difference.

Each metric takes `pred` and `target` as sRGB tensors in [0, 1], shaped (B, 3, H, W) or
(3, H, W), and returns one value per image: shape (B,), or a 0-d tensor for an unbatched
input. The numbers are those of scikit-image, which the tests use as the reference:

* `psnr`      == skimage.metrics.peak_signal_noise_ratio(target, pred, data_range=1)
* `ssim`      == skimage.metrics.structural_similarity(target, pred, gaussian_weights=True,
                 sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=-1)
* `ciede2000` == skimage.color.deltaE_ciede2000(rgb2lab(target), rgb2lab(pred)).mean()
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dpe_hf.ops.color import rgb_to_lab

__all__ = ["psnr", "ssim", "ciede2000", "evaluate_pair"]


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Validate a pair and return it as (B, 3, H, W) in a common float dtype, plus 'was unbatched'."""
    for name, x in (("pred", pred), ("target", target)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor in [0, 1], got dtype {x.dtype}")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if pred.dim() not in (3, 4) or pred.shape[-3] != 3:
        raise ValueError(
            f"expected images shaped (B, 3, H, W) or (3, H, W), channels first, got {tuple(pred.shape)}"
        )
    unbatched = pred.dim() == 3
    if unbatched:
        pred, target = pred.unsqueeze(0), target.unsqueeze(0)
    dtype = torch.promote_types(pred.dtype, target.dtype)
    return pred.to(dtype), target.to(dtype), unbatched


def _finish(values: torch.Tensor, unbatched: bool) -> torch.Tensor:
    return values[0] if unbatched else values


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, over all channels and pixels of each image.

    Args:
        pred: (B, 3, H, W) or (3, H, W), floating, in [0, data_range].
        target: same shape as `pred`.
        data_range: difference between the largest and smallest possible value; > 0.

    Returns:
        (B,) or 0-d tensor in the dtype of the inputs; `inf` where pred == target.

    Raises:
        ValueError: on mismatched or non-image shapes, or data_range <= 0.
    """
    pred, target, unbatched = _check_pair(pred, target)
    if not data_range > 0:
        raise ValueError(f"data_range must be > 0, got {data_range}")
    # Summing squares in float32 loses digits on large images; accumulating in float64 keeps
    # PSNR within 1e-4 dB of skimage; the float32 difference is only off by a relative 2**-24.
    mse = (pred - target).double().square().mean(dim=(1, 2, 3))
    # mse == 0 gives log10(inf) == inf, the conventional PSNR of identical images.
    out = 10.0 * torch.log10(float(data_range) ** 2 / mse)
    return _finish(out.to(pred.dtype), unbatched)


def _gaussian_1d(window_size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    # Same taps as scipy.ndimage.gaussian_filter1d: unnormalised exp, then divided by the sum.
    x = torch.arange(window_size, dtype=torch.float64) - (window_size - 1) / 2
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return (g / g.sum()).to(dtype=dtype, device=device)


def _ssim_channel(x: torch.Tensor, y: torch.Tensor, kh: torch.Tensor, kv: torch.Tensor,
                  c1: float, c2: float) -> torch.Tensor:
    """Mean SSIM over the valid region of one channel; x, y are (B, 1, H, W)."""
    # One grouped separable convolution filters the five moments together.
    stack = torch.cat((x, y, x * x, y * y, x * y), dim=1)
    # No padding: skimage filters with reflection and then crops the filter radius from
    # each border, which leaves exactly the pixels a valid convolution produces.
    m = F.conv2d(F.conv2d(stack, kh, groups=5), kv, groups=5)
    ux, uy, uxx, uyy, uxy = m.unbind(dim=1)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2))


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0,
         window_size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) with a Gaussian window, averaged over channels.

    K1 = 0.01, K2 = 0.03, population (co)variances. Only the valid region enters the mean:
    (window_size - 1) // 2 pixels are dropped at each border, as scikit-image does. The
    window is a Gaussian of `sigma` truncated to `window_size` taps; scikit-image's
    defaults (truncate=3.5) give the same 11 taps for sigma=1.5.

    Args:
        pred: (B, 3, H, W) or (3, H, W), floating, in [0, data_range], H, W >= window_size.
        target: same shape as `pred`.
        data_range: difference between the largest and smallest possible value; > 0.
        window_size: odd number of taps of the Gaussian window, >= 1.
        sigma: standard deviation of the Gaussian in pixels; > 0.

    Returns:
        (B,) or 0-d tensor in the dtype of the inputs, in [-1, 1]; 1 where pred == target.

    Raises:
        ValueError: on mismatched or non-image shapes, images smaller than the window,
            an even or non-positive window_size, sigma <= 0 or data_range <= 0.
    """
    pred, target, unbatched = _check_pair(pred, target)
    if not data_range > 0:
        raise ValueError(f"data_range must be > 0, got {data_range}")
    if not (isinstance(window_size, int) and window_size >= 1 and window_size % 2 == 1):
        raise ValueError(f"window_size must be a positive odd integer, got {window_size!r}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    h, w = pred.shape[-2:]
    if h < window_size or w < window_size:
        raise ValueError(
            f"images of size {h}x{w} are smaller than the {window_size}x{window_size} SSIM window"
        )
    g = _gaussian_1d(window_size, sigma, pred.dtype, pred.device)
    kh = g.view(1, 1, 1, -1).repeat(5, 1, 1, 1)
    kv = g.view(1, 1, -1, 1).repeat(5, 1, 1, 1)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    # A loop over channels keeps the five filtered moments at 5/3 of the input's size.
    per_channel = [
        _ssim_channel(pred[:, c:c + 1], target[:, c:c + 1], kh, kv, c1, c2) for c in range(3)
    ]
    return _finish(torch.stack(per_channel, dim=1).mean(dim=1), unbatched)


def _cart2polar_2pi(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # Hue in [0, 2*pi), as skimage's helper of the same name; atan2(0, 0) == 0 in both.
    t = torch.atan2(y, x)
    return torch.hypot(x, y), torch.where(t < 0, t + 2 * math.pi, t)


def _ciede2000_lab(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    """Per-pixel CIEDE2000 (kL = kC = kH = 1) of two (3, H, W) Lab images: a line-by-line
    port of skimage.color.deltaE_ciede2000, branches included."""
    L1, a1, b1 = lab1.unbind(dim=0)
    L2, a2, b2 = lab2.unbind(dim=0)
    pi = math.pi

    # Stretch a* by the mean chroma, then work in the polar coordinates of the stretched a*.
    cbar = 0.5 * (torch.hypot(a1, b1) + torch.hypot(a2, b2))
    c7 = cbar ** 7
    scale = 1.5 - 0.5 * torch.sqrt(c7 / (c7 + 25.0 ** 7))
    C1, h1 = _cart2polar_2pi(a1 * scale, b1)
    C2, h2 = _cart2polar_2pi(a2 * scale, b2)

    lbar = 0.5 * (L1 + L2)
    tmp = (lbar - 50) ** 2
    l_term = (L2 - L1) / (1 + 0.015 * tmp / torch.sqrt(20 + tmp))

    cbar = 0.5 * (C1 + C2)
    c_term = (C2 - C1) / (1 + 0.045 * cbar)

    h_diff = h2 - h1
    h_sum = h1 + h2
    cc = C1 * C2
    achromatic = cc == 0.0
    # Hue difference taken the short way round the circle; undefined hue counts as no difference.
    dh = h_diff - 2 * pi * (h_diff > pi).to(h_diff.dtype) + 2 * pi * (h_diff < -pi).to(h_diff.dtype)
    dh = torch.where(achromatic, torch.zeros_like(dh), dh)
    dh_term = 2 * torch.sqrt(cc) * torch.sin(dh / 2)

    # Mean hue: when the hues lie more than pi apart the plain mean points the wrong way.
    wrap = ~achromatic & (h_diff.abs() > pi)
    hbar = h_sum + 2 * pi * (wrap & (h_sum < 2 * pi)).to(h_sum.dtype) \
        - 2 * pi * (wrap & (h_sum >= 2 * pi)).to(h_sum.dtype)
    # With one hue undefined skimage takes the sum, not the mean (doubled before the halving).
    hbar = torch.where(achromatic, 2 * hbar, hbar) * 0.5

    t = (1
         - 0.17 * torch.cos(hbar - math.radians(30))
         + 0.24 * torch.cos(2 * hbar)
         + 0.32 * torch.cos(3 * hbar + math.radians(6))
         - 0.20 * torch.cos(4 * hbar - math.radians(63)))
    h_term = dh_term / (1 + 0.015 * cbar * t)

    c7 = cbar ** 7
    rc = 2 * torch.sqrt(c7 / (c7 + 25.0 ** 7))
    dtheta = math.radians(30) * torch.exp(-(((torch.rad2deg(hbar) - 275) / 25) ** 2))
    r_term = -torch.sin(2 * dtheta) * rc * c_term * h_term

    de2 = l_term ** 2 + c_term ** 2 + h_term ** 2 + r_term
    return torch.sqrt(de2.clamp(min=0))


def ciede2000(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean CIEDE2000 colour difference (kL = kC = kH = 1) over the pixels of each image.

    Colours go through `rgb_to_lab` (sRGB, D65, 2 degree observer). Meant as a metric,
    not a loss: the formula has no gradient where chroma or the difference is zero.

    Args:
        pred: (B, 3, H, W) or (3, H, W) sRGB, floating, in [0, 1].
        target: same shape as `pred`.

    Returns:
        (B,) or 0-d tensor in the dtype of the inputs, >= 0; 0 where pred == target.

    Raises:
        ValueError: on mismatched or non-image shapes.
    """
    pred, target, unbatched = _check_pair(pred, target)
    # The formula jumps where two hues lie pi apart (the mean hue turns by pi); float64 Lab
    # makes the same branch choices as skimage's float64 reference. One image at a time
    # keeps the ~30 per-pixel intermediates of the formula to one image's worth.
    out = torch.stack([
        _ciede2000_lab(rgb_to_lab(t.double()), rgb_to_lab(p.double())).mean()
        for p, t in zip(pred, target)
    ])
    return _finish(out.to(pred.dtype), unbatched)


@torch.no_grad()
def evaluate_pair(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """PSNR, SSIM and mean CIEDE2000 of one image pair, as Python floats.

    Args:
        pred: (3, H, W) or (1, 3, H, W) sRGB, floating, in [0, 1], H, W >= 11.
        target: same shape as `pred`.

    Returns:
        {"psnr": dB (inf if identical), "ssim": ..., "delta_e": ...}.

    Raises:
        ValueError: on a batch of more than one image or any error of the metrics.
    """
    if isinstance(pred, torch.Tensor) and pred.dim() == 4 and pred.shape[0] != 1:
        raise ValueError(f"evaluate_pair takes one image pair, got a batch of shape {tuple(pred.shape)}")
    return {
        "psnr": float(psnr(pred, target).reshape(-1)[0]),
        "ssim": float(ssim(pred, target).reshape(-1)[0]),
        "delta_e": float(ciede2000(pred, target).reshape(-1)[0]),
    }
