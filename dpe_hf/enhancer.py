"""The inference core: an `Enhancer` is configured once (a model and the options) and then called
on each photo, as Real-ESRGAN's ``RealESRGANer`` is.

    enhancer = Enhancer(generator, method="guided", strength=0.8)
    out = enhancer(photo)                       # PIL image or H x W x 3 array, same type back
    out, pair = enhancer.with_pair(photo)       # and the pair a LUT is fitted on (--save-lut)

The look of a photo is decided on ONE copy whose long side is `max_side` (512, the size the
network was trained at; smaller photos run at their own size), and one of three methods brings
it to full resolution:

* ``method="guided"`` (default): a bilateral grid of local affine colour transforms is fitted
  to the low-resolution (input, output) pair and sliced with the full-resolution photo
  (`dpe_hf.ops.guided`): edge-aware, a few operations per pixel;
* ``method="residual"``: the low-resolution residual (output - input) is upsampled bilinearly
  and added to the full-size input (blurs the edit across edges);
* ``method="tiled"`` (the most faithful, meant for a GPU; PyTorch models only): the network
  itself runs on the full-size photo in overlapping tiles of ``tile`` pixels, all with the
  global feature of the copy at `max_side` (the backend's ``encode_global``), so every tile
  gets the same look and no tone shifts appear between them; overlaps are blended with
  raised-cosine weights (`dpe_hf.ops.tiling`), one row of tiles at a time.

uint8 / uint16 arrays (and PIL images) are processed strip by strip (or row of tiles by row of
tiles), from and to integers: no full-size float copy is made, so memory stays near twice the
image's own size. Float arrays in [0, 1] go through a uint16 copy.

A photo tagged with a non-sRGB ICC profile (``icc_profile=``; PIL images bring their own) is
shown to the network in sRGB and its result brought back to the photo's colour space
(`dpe_hf.ops.icc`): only the low-resolution copy, or each tile, is converted.

The network itself is a backend (`backend_for`): `dpe_hf.torch_backend.TorchBackend` for a
PyTorch module, `dpe_hf.export.onnx_runtime.OnnxBackend` for an ONNX model or any callable on
(B, 3, H, W) float32 numpy. This module needs numpy, OpenCV and Pillow only, so an ONNX model
runs without importing torch.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
from PIL import Image

from dpe_hf.defaults import DEFAULT_MAX_SIDE, DEFAULT_OVERLAP, DEFAULT_TILE, METHODS, MIN_TILE
from dpe_hf.export.onnx_runtime import OnnxBackend
from dpe_hf.imageio import from_float, to_float32
from dpe_hf.ops.checks import check_levels, check_strength, dtype_scale
from dpe_hf.ops.exposure import even_exposure
from dpe_hf.ops.guided import downscale_long_side, guided_upsample, residual_upsample
from dpe_hf.ops.icc import SrgbConverter, srgb_converter
from dpe_hf.ops.levels import apply_levels, levels_bounds
from dpe_hf.ops.tiling import feather_weights, tile_spans

__all__ = ["DEFAULT_MAX_SIDE", "DEFAULT_OVERLAP", "DEFAULT_TILE", "METHODS", "MIN_TILE", "Backend", "Enhancer",
           "LowPair", "backend_for", "blend", "check_method", "enhance", "tile_geometry"]

PhotoLike = TypeVar("PhotoLike", Image.Image, np.ndarray)


class Backend(Protocol):
    """What the core asks of a network. Images are float32 H x W x 3 in [0, 1], in sRGB."""

    supports_tiling: bool  # has `encode_global`, and `run` takes its result
    tile_multiple: int | None  # tiles start on multiples of this (the network's downsampling)

    def run(self, x: np.ndarray, global_feature: Any = None) -> np.ndarray:
        """The network's output for x, clipped to [0, 1], float32 H x W x 3."""

    def encode_global(self, x: np.ndarray) -> Any:
        """The global feature of x, for `run` on tiles of a larger photo."""


