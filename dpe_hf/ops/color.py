"""sRGB -> CIE L*a*b* in torch, matching `skimage.color.rgb2lab` (D65 white, 2 degree observer).

The metrics (CIEDE2000) are reported against scikit-image, so the constants here are
scikit-image's, not the exact CIE fractions: the sRGB->XYZ matrix of easyrgb.com, the
D65 white (0.95047, 1, 1.08883) and the Lab knee at 0.008856 with slope 7.787.

Every function takes a floating tensor shaped (..., 3, H, W), channels first, and keeps
its dtype and device.
"""

from __future__ import annotations

import torch

__all__ = ["srgb_to_linear", "linear_rgb_to_xyz", "rgb_to_lab"]

# Rows give X, Y, Z from linear R, G, B (skimage.color.colorconv.xyz_from_rgb).
_XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
# D65, 2 degree observer, as skimage keeps it for backward compatibility.
_D65_WHITE = (0.95047, 1.0, 1.08883)

_SRGB_KNEE = 0.04045
_LAB_KNEE = 0.008856


def _check_image(x: torch.Tensor, name: str = "input") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(
            f"{name} must have shape (..., 3, H, W) with channels first, got {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor in [0, 1], got dtype {x.dtype}")


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """Undo the sRGB transfer curve (IEC 61966-2-1).

    Args:
        x: sRGB values in [0, 1], shape (..., 3, H, W), floating dtype.

    Returns:
        Linear RGB in [0, 1], same shape and dtype.

    Raises:
        ValueError: if `x` is not (..., 3, H, W) or not floating point.
    """
    _check_image(x)
    # The power branch is evaluated everywhere by torch.where; clamping its base keeps
    # values below the knee (and negative ones) from producing NaN gradients there.
    curve = ((x.clamp(min=_SRGB_KNEE) + 0.055) / 1.055) ** 2.4
    return torch.where(x > _SRGB_KNEE, curve, x / 12.92)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """Apply the sRGB transfer curve (IEC 61966-2-1): the inverse of `srgb_to_linear`.

    Args:
        x: linear RGB in [0, 1], shape (..., 3, H, W), floating dtype.

    Returns:
        sRGB values in [0, 1], same shape and dtype.
    """
    _check_image(x)
    # Clamp inside the power branch so its gradient stays finite where torch.where discards it.
    power = 1.055 * x.clamp_min(0.0031308) ** (1.0 / 2.4) - 0.055
    return torch.where(x <= 0.0031308, x * 12.92, power)


def linear_rgb_to_xyz(x: torch.Tensor) -> torch.Tensor:
    """Linear sRGB (D65) to CIE XYZ, with Y = 1 for white.

    Args:
        x: linear RGB, shape (..., 3, H, W), floating dtype.

    Returns:
        XYZ, same shape and dtype.

    Raises:
        ValueError: if `x` is not (..., 3, H, W) or not floating point.
    """
    _check_image(x)
    m = torch.tensor(_XYZ_FROM_RGB, dtype=x.dtype, device=x.device)
    return torch.einsum("ij,...jhw->...ihw", m, x)


def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """sRGB to CIE L*a*b* (D65, 2 degree observer), as `skimage.color.rgb2lab`.

    Args:
        x: sRGB in [0, 1], shape (..., 3, H, W), floating dtype.

    Returns:
        Lab with L in [0, 100] and a, b roughly in [-128, 127], shape (..., 3, H, W),
        same dtype.

    Raises:
        ValueError: if `x` is not (..., 3, H, W) or not floating point.
    """
    xyz = linear_rgb_to_xyz(srgb_to_linear(x))
    white = torch.tensor(_D65_WHITE, dtype=x.dtype, device=x.device).view(3, 1, 1)
    t = xyz / white
    # Same NaN-gradient guard as in srgb_to_linear: the cube root is taken of clamped values.
    f = torch.where(t > _LAB_KNEE, t.clamp(min=_LAB_KNEE) ** (1.0 / 3.0), 7.787 * t + 16.0 / 116.0)
    fx, fy, fz = f.unbind(dim=-3)
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=-3)
