"""Enhance photos of any size with a trained generator: the public functions.

`enhance` takes a PIL image, a numpy array or a torch tensor; `enhance_array` H x W x 3
arrays; `enhance_tensor` (B, 3, H, W) float tensors. The first two are thin wrappers over the
inference core, `dpe_hf.enhancer.Enhancer` (which says how a photo goes through the network and
back to full size); build an `Enhancer` yourself to configure it once for many photos.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch
from PIL import Image

from dpe_hf.enhancer import (DEFAULT_MAX_SIDE, DEFAULT_OVERLAP, DEFAULT_TILE, METHODS, MIN_TILE, Enhancer,
                             check_method)
from dpe_hf.ops.checks import check_strength
from dpe_hf.ops.resize import resize_long_side, resize_to
from dpe_hf.torch_backend import TorchBackend

__all__ = ["DEFAULT_MAX_SIDE", "DEFAULT_OVERLAP", "DEFAULT_TILE", "METHODS", "MIN_TILE", "Enhancer", "enhance",
           "enhance_array", "enhance_tensor", "resolve_device"]

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


def enhance_array(generator, image: np.ndarray, *, max_side: int = DEFAULT_MAX_SIDE,
                  strength: float = 1.0, method: str = "guided", threads: int | None = None,
                  tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
                  icc_profile: bytes | None = None, auto_exposure: bool = False) -> np.ndarray:
    """Enhance an H x W x 3 uint8 / uint16 (or float in [0, 1]) array at its own size; returns
    the same dtype.

    ``Enhancer(generator, ...)(image, icc_profile=icc_profile)``: see `dpe_hf.enhancer` for the
    methods, `tile` and `overlap`, the photo's ICC profile and `auto_exposure`. `generator`: a
    PyTorch module, an `OnnxGenerator` or a callable on (B, 3, H, W) float32 numpy.
    """
    enhancer = Enhancer(generator, max_side=max_side, strength=strength, method=method, threads=threads,
                        tile=tile, overlap=overlap, auto_exposure=auto_exposure)
    return enhancer(image, icc_profile=icc_profile)


@torch.inference_mode()
def enhance_tensor(generator: torch.nn.Module, x: torch.Tensor, *, max_side: int = DEFAULT_MAX_SIDE,
                   strength: float = 1.0, method: str = "guided", tile: int = DEFAULT_TILE,
                   overlap: int = DEFAULT_OVERLAP) -> torch.Tensor:
    """Enhance (B,3,H,W) float in [0,1] at full size; returns the same shape, in [0,1].

    ``method="guided"`` and ``"tiled"`` go through an `Enhancer` on a uint16 copy of each
    image (on the CPU, then back to x's device and dtype; 1/65535 quantisation);
    ``"residual"`` is the float path (PyTorch modules only), except for a model that mixes
    auto-levels into its outputs (`DPEGenerator(levels=)`), which goes through an `Enhancer` too.
    """
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a (B,3,H,W) tensor, got shape {tuple(x.shape)}")
    strength = check_strength(strength)
    check_method(method)
    if method in ("guided", "tiled") or getattr(generator, "levels", 0.0):
        enhancer = Enhancer(generator, max_side=max_side, strength=strength, method=method, tile=tile,
                            overlap=overlap)
        outs = []
        for item in x:
            u16 = (item.detach().float().clamp(0, 1) * 65535).round_().to(torch.int32).permute(1, 2, 0)
            arr = enhancer(u16.cpu().numpy().astype(np.uint16))
            outs.append(torch.from_numpy(arr.astype(np.float32) / np.float32(65535.0)).permute(2, 0, 1))
        return torch.stack(outs).to(x.device, x.dtype)
    backend = TorchBackend(generator)  # eval mode, and the generator's device and dtype
    low = resize_long_side(x, max_side).to(backend.device, backend.dtype)
    out_low = backend.generator(low).clamp(0, 1).to(x.device, x.dtype)
    if low.shape[-2:] == x.shape[-2:]:
        out = out_low
    else:
        residual = out_low - low.to(x.device, x.dtype)
        out = (x + resize_to(residual, x.shape[-2:])).clamp(0, 1)
    if strength != 1.0:
        out = x + strength * (out - x)
    return out


def enhance(generator, image: ImageLike, *, max_side: int = DEFAULT_MAX_SIDE,
            strength: float = 1.0, method: str = "guided", tile: int = DEFAULT_TILE,
            overlap: int = DEFAULT_OVERLAP, icc_profile: bytes | None = None,
            auto_exposure: bool = False, levels: float | None = None) -> ImageLike:
    """Enhance one photo at its own size and return it as the type it was given.

    - PIL image: any mode is enhanced as RGB (uint8 path); RGBA/LA keep their alpha.
    - numpy array H×W×3: uint8 / uint16 strip-wise, no float copy; float in [0,1] is
      quantised to uint16 and returned as its own float dtype.
    - torch tensor (3,H,W) or (B,3,H,W), float in [0,1]: `enhance_tensor`; same shape and dtype.
    `method`: "guided" (default), "residual" or "tiled" (with `tile` and `overlap` in pixels),
    see `dpe_hf.enhancer`. `icc_profile`: the photo's ICC profile for arrays (a PIL image's
    own is used when None; the result carries it); not for tensors. `auto_exposure`: re-expose
    the photo first (`dpe_hf.ops.exposure`); `levels`: mix that much per-channel auto-levels
    into the network's output (`dpe_hf.enhancer.Enhancer`; None: the model's own weight);
    neither for tensors (which get the model's own weight).
    """
    check_method(method)
    options = dict(max_side=max_side, strength=strength, method=method, tile=tile, overlap=overlap)
    if isinstance(image, torch.Tensor):
        if auto_exposure or levels:
            raise ValueError("auto_exposure and levels take a PIL image or a numpy array, not a tensor")
        batched = image if image.ndim == 4 else image.unsqueeze(0)
        out = enhance_tensor(generator, batched.float(), **options).to(image.dtype)
        return out if image.ndim == 4 else out[0]
    if isinstance(image, (Image.Image, np.ndarray)):
        enhancer = Enhancer(generator, auto_exposure=auto_exposure, levels=levels, **options)
        return enhancer(image, icc_profile=icc_profile)
    raise TypeError(f"enhance() takes a PIL image, a numpy array or a torch tensor, not {type(image).__name__}")