def backend_for(model: Any) -> Backend:
    """The backend that runs `model`: a backend as it is, a PyTorch module through
    `TorchBackend`, anything else (an `OnnxGenerator`, a path to a .onnx file, a callable on
    (B, 3, H, W) float32 numpy) through `OnnxBackend`."""
    if hasattr(model, "supports_tiling"):
        return model
    torch = sys.modules.get("torch")  # a torch module can only come from an imported torch
    if torch is not None and isinstance(model, torch.nn.Module):
        from dpe_hf.torch_backend import TorchBackend

        return TorchBackend(model)
    return OnnxBackend(model)


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def tile_geometry(tile: int, overlap: int, multiple: int) -> tuple[int, int]:
    """The tile side rounded up to a multiple of the network's downsampling factor, and the
    overlap rounded down to one, at most half a tile: tiles then start on multiples of it and
    see the pixel grid of the whole image, and only neighbours overlap."""
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < MIN_TILE:
        raise ValueError(f"tile must be an int >= {MIN_TILE}, got {tile!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        raise ValueError(f"overlap must be an int >= 0, got {overlap!r}")
    tile = -(-tile // multiple) * multiple
    return tile, min(overlap, tile // 2) // multiple * multiple


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


def _blend_float(x: np.ndarray, y: np.ndarray, strength: float) -> np.ndarray:
    return y if strength == 1.0 else x + np.float32(strength) * (y - x)


@dataclass(frozen=True)
class LowPair:
    """What the network made of one photo at `max_side`, from the run that enhanced it:
    `low_in` the copy of the photo as given, `low_out` the network's output blended with it by
    the strength (with auto-exposure, the output on the re-exposed copy, so the pair carries the
    re-exposure too). float32 H' x W' x 3 in [0, 1], in the photo's colour space.
    ``dpe_hf.export.lut.fit_lut(pair.low_in, pair.low_out)`` is the photo's LUT."""

    low_in: np.ndarray
    low_out: np.ndarray


class Enhancer:
    """A model and the options, checked once; call it on each photo (see the module docstring).

    `model`: a `DPEGenerator` (any PyTorch module with its call), an `OnnxGenerator`, a callable
    on (B, 3, H, W) float32 numpy, or a backend (`backend_for`). `threads`: workers of the
    full-size passes (`dpe_hf.ops.guided`). `tile`, `overlap`: pixels, for ``method="tiled"``
    (see `tile_geometry`). `auto_exposure`: re-expose the photo first
    (`dpe_hf.ops.exposure.even_exposure`, one more image-size array while it runs); the strength
    still blends with the photo as given. `levels`: the weight, 0 to 1, of per-channel
    auto-levels of the copy the network sees (`dpe_hf.ops.levels`) mixed into the network's
    output before it is carried to full size (0: the network alone): a second opinion on black
    point, white point and colour cast that costs no network time. None: the model's own
    weight (`DPEGenerator(levels=)`, in its config.json; 0 for models without one), or 0 with
    `auto_exposure`.
    """

    def __init__(self, model: Any, *, max_side: int = DEFAULT_MAX_SIDE, method: str = "guided",
                 strength: float = 1.0, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
                 threads: int | None = None, auto_exposure: bool = False, levels: float | None = None):
        check_method(method)
        self.backend = backend_for(model)
        if method == "tiled":
            if not self.backend.supports_tiling:  # an exported graph computes its global feature itself
                raise ValueError("method 'tiled' needs a PyTorch model: an ONNX model has no input for "
                                 "the global feature that every tile must share")
            tile, overlap = tile_geometry(tile, overlap, self.backend.tile_multiple)
        self.max_side, self.method, self.threads = max_side, method, threads
        self.strength = check_strength(strength)
        self.tile, self.overlap = tile, overlap
        self.auto_exposure = auto_exposure
        if levels is None:  # the model's own weight (its config's `levels`), except with auto-exposure,
            # whose point is that a shoot's exposures come out alike: a stretch per photo undoes some
            # of that (SICE sequences: 21.46 dB between exposures without the mix, 20.79 with it)
            levels = 0.0 if auto_exposure else getattr(model, "levels", 0.0)
        self.levels = check_levels(levels)
        # where the guided method's fit and full-size pass run: on the network's CUDA device when
        # it has one (dpe_hf.ops.guided_torch, within a level of the CPU's; the fit solves in
        # float64, which Apple's MPS lacks), else None: numpy and OpenCV on the CPU
        device = getattr(self.backend, "device", None)
        self.carry_device = device if getattr(device, "type", None) == "cuda" else None

    def __call__(self, image: PhotoLike, *, icc_profile: bytes | None = None) -> PhotoLike:
        """The photo enhanced at its own size, as the type it was given (PIL: any mode is
        enhanced as RGB, RGBA/LA keep their alpha, the result carries the photo's profile).
        `icc_profile`: the photo's profile (a PIL image's own is used when None)."""
        return self._photo(image, icc_profile, want_pair=False)[0]

    def with_pair(self, image: PhotoLike, *, icc_profile: bytes | None = None) -> tuple[PhotoLike, LowPair]:
        """`self(image)` and the `LowPair` of the same network run (``method="tiled"`` runs the
        network once more, on the low copy, since its tiles never see it)."""
        return self._photo(image, icc_profile, want_pair=True)

    def look(self, image: PhotoLike, *, icc_profile: bytes | None = None) -> LowPair:
        """The `LowPair` alone: the network on the photo's low-resolution copy, nothing carried
        to full size (`dpe lut` fits one LUT on the looks of many photos). The same pair as
        `with_pair` gives for the guided and residual methods."""
        if isinstance(image, Image.Image):
            icc_profile = _rgb_profile(image, icc_profile)
            image = np.asarray(image.convert("RGB"))
        if dtype_scale(image.dtype) == 1.0:
            image = _to_uint16(image)
        seen = to_float32(downscale_long_side(even_exposure(image) if self.auto_exposure else image, self.max_side))
        low = to_float32(downscale_long_side(image, self.max_side))
        low_out = self._with_levels(seen, self._network(seen, srgb_converter(icc_profile)), self._bounds(seen))
        return LowPair(low, _blend_float(low, low_out, self.strength))

    # -- the photo's type and colour space -------------------------------------------------
    def _photo(self, image, icc_profile, want_pair: bool):
        if isinstance(image, Image.Image):
            icc = _rgb_profile(image, icc_profile)
            alpha = image.getchannel("A") if image.mode in ("RGBA", "LA") else None
            array, pair = self._array(np.asarray(image.convert("RGB")), icc, want_pair)
            out = Image.fromarray(array)
            if alpha is not None:
                out.putalpha(alpha)
            if icc:
                out.info["icc_profile"] = icc
            return out, pair
        if isinstance(image, np.ndarray):
            return self._array(image, icc_profile, want_pair)
        raise TypeError(f"an Enhancer takes a PIL image or a numpy array, not {type(image).__name__}")

    def _array(self, image: np.ndarray, icc_profile: bytes | None, want_pair: bool):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 array, got shape {image.shape}")
        colour = srgb_converter(icc_profile)
        if dtype_scale(image.dtype) != 1.0:
            return self._integers(image, colour, want_pair)
        out, pair = self._integers(_to_uint16(image), colour, want_pair)
        return (out / np.float32(65535.0)).astype(image.dtype), pair

    # -- uint8 / uint16 ----------------------------------------------------------------------
    def _integers(self, image: np.ndarray, colour: SrgbConverter | None, want_pair: bool):
        seen = even_exposure(image) if self.auto_exposure else image
        # with auto-exposure the strength blends with the photo as given, not the re-exposed one
        out, low, low_out = self._carry(seen, colour, 1.0 if self.auto_exposure else self.strength, want_pair)
        if self.auto_exposure:
            out = blend(image, out, self.strength)
        if not want_pair:
            return out, None
        if self.auto_exposure:  # the pair starts from the photo as given
            low = downscale_long_side(image, self.max_side)
        low = to_float32(low)
        return out, LowPair(low, _blend_float(low, low_out, self.strength))

    def _carry(self, image: np.ndarray, colour: SrgbConverter | None, strength: float, want_low_out: bool):
        """(the enhanced image, the low copy, the network's output on it or None)."""
        low = downscale_long_side(image, self.max_side)
        low_float = to_float32(low)
        bounds = self._bounds(low_float)  # the copy's levels also serve its tiles
        if self.method == "tiled" and low.shape != image.shape:
            out = self._tiled(image, low, strength, colour, bounds)
            if not want_low_out:
                return out, low, None
            return out, low, self._with_levels(low_float, self._network(low_float, colour), bounds)
        low_out = self._with_levels(low_float, self._network(low_float, colour), bounds)
        if low.shape == image.shape:  # small photo: the network ran at full size
            out = from_float(_blend_float(to_float32(image), low_out, strength), image.dtype)
        elif self.method == "guided" and self.carry_device is not None:
            from dpe_hf.ops import guided_torch

            out = guided_torch.guided_upsample(image, low_float, low_out, self.carry_device, strength=strength)
        else:
            carry = guided_upsample if self.method == "guided" else residual_upsample
            out = carry(image, low, low_out, strength=strength, threads=self.threads)
        return out, low, low_out

    def _bounds(self, low: np.ndarray):
        """The levels of the copy the network sees, when they are mixed in (`levels`)."""
        return levels_bounds(low) if self.levels else None

    def _with_levels(self, x: np.ndarray, y: np.ndarray, bounds) -> np.ndarray:
        """The network's output `y` for `x`, with `levels` of x's auto-levels (at `bounds`) mixed in."""
        if bounds is None:
            return y
        w = np.float32(self.levels)
        return (1 - w) * y + w * apply_levels(x, bounds)

    def _network(self, x: np.ndarray, colour: SrgbConverter | None, global_feature: Any = None) -> np.ndarray:
        """The backend on float32 H x W x 3 in the photo's colour space; the network sees sRGB."""
        y = self.backend.run(_srgb(x, colour), global_feature)
        return y if colour is None else colour.from_srgb(y)

    def _tiled(self, image: np.ndarray, low: np.ndarray, strength: float,
               colour: SrgbConverter | None, bounds) -> np.ndarray:
        """The network on the full-size photo, tile by tile, every tile with the global feature
        of `low` (the copy at max_side): the look is decided once, so tiles cannot drift apart
        in tone. Tiles are blended with weights that sum to one, in a float band one row of
        tiles high; rows that no later tile touches are rounded into the output as soon as
        they are final, so memory holds the image, the output and one band."""
        tile, overlap = self.tile, self.overlap
        global_feature = self.backend.encode_global(_srgb(to_float32(low), colour))
        height, width = image.shape[:2]
        rows, cols = tile_spans(height, tile, overlap), tile_spans(width, tile, overlap)
        row_weights, col_weights = feather_weights(rows), feather_weights(cols)
        out = np.empty_like(image)
        band = np.zeros((min(tile, height), width, 3), np.float32)
        for i, (y0, y1) in enumerate(rows):
            for (x0, x1), col_weight in zip(cols, col_weights):
                x = to_float32(image[y0:y1, x0:x1])
                y = _blend_float(x, self._with_levels(x, self._network(x, colour, global_feature), bounds), strength)
                band[:y1 - y0, x0:x1] += y * (row_weights[i][:, None, None] * col_weight[None, :, None])
            final = rows[i + 1][0] if i + 1 < len(rows) else y1  # the next row of tiles starts there
            out[y0:final] = from_float(band[:final - y0], image.dtype)
            carried = y1 - final  # rows the next row of tiles still adds to
            band[:carried] = band[final - y0:y1 - y0]
            band[carried:] = 0.0
        return out


def _to_uint16(image: np.ndarray) -> np.ndarray:
    """A float photo in [0, 1] as uint16, the integer photo the core works on (NaN -> 0)."""
    return np.round(np.clip(np.nan_to_num(image, nan=0.0), 0, 1) * 65535.0).astype(np.uint16)


def _rgb_profile(image: Image.Image, icc_profile: bytes | None) -> bytes | None:
    """The photo's ICC profile (`icc_profile`, else the PIL image's own), if it describes RGB."""
    icc = icc_profile if icc_profile is not None else image.info.get("icc_profile")
    return icc if icc and icc[16:20] == b"RGB " else None  # a CMYK or grey profile: not for RGB pixels


def _srgb(x: np.ndarray, colour: SrgbConverter | None) -> np.ndarray:
    return x if colour is None else colour.to_srgb(x)


def enhance(model: Any, image: PhotoLike, *, icc_profile: bytes | None = None, **options) -> PhotoLike:
    """One photo through ``Enhancer(model, **options)``: the torch-free counterpart of
    `dpe_hf.inference.enhance` (which takes tensors too)."""
    return Enhancer(model, **options)(image, icc_profile=icc_profile)
