"""Torch-free enhancement for generators that run on numpy arrays (`OnnxGenerator`).

Same steps and results as `dpe_hf.inference.enhance_array` / `enhance` for PIL images and
H x W x 3 arrays: the network runs on an area-averaged copy with long side `max_side`, and
its edit is carried to full size strip by strip (`dpe_hf.ops.guided`, numpy and OpenCV only),
so neither method imports torch and `dpe enhance --model model.onnx` starts without it.

`generator` is any callable taking (B,3,H,W) float32 numpy in [0, 1] and returning an array
of the same shape; an object with a ``run`` method (`OnnxGenerator`) is called through it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dpe_hf.ops import guided
from dpe_hf.ops.checks import check_image, dtype_scale
from dpe_hf.ops.exposure import even_exposure
from dpe_hf.ops.guided import apply_bilateral_grid, blend_grid, downscale_long_side
from dpe_hf.ops.icc import srgb_converter

__all__ = ["DEFAULT_MAX_SIDE", "METHODS", "blend", "enhance_array_numpy", "enhance_numpy", "enhance_pil"]

DEFAULT_MAX_SIDE = 512  # == dpe_hf.inference.DEFAULT_MAX_SIDE
METHODS = ("guided", "residual")


# -- enhancement ----------------------------------------------------------------------------


def blend(image: np.ndarray, result: np.ndarray, strength: float) -> np.ndarray:
    """image + strength * (result - image), in the arrays' dtype; exact at strength 0 and 1."""
    if strength <= 0:
        return image
    if strength >= 1:
        return result
    out = np.empty_like(image)
    s = np.float32(strength)
    for r in range(0, image.shape[0], 512):  # in bands, so a 50 MP photo needs little extra memory
        a = image[r:r + 512].astype(np.float32)
        a += s * (result[r:r + 512].astype(np.float32) - a)
        out[r:r + 512] = np.rint(a)
    return out


def _check_method(method: str) -> None:
    if method == "tiled":  # an exported graph computes its global feature from what it is given
        raise ValueError("method 'tiled' needs a PyTorch model: an ONNX model has no input for "
                         "the global feature that every tile must share")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def enhance_array_numpy(generator: Any, image: np.ndarray, *, max_side: int = DEFAULT_MAX_SIDE,
                        strength: float = 1.0, method: str = "guided", threads: int | None = None,
                        icc_profile: bytes | None = None, auto_exposure: bool = False) -> np.ndarray:
    """`dpe_hf.inference.enhance_array` for a numpy generator: H x W x 3 uint8 / uint16 in,
    the same dtype out (in the colour space of `icc_profile`, which the network sees in sRGB)."""
    _check_method(method)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if auto_exposure:  # as in enhance_array: the strength blends with the photo as given
        out = enhance_array_numpy(generator, even_exposure(image), max_side=max_side, method=method,
                                  threads=threads, icc_profile=icc_profile)
        return blend(image, out, strength)
    scale = dtype_scale(image.dtype)
    colour = srgb_converter(icc_profile)
    low = downscale_long_side(image, max_side)
    run = getattr(generator, "run", generator)
    x = low.astype(np.float32) / np.float32(scale) if colour is None else colour.to_srgb(low)
    x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
    lout = np.clip(np.asarray(run(x), np.float32), 0, 1)[0].transpose(1, 2, 0)  # (h, w, 3)
    if colour is not None:
        lout = colour.from_srgb(lout)
    if low.shape == image.shape:  # small photo: the network ran at full size
        out = lout
        if strength != 1.0:
            out = image / np.float32(scale) + strength * (out - image / np.float32(scale))
        return np.round(np.clip(out, 0, 1) * scale).astype(image.dtype)
    if method == "residual":
        return guided.residual_upsample(image, low, lout, strength=strength, threads=threads)
    image = check_image(image)
    grid = guided.fit_bilateral_grid(low.astype(np.float32) / np.float32(scale), lout)
    if strength != 1.0:
        grid = blend_grid(grid, strength)
    return apply_bilateral_grid(image, grid, threads=threads)


def enhance_numpy(generator: Any, image, *, max_side: int = DEFAULT_MAX_SIDE, strength: float = 1.0,
                  method: str = "guided", icc_profile: bytes | None = None, auto_exposure: bool = False):
    """`dpe_hf.inference.enhance` for a numpy generator and a PIL image or H x W x 3 array."""
    from PIL import Image

    _check_method(method)
    options = dict(max_side=max_side, strength=strength, method=method, auto_exposure=auto_exposure)
    if isinstance(image, Image.Image):
        return enhance_pil(lambda rgb, icc: enhance_numpy(generator, rgb, icc_profile=icc, **options), image,
                           icc_profile)
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 array, got shape {image.shape}")
        scale = dtype_scale(image.dtype)
        if scale != 1.0:
            return enhance_array_numpy(generator, image, icc_profile=icc_profile, **options)
        u16 = np.round(np.clip(np.nan_to_num(image, nan=0.0), 0, 1) * 65535.0).astype(np.uint16)
        out = enhance_array_numpy(generator, u16, icc_profile=icc_profile, **options)
        return (out / np.float32(65535.0)).astype(image.dtype)
    raise TypeError(f"enhance_numpy() takes a PIL image or a numpy array, not {type(image).__name__}")


def enhance_pil(run, image, icc_profile: bytes | None = None):
    """A PIL image through ``run(rgb_array, icc_profile) -> array`` (shared by both enhance
    functions): any mode is enhanced as RGB, RGBA/LA keep their alpha, and the photo's RGB ICC
    profile (its own unless `icc_profile` is given) goes to `run` and stays on the result,
    whose colours are in that space."""
    from PIL import Image

    icc = icc_profile if icc_profile is not None else image.info.get("icc_profile")
    if not icc or icc[16:20] != b"RGB ":  # a CMYK or grey profile does not describe RGB pixels
        icc = None
    alpha = image.getchannel("A") if image.mode in ("RGBA", "LA") else None
    out = Image.fromarray(run(np.asarray(image.convert("RGB")), icc))
    if alpha is not None:
        out.putalpha(alpha)
    if icc:
        out.info["icc_profile"] = icc
    return out
