"""Synthetic "as shot" degradations: turn a well-edited photo into a plausible camera input.

Deep Photo Enhancer learns the mapping *input -> expert C* of MIT-Adobe FiveK. Without many real
pairs we fabricate them: take a good photo (the target) and apply a random global edit that
undoes what the expert typically does. Real FiveK inputs differ from expert C mostly by

* exposure: the expert brightens by about 0.3-1.5 EV, sometimes darkens a little;
* tone curve / contrast: camera renderings are flatter;
* saturation: camera renderings are duller;
* white balance: as-shot casts that the expert neutralises;
* levels: camera renderings have lifted blacks and dull highlights (on the 14 FiveK dev pairs the
  input's 1st luma percentile is 0.04-0.17 where the expert's is 0.00-0.11).

So the default :class:`DegradeConfig` makes inputs darker more often than brighter, flatter, less
saturated, and mildly tinted. ``degrade(target, seed)`` returns ``(input, params)``.

The edit is a pure function of ``(img, EditParams)`` (:func:`apply_edit`), applied in a fixed order:

1. white balance and exposure, in *linear* light (sRGB decode, multiply, clip, sRGB encode),
   because that is where a camera applies gains and where highlights clip;
2. tone curve (S / inverse-S), 3. contrast, 4. gamma, 5. saturation, 6. levels (black and white
   point), all on sRGB-encoded values, where the expert's tone edits act.

Every step is differentiable with respect to the image (gradients are zero where a value clips).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from dpe_hf.ops.color import linear_to_srgb, srgb_to_linear

__all__ = [
    "DegradeConfig",
    "EditParams",
    "apply_edit",
    "degrade",
    "identity_params",
    "sample_edit_params",
]


# Rec.601 luma weights: the edits below act on gamma-encoded values, where luma (not linear
# luminance) is the brightness a viewer perceives.
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class DegradeConfig:
    """Ranges (inclusive ``(low, high)``, sampled uniformly) of the random edit.

    Defaults invert the FiveK "input -> expert C" edit, so they are deliberately skewed:

    exposure_ev = (-1.5, 0.7)
        EV (stops) applied in linear light. Mean -0.4: the expert usually brightens by
        0.3-1.5 EV, so inputs are mostly darker; the +0.7 tail covers the frames the expert
        darkens (and clips a few highlights, as an overexposed camera JPEG does).
    gamma = (0.75, 1.4)
        ``y = x ** gamma`` on sRGB values; > 1 darkens midtones. Mean 1.075: slightly darker.
    contrast = (0.6, 1.15)
        Blend toward the image's mean luma; < 1 is flatter. Mostly flatter, as camera renders are.
    saturation = (0.5, 1.15)
        Blend toward per-pixel luma; < 1 is duller. Mostly duller.
    wb_log_gain = 0.15
        Max |log| gain of R and of B relative to G (G is fixed), each drawn independently from
        ``[-wb_log_gain, wb_log_gain]``: gains 0.86-1.16, a mild as-shot cast.
    tone_curve = (-0.5, 0.3)
        Signed strength ``s`` of ``f(x) = x - s * sin(2 pi x) / (2 pi)``: ``s > 0`` is an S-curve
        (more contrast), ``s < 0`` an inverse S (flatter, lifted shadows); must lie in [-1, 1]
        so that the curve stays monotone. Skewed negative: inputs are flatter.
    black_level = (0.0, 0.12)
        Output black point: ``x -> black + (white - black) x``; > 0 lifts the blacks, as a flat
        camera render or lens flare does.
    white_level = (0.7, 1.0)
        Output white point of the same levels edit; < 1 dulls the highlights.
    p_identity = 0.1
        Each edit (exposure, white balance, tone curve, contrast, gamma, saturation, levels) is
        independently skipped with this probability, so the model also sees inputs that need
        only some corrections (and a few that need none).
    """

    exposure_ev: tuple[float, float] = (-1.5, 0.7)
    gamma: tuple[float, float] = (0.75, 1.4)
    contrast: tuple[float, float] = (0.6, 1.15)
    saturation: tuple[float, float] = (0.5, 1.15)
    wb_log_gain: float = 0.15
    tone_curve: tuple[float, float] = (-0.5, 0.3)
    black_level: tuple[float, float] = (0.0, 0.12)
    white_level: tuple[float, float] = (0.7, 1.0)
    p_identity: float = 0.1

    def __post_init__(self) -> None:
        for name in ("exposure_ev", "gamma", "contrast", "saturation", "tone_curve", "black_level",
                     "white_level"):
            rng = getattr(self, name)
            try:
                lo, hi = (float(v) for v in rng)
            except (TypeError, ValueError):
                raise ValueError(
                    f"DegradeConfig.{name} must be a (low, high) pair of numbers, got {rng!r}"
                ) from None
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
                raise ValueError(
                    f"DegradeConfig.{name} must be finite with low <= high, got {rng!r}"
                )
            object.__setattr__(self, name, (lo, hi))
        if self.gamma[0] <= 0:
            raise ValueError(f"DegradeConfig.gamma must be > 0, got {self.gamma!r}")
        if self.contrast[0] < 0 or self.saturation[0] < 0:
            raise ValueError("DegradeConfig.contrast and .saturation must be >= 0")
        if self.tone_curve[0] < -1 or self.tone_curve[1] > 1:
            raise ValueError(
                "DegradeConfig.tone_curve must lie in [-1, 1] (monotone curve), "
                f"got {self.tone_curve!r}"
            )
        if not (0.0 <= self.black_level[0] and self.black_level[1] < self.white_level[0]
                and self.white_level[1] <= 1.0):
            raise ValueError(
                "DegradeConfig levels must satisfy 0 <= black_level < white_level <= 1, "
                f"got black {self.black_level!r}, white {self.white_level!r}"
            )
        if not (math.isfinite(self.wb_log_gain) and self.wb_log_gain >= 0):
            raise ValueError(
                f"DegradeConfig.wb_log_gain must be finite and >= 0, got {self.wb_log_gain!r}"
            )
        if not 0.0 <= self.p_identity <= 1.0:
            raise ValueError(f"DegradeConfig.p_identity must be in [0, 1], got {self.p_identity!r}")


@dataclass(frozen=True)
class EditParams:
    """One sampled global edit. The defaults are the identity.

    exposure_ev: stops, linear-light gain ``2 ** exposure_ev``.
    wb_log_r, wb_log_b: natural-log gains of R and B (G is the reference), linear light.
    tone_curve: signed S-curve strength in [-1, 1] (0 = none).
    contrast: blend factor toward mean luma (1 = none).
    gamma: exponent on sRGB values (1 = none).
    saturation: blend factor toward per-pixel luma (1 = none).
    black, white: output levels, ``x -> black + (white - black) x`` (0 and 1 = none).
    """

    exposure_ev: float = 0.0
    wb_log_r: float = 0.0
    wb_log_b: float = 0.0
    tone_curve: float = 0.0
    contrast: float = 1.0
    gamma: float = 1.0
    saturation: float = 1.0
    black: float = 0.0
    white: float = 1.0

    def is_identity(self) -> bool:
        """True when :func:`apply_edit` with these params only clips the input to [0, 1]."""
        return self == EditParams()

    def to_dict(self) -> dict[str, float]:
        """Plain floats, e.g. for logging or a JSON sidecar."""
        return {k: float(v) for k, v in asdict(self).items()}


def identity_params() -> EditParams:
    """The edit that changes nothing."""
    return EditParams()


def sample_edit_params(rng: np.random.Generator, config: DegradeConfig | None = None) -> EditParams:
    """Draw one random edit from ``config`` (default :class:`DegradeConfig`).

    The draws are made in a fixed order and always all made, so a given generator state maps to
    the same values whatever ``p_identity`` is; skipped edits are then set to their identity.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    cfg = DegradeConfig() if config is None else config
    w = cfg.wb_log_gain
    values = {
        "exposure_ev": rng.uniform(*cfg.exposure_ev),
        "wb_log_r": rng.uniform(-w, w),
        "wb_log_b": rng.uniform(-w, w),
        "tone_curve": rng.uniform(*cfg.tone_curve),
        "contrast": rng.uniform(*cfg.contrast),
        "gamma": rng.uniform(*cfg.gamma),
        "saturation": rng.uniform(*cfg.saturation),
        "black": rng.uniform(*cfg.black_level),
        "white": rng.uniform(*cfg.white_level),
    }
    # White balance is one edit (both gains skip together), as in a raw converter.
    skip = rng.random(7) < cfg.p_identity
    ident = EditParams()
    groups = (
        ("exposure_ev",),
        ("wb_log_r", "wb_log_b"),
        ("tone_curve",),
        ("contrast",),
        ("gamma",),
        ("saturation",),
        ("black", "white"),
    )
    for skipped, names in zip(skip, groups):
        if skipped:
            for name in names:
                values[name] = getattr(ident, name)
    return EditParams(**{k: float(v) for k, v in values.items()})


