"""Auto exposure: one gain in linear light that brings a photo to a fixed brightness.

Expert C's look is not exposure-invariant: the brighter a FiveK input, the brighter its
retouch (the log-average luminance of the retouch follows the input's with slope 1.14 over the
14 fivek-dev pairs: `benchmarks/expert_exposure.py`), and the models learn that, so two
exposures of one scene come out different. `even_exposure` re-exposes a photo, as a camera's
exposure setting would, to the log-average luminance `AUTO_EXPOSURE_KEY` before the network
sees it: every exposure of a scene then reaches the network alike, up to what the camera
clipped or lost in noise. It costs the network the photo's own exposure as a cue, hence an
option (`dpe enhance --auto-exposure`, the app's "Even out exposure"), not the default;
`benchmarks/quality.py --auto-exposure` and `benchmarks/crossval.py --auto-exposure` measure
both sides.

Numpy only (no torch), so the ONNX path shares it. The transfer curve is sRGB's, also used as
an approximation for photos in other colour spaces.
"""

from __future__ import annotations

import numpy as np

from dpe_hf.ops.guided import downscale_long_side

__all__ = ["AUTO_EXPOSURE_KEY", "MAX_GAIN", "log_average_luminance", "exposure_gain", "apply_exposure_gain",
           "even_exposure"]

#: Target log-average luminance (linear, 0-1): the median of the 14 fivek-dev inputs
#: (`benchmarks/expert_exposure.py`), so a photo is shown to the network at a typical exposure of
#: the photos expert C retouched.
AUTO_EXPOSURE_KEY = 0.088
#: The gain stays within 1/16..16 (+-4 EV): a black frame is not amplified without bound.
MAX_GAIN = 16.0
#: Added to the luminance before the log, so black pixels count as very dark, not as -inf.
LUMINANCE_FLOOR = 1e-3
#: The statistic is taken on a copy with this long side: the mean of a 20 MP photo's logs
#: does not need 20 M terms.
STATISTIC_SIDE = 512
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float64)  # Rec. 709 / sRGB primaries


def _scale(dtype: np.dtype) -> int:
    if dtype == np.uint8:
        return 255
    if dtype == np.uint16:
        return 65535
    raise ValueError(f"auto exposure takes uint8 or uint16 images, got {dtype}")


# The sRGB curves of dpe_hf.ops.color, in numpy: that module is torch, and this one must not be.
def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.power(v, 1 / 2.4) - 0.055)


def _decode_table(dtype: np.dtype) -> np.ndarray:
    scale = _scale(dtype)
    return _srgb_to_linear(np.arange(scale + 1, dtype=np.float64) / scale)


def log_average_luminance(image: np.ndarray) -> float:
    """exp(mean(log(Y + LUMINANCE_FLOOR))) - LUMINANCE_FLOOR, with Y the linear Rec. 709 luminance
    of an H x W x 3 uint8 / uint16 sRGB image (Reinhard et al. 2002's "key" of a photo)."""
    linear = _decode_table(image.dtype)[image]
    y = linear @ _LUMA
    return float(np.exp(np.log(y + LUMINANCE_FLOOR).mean()) - LUMINANCE_FLOOR)


def exposure_gain(image: np.ndarray, key: float = AUTO_EXPOSURE_KEY, max_gain: float = MAX_GAIN) -> float:
    """The linear-light gain that brings `image`'s log-average luminance to `key`, within
    1/max_gain..max_gain, measured on a copy with long side `STATISTIC_SIDE`."""
    if not 0.0 < key < 1.0:
        raise ValueError(f"key must be in (0, 1), got {key}")
    if not max_gain >= 1.0:
        raise ValueError(f"max_gain must be >= 1, got {max_gain}")
    level = log_average_luminance(downscale_long_side(image, STATISTIC_SIDE))
    return float(np.clip(key / max(level, 1e-12), 1.0 / max_gain, max_gain))


def apply_exposure_gain(image: np.ndarray, gain: float) -> np.ndarray:
    """`image` (uint8 / uint16 sRGB) with its linear values multiplied by `gain` and clipped at
    white, as one lookup table over the code values: same dtype, no float copy of the image."""
    if not gain > 0.0:
        raise ValueError(f"gain must be positive, got {gain}")
    scale = _scale(image.dtype)
    encoded = _linear_to_srgb(np.minimum(_decode_table(image.dtype) * gain, 1.0))
    table = np.round(encoded * scale).astype(image.dtype)
    return table[image]


def even_exposure(image: np.ndarray, key: float = AUTO_EXPOSURE_KEY) -> np.ndarray:
    """`image` re-exposed to the log-average luminance `key` (see the module docstring)."""
    return apply_exposure_gain(image, exposure_gain(image, key))
