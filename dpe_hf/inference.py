"""Enhance photos of any size with a trained generator.

The look of a photo is decided on a copy whose long side is `max_side` (512, the size the
network was trained at; smaller photos run at their own size), and one of three methods brings
it to full resolution:

* ``method="guided"`` (default): a bilateral grid of local affine colour transforms is fitted
  to the low-resolution (input, output) pair and sliced with the full-resolution photo
  (`dpe_hf.ops.guided`): edge-aware, a few operations per pixel;
* ``method="residual"``: the low-resolution residual (output - input) is upsampled bilinearly
  and added to the full-size input (blurs the edit across edges);
* ``method="tiled"`` (the most faithful, meant for a GPU): the network itself runs on the
  full-size photo in overlapping tiles of ``tile`` pixels, all with the global feature of
  the copy at `max_side` (`DPEGenerator.encode_global`), so every tile gets the same look and
  no tone shifts appear between them; overlaps are blended with raised-cosine weights
  (`dpe_hf.ops.tiling`), one row of tiles at a time.

uint8 / uint16 arrays (and PIL images) are processed strip by strip (or row of tiles by row of
tiles), from and to integers: no full-size float copy is made, so memory stays near twice the
image's own size.

A photo tagged with a non-sRGB ICC profile (``icc_profile=``; PIL images bring their own) is
shown to the network in sRGB and its result brought back to the photo's colour space
(`dpe_hf.ops.icc`): only the low-resolution copy, or each tile, is converted.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch
from PIL import Image

from dpe_hf.imageio import from_float, to_float32
from dpe_hf.inference_numpy import blend, dtype_scale, enhance_pil
from dpe_hf.models.generator import MULTIPLE
from dpe_hf.ops.exposure import even_exposure
from dpe_hf.ops.guided import downscale_long_side, guided_upsample, residual_upsample
from dpe_hf.ops.icc import SrgbConverter, srgb_converter
from dpe_hf.ops.resize import resize_long_side, resize_to
from dpe_hf.ops.tiling import feather_weights, tile_spans

DEFAULT_MAX_SIDE = 512
METHODS = ("guided", "residual", "tiled")
#: Tile side of ``method="tiled"`` (rounded up to a multiple of the U-Net's 16) and the overlap
#: of neighbouring tiles (a multiple of 16 too, so every tile starts on the whole image's grid).
DEFAULT_TILE = 1024
DEFAULT_OVERLAP = 64
MIN_TILE = 64

ImageLike = TypeVar("ImageLike", Image.Image, np.ndarray, torch.Tensor)


def resolve_device(name: str = "auto") -> str:
    """`auto` (CUDA, then Apple MPS, then CPU), `cpu`, `cuda`, `cuda:N` or `mps`, checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if torch.backends.mps.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name}: not a device (use auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda" and (not torch.cuda.is_available()
                                  or (device.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"--device {name}: no such CUDA device on this machine")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available on this machine")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {name}: use auto, cpu, cuda, cuda:N or mps")
    return str(device)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


@torch.inference_mode()
def enhance_array(generator: torch.nn.Module, image: np.ndarray, *, max_side: int = DEFAULT_MAX_SIDE,
                  strength: float = 1.0, method: str = "guided", threads: int | None = None,
                  tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
                  icc_profile: bytes | None = None, auto_exposure: bool = False) -> np.ndarray:
    """Enhance an H x W x 3 uint8 / uint16 array at its own size; returns the same dtype.

    The network sees an area-averaged copy with long side `max_side`; its result is carried to
    full size by `method` strip by strip (`dpe_hf.ops.guided`), never as a full-size float.
    ``method="tiled"`` runs the network on tiles of the full-size photo instead (`tile`,
    `overlap`: see `_tile_geometry`). `icc_profile`: the photo's ICC profile, if any; the
    result is in the same colour space. `auto_exposure`: re-expose the photo first
    (`dpe_hf.ops.exposure.even_exposure`, one more image-size array while it runs); the strength
    still blends with the photo as given. Numpy generators (`OnnxGenerator`) go through
    `dpe_hf.inference_numpy`.
    """
    if getattr(generator, "numpy_native", False):
        from dpe_hf.inference_numpy import enhance_array_numpy

        return enhance_array_numpy(generator, image, max_side=max_side, strength=strength,
                                   method=method, threads=threads, icc_profile=icc_profile,
                                   auto_exposure=auto_exposure)
    _check_method(method)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if auto_exposure:  # the strength blends with the photo as given, not the re-exposed one
        out = enhance_array(generator, even_exposure(image), max_side=max_side, method=method, threads=threads,
                            tile=tile, overlap=overlap, icc_profile=icc_profile)
        return blend(image, out, strength)
    colour = srgb_converter(icc_profile)
    low = downscale_long_side(image, max_side)
    generator.eval()
    if method == "tiled" and low.shape != image.shape:
        return _enhance_tiled(generator, image, low, strength=strength, tile=tile, overlap=overlap,
                              colour=colour)
    low_out = _network(generator, to_float32(low), colour=colour)
    if low.shape == image.shape:  # small photo: the network ran at full size
        return from_float(_blend(to_float32(image), low_out, strength), image.dtype)
    carry = guided_upsample if method == "guided" else residual_upsample
    return carry(image, low, low_out, strength=strength, threads=threads)