def _check_image(img: torch.Tensor) -> None:
    if not isinstance(img, torch.Tensor):
        raise TypeError(f"img must be a torch.Tensor, got {type(img).__name__}")
    if img.dim() not in (3, 4) or img.shape[-3] != 3:
        raise ValueError(f"img must have shape (3, H, W) or (B, 3, H, W), got {tuple(img.shape)}")
    if not img.is_floating_point():
        raise ValueError(f"img must be a floating-point tensor in [0, 1], got dtype {img.dtype}")


def _luma(x: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) -> (..., 1, H, W) Rec.601 luma."""
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x * w).sum(dim=-3, keepdim=True)


def apply_edit(img: torch.Tensor, params: EditParams) -> torch.Tensor:
    """Apply one global edit to an sRGB image.

    Args:
        img: (3, H, W) or (B, 3, H, W) float tensor, sRGB-encoded, values in [0, 1].
            With a batch, every image gets the same edit; statistics (mean luma for contrast)
            are per image, so a batch equals its images processed one by one.
        params: the edit (see :class:`EditParams`).

    Returns:
        Tensor of the same shape, dtype and device, clipped to [0, 1]. Differentiable w.r.t.
        ``img``. Edits whose parameter is the identity are skipped exactly, so
        ``apply_edit(img, identity_params())`` equals ``img.clamp(0, 1)``.

    Order: white balance + exposure (linear light), tone curve, contrast, gamma, saturation,
    levels.
    """
    _check_image(img)
    if not isinstance(params, EditParams):
        raise TypeError(f"params must be an EditParams, got {type(params).__name__}")
    out_dtype = img.dtype
    # Half types lose too much through the sRGB round trip and pow; compute in float32.
    x = img.float() if img.dtype in (torch.float16, torch.bfloat16) else img
    x = x.clamp(0.0, 1.0)

    p = params
    if p.exposure_ev != 0.0 or p.wb_log_r != 0.0 or p.wb_log_b != 0.0:
        base = 2.0**p.exposure_ev
        rgb = (base * math.exp(p.wb_log_r), base, base * math.exp(p.wb_log_b))
        gains = torch.tensor(rgb, dtype=x.dtype, device=x.device).view(3, 1, 1)
        # Clip in linear light, before encoding: that is where a sensor / camera JPEG clips.
        x = linear_to_srgb((srgb_to_linear(x) * gains).clamp(0.0, 1.0))

    if p.tone_curve != 0.0:
        # x - s sin(2 pi x) / (2 pi): fixes 0, 0.5 and 1; slope 1 - s cos(2 pi x) > 0 for |s| < 1.
        x = x - p.tone_curve * torch.sin(2.0 * math.pi * x) / (2.0 * math.pi)
        x = x.clamp(0.0, 1.0)

    if p.contrast != 1.0:
        mean = _luma(x).mean(dim=(-2, -1), keepdim=True)
        x = (mean + p.contrast * (x - mean)).clamp(0.0, 1.0)

    if p.gamma != 1.0:
        # clamp_min keeps the gradient of x ** g finite at 0 when g < 1.
        x = x.clamp_min(1e-8) ** p.gamma

    if p.saturation != 1.0:
        y = _luma(x)
        x = (y + p.saturation * (x - y)).clamp(0.0, 1.0)

    if p.black != 0.0 or p.white != 1.0:
        x = p.black + (p.white - p.black) * x

    return x.clamp(0.0, 1.0).to(out_dtype)


def degrade(
    img: torch.Tensor, seed: int, config: DegradeConfig | None = None
) -> tuple[torch.Tensor, EditParams]:
    """Degrade a target photo into a synthetic camera input.

    Args:
        img: (3, H, W) or (B, 3, H, W) float sRGB in [0, 1] (the target / "expert" image).
            A batch gets one shared edit; call per image with distinct seeds for distinct edits.
        seed: non-negative int; the same seed gives the same edit.
        config: sampling ranges, default :class:`DegradeConfig`.

    Returns:
        ``(degraded, params)``: degraded has img's shape and dtype, in [0, 1].
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    params = sample_edit_params(np.random.default_rng(int(seed)), config)
    return apply_edit(img, params), params