def _enhance_tiled(generator: torch.nn.Module, image: np.ndarray, low: np.ndarray, *, strength: float,
                   tile: int, overlap: int, colour: SrgbConverter | None) -> np.ndarray:
    """The network on the full-size photo, tile by tile, every tile with the global feature of
    `low` (the copy at max_side): the look is decided once, so tiles cannot drift apart in
    tone. Tiles are blended with weights that sum to one, in a float band one row of tiles
    high; rows that no later tile touches are rounded into the output as soon as they are
    final, so memory holds the image, the output and one band."""
    tile, overlap = _tile_geometry(tile, overlap)
    global_feature = generator.encode_global(_to_tensor(_srgb(to_float32(low), colour), generator))
    height, width = image.shape[:2]
    rows, cols = tile_spans(height, tile, overlap), tile_spans(width, tile, overlap)
    row_weights, col_weights = feather_weights(rows), feather_weights(cols)
    out = np.empty_like(image)
    band = np.zeros((min(tile, height), width, 3), np.float32)
    for i, (y0, y1) in enumerate(rows):
        for (x0, x1), col_weight in zip(cols, col_weights):
            x = to_float32(image[y0:y1, x0:x1])
            y = _blend(x, _network(generator, x, global_feature, colour), strength)
            band[:y1 - y0, x0:x1] += y * (row_weights[i][:, None, None] * col_weight[None, :, None])
        final = rows[i + 1][0] if i + 1 < len(rows) else y1  # the next row of tiles starts there
        out[y0:final] = from_float(band[:final - y0], image.dtype)
        carried = y1 - final  # rows the next row of tiles still adds to
        band[:carried] = band[final - y0:y1 - y0]
        band[carried:] = 0.0
    return out


def _tile_geometry(tile: int, overlap: int) -> tuple[int, int]:
    """The tile side rounded up to a multiple of the U-Net's downsampling factor (16), and the
    overlap rounded down to one, at most half a tile: tiles then start on multiples of 16 and
    see the pixel grid of the whole image, and only neighbours overlap."""
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < MIN_TILE:
        raise ValueError(f"tile must be an int >= {MIN_TILE}, got {tile!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        raise ValueError(f"overlap must be an int >= 0, got {overlap!r}")
    tile = -(-tile // MULTIPLE) * MULTIPLE
    return tile, min(overlap, tile // 2) // MULTIPLE * MULTIPLE


def _blend(x: np.ndarray, y: np.ndarray, strength: float) -> np.ndarray:
    return y if strength == 1.0 else x + np.float32(strength) * (y - x)


def _to_tensor(x: np.ndarray, generator: torch.nn.Module) -> torch.Tensor:
    """float32 H x W x 3 -> (1, 3, H, W) on the generator's device, in its dtype."""
    param = next(generator.parameters())
    return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].to(param.device, param.dtype)


def _srgb(x: np.ndarray, colour: SrgbConverter | None) -> np.ndarray:
    return x if colour is None else colour.to_srgb(x)


def _network(generator: torch.nn.Module, x: np.ndarray, global_feature: torch.Tensor | None = None,
             colour: SrgbConverter | None = None) -> np.ndarray:
    """The generator's output for float32 H x W x 3 in [0, 1], clipped, as float32 H x W x 3;
    with `colour`, x and the result are in the photo's colour space and the network sees sRGB."""
    t = _to_tensor(_srgb(x, colour), generator)
    y = generator(t) if global_feature is None else generator(t, global_feature=global_feature)
    y = y.clamp(0, 1)[0].float().permute(1, 2, 0).cpu().numpy()
    return y if colour is None else colour.from_srgb(y)


@torch.inference_mode()
def enhance_tensor(generator: torch.nn.Module, x: torch.Tensor, *, max_side: int = DEFAULT_MAX_SIDE,
                   strength: float = 1.0, method: str = "guided", tile: int = DEFAULT_TILE,
                   overlap: int = DEFAULT_OVERLAP) -> torch.Tensor:
    """Enhance (B,3,H,W) float in [0,1] at full size; returns the same shape, in [0,1].

    ``method="guided"`` and ``"tiled"`` go through `enhance_array` on a uint16 copy of each
    image (on the CPU, then back to x's device and dtype; 1/65535 quantisation);
    ``"residual"`` is the float path.
    """
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a (B,3,H,W) tensor, got shape {tuple(x.shape)}")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    _check_method(method)
    if method in ("guided", "tiled"):
        outs = []
        for item in x:
            u16 = (item.detach().float().clamp(0, 1) * 65535).round_().to(torch.int32).permute(1, 2, 0)
            arr = enhance_array(generator, u16.cpu().numpy().astype(np.uint16), max_side=max_side,
                                strength=strength, method=method, tile=tile, overlap=overlap)
            outs.append(torch.from_numpy(arr.astype(np.float32) / np.float32(65535.0)).permute(2, 0, 1))
        return torch.stack(outs).to(x.device, x.dtype)
    generator.eval()
    param = next(generator.parameters())
    low = resize_long_side(x, max_side).to(param.device, param.dtype)
    out_low = generator(low).clamp(0, 1).to(x.device, x.dtype)
    if low.shape[-2:] == x.shape[-2:]:
        out = out_low
    else:
        residual = out_low - low.to(x.device, x.dtype)
        out = (x + resize_to(residual, x.shape[-2:])).clamp(0, 1)
    if strength != 1.0:
        out = x + strength * (out - x)
    return out


def enhance(generator: torch.nn.Module, image: ImageLike, *, max_side: int = DEFAULT_MAX_SIDE,
            strength: float = 1.0, method: str = "guided", tile: int = DEFAULT_TILE,
            overlap: int = DEFAULT_OVERLAP, icc_profile: bytes | None = None,
            auto_exposure: bool = False) -> ImageLike:
    """Enhance one photo at its own size and return it as the type it was given.

    - PIL image: any mode is enhanced as RGB (uint8 path); RGBA/LA keep their alpha
      (`dpe_hf.inference_numpy.enhance_pil`).
    - numpy array H×W×3: uint8 / uint16 go through `enhance_array` (strip-wise, no float
      copy); float in [0,1] is quantised to uint16 for it and returned as its own float dtype.
    - torch tensor (3,H,W) or (B,3,H,W), float in [0,1]: `enhance_tensor`; same shape and dtype.
    `method`: "guided" (default), "residual" or "tiled" (with `tile` and `overlap` in pixels),
    see the module docstring. `icc_profile`: the photo's ICC profile for arrays (a PIL image's
    own is used when None; the result carries it); not for tensors. `auto_exposure`: re-expose
    the photo first (`dpe_hf.ops.exposure`); not for tensors.
    """
    _check_method(method)
    if getattr(generator, "numpy_native", False) and isinstance(image, (Image.Image, np.ndarray)):
        from dpe_hf.inference_numpy import enhance_numpy  # torch-free path (`OnnxGenerator`)

        return enhance_numpy(generator, image, max_side=max_side, strength=strength, method=method,
                             icc_profile=icc_profile, auto_exposure=auto_exposure)
    options = dict(max_side=max_side, strength=strength, method=method, tile=tile, overlap=overlap)
    if isinstance(image, torch.Tensor):
        if auto_exposure:
            raise ValueError("auto_exposure takes a PIL image or a numpy array, not a tensor")
        batched = image if image.ndim == 4 else image.unsqueeze(0)
        out = enhance_tensor(generator, batched.float(), **options).to(image.dtype)
        return out if image.ndim == 4 else out[0]
    options["auto_exposure"] = auto_exposure  # arrays and PIL images only
    if isinstance(image, Image.Image):
        return enhance_pil(lambda rgb, icc: enhance(generator, rgb, icc_profile=icc, **options), image,
                           icc_profile)
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 array, got shape {image.shape}")
        scale = dtype_scale(image.dtype)
        if scale != 1.0:
            return enhance_array(generator, image, icc_profile=icc_profile, **options)
        u16 = np.round(np.clip(np.nan_to_num(image, nan=0.0), 0, 1) * 65535.0).astype(np.uint16)
        out = enhance_array(generator, u16, icc_profile=icc_profile, **options)
        return (out / np.float32(65535.0)).astype(image.dtype)
    raise TypeError(f"enhance() takes a PIL image, a numpy array or a torch tensor, not {type(image).__name__}")
