"""Enhance photos of any size with a trained generator.

The network runs once on a copy whose long side is `max_side` (512, the size it was trained
at; smaller images run at their own size), then the change is carried to full resolution:

* ``method="guided"`` (default): a bilateral grid of local affine colour transforms is fitted
  to the low-resolution (input, output) pair and sliced with the full-resolution photo
  (`dpe_hf.ops.guided`): edge-aware, a few operations per pixel;
* ``method="residual"``: the low-resolution residual (output - input) is upsampled bilinearly
  and added to the full-size input (blurs the edit across edges).

uint8 / uint16 arrays (and PIL images) are processed strip by strip, from and to integers: no
full-size float copy is made, so memory stays near twice the image's own size.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch
from PIL import Image

from dpe_hf.ops.guided import downscale_long_side, guided_upsample, residual_upsample
from dpe_hf.ops.resize import resize_long_side, resize_to

DEFAULT_MAX_SIDE = 512
METHODS = ("guided", "residual")

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
                  strength: float = 1.0, method: str = "guided", threads: int | None = None) -> np.ndarray:
    """Enhance an H x W x 3 uint8 / uint16 array at its own size; returns the same dtype.

    The network sees an area-averaged copy with long side `max_side`; its result is carried to
    full size by `method` strip by strip (`dpe_hf.ops.guided`), never as a full-size float.
    Numpy generators (`OnnxGenerator`) go through `dpe_hf.inference_numpy`.
    """
    if getattr(generator, "numpy_native", False):
        from dpe_hf.inference_numpy import enhance_array_numpy

        return enhance_array_numpy(generator, image, max_side=max_side, strength=strength,
                                   method=method, threads=threads)
    _check_method(method)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    scale = _dtype_scale(image.dtype)
    low = downscale_long_side(image, max_side)
    generator.eval()
    param = next(generator.parameters())
    x = torch.from_numpy(np.ascontiguousarray(low)).permute(2, 0, 1)[None].to(param.device, param.dtype) / scale
    low_out = generator(x).clamp(0, 1)[0].float().cpu()  # (3, h, w)
    if low.shape == image.shape:  # small photo: the network ran at full size
        out = low_out.permute(1, 2, 0).numpy()
        if strength != 1.0:
            out = image / np.float32(scale) + strength * (out - image / np.float32(scale))
        return np.round(np.clip(out, 0, 1) * scale).astype(image.dtype)
    carry = guided_upsample if method == "guided" else residual_upsample
    return carry(image, low, low_out, strength=strength, threads=threads)


@torch.inference_mode()
def enhance_tensor(generator: torch.nn.Module, x: torch.Tensor, *, max_side: int = DEFAULT_MAX_SIDE,
                   strength: float = 1.0, method: str = "guided") -> torch.Tensor:
    """Enhance (B,3,H,W) float in [0,1] at full size; returns the same shape, in [0,1].

    ``method="guided"`` goes through `enhance_array` on a uint16 copy of each image (on the CPU,
    then back to x's device and dtype; 1/65535 quantisation); ``"residual"`` is the float path.
    """
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a (B,3,H,W) tensor, got shape {tuple(x.shape)}")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    _check_method(method)
    if method == "guided":
        outs = []
        for item in x:
            u16 = (item.detach().float().clamp(0, 1) * 65535).round_().to(torch.int32).permute(1, 2, 0)
            arr = enhance_array(generator, u16.cpu().numpy().astype(np.uint16), max_side=max_side,
                                strength=strength, method="guided")
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
            strength: float = 1.0, method: str = "guided") -> ImageLike:
    """Enhance one photo at its own size and return it as the type it was given.

    - PIL image: any mode is enhanced as RGB (uint8 path); RGBA/LA keep their alpha.
    - numpy array H×W×3: uint8 / uint16 go through `enhance_array` (strip-wise, no float
      copy); float in [0,1] is quantised to uint16 for it and returned as its own float dtype.
    - torch tensor (3,H,W) or (B,3,H,W), float in [0,1]: `enhance_tensor`; same shape and dtype.
    `method`: "guided" (default) or "residual", see the module docstring.
    """
    _check_method(method)
    if getattr(generator, "numpy_native", False) and isinstance(image, (Image.Image, np.ndarray)):
        from dpe_hf.inference_numpy import enhance_numpy  # torch-free path (`OnnxGenerator`)

        return enhance_numpy(generator, image, max_side=max_side, strength=strength, method=method)
    if isinstance(image, torch.Tensor):
        batched = image if image.ndim == 4 else image.unsqueeze(0)
        out = enhance_tensor(generator, batched.float(), max_side=max_side, strength=strength,
                             method=method).to(image.dtype)
        return out if image.ndim == 4 else out[0]
    if isinstance(image, Image.Image):
        alpha = image.getchannel("A") if image.mode in ("RGBA", "LA") else None
        out = Image.fromarray(enhance(generator, np.asarray(image.convert("RGB")), max_side=max_side,
                                      strength=strength, method=method))
        if alpha is not None:
            out.putalpha(alpha)
        return out
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 array, got shape {image.shape}")
        scale = _dtype_scale(image.dtype)
        if scale != 1.0:
            return enhance_array(generator, image, max_side=max_side, strength=strength, method=method)
        u16 = np.round(np.clip(np.nan_to_num(image, nan=0.0), 0, 1) * 65535.0).astype(np.uint16)
        out = enhance_array(generator, u16, max_side=max_side, strength=strength, method=method)
        return (out / np.float32(65535.0)).astype(image.dtype)
    raise TypeError(f"enhance() takes a PIL image, a numpy array or a torch tensor, not {type(image).__name__}")


def _dtype_scale(dtype: np.dtype) -> float:
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    if np.issubdtype(dtype, np.floating):
        return 1.0
    raise ValueError(f"unsupported array dtype {dtype}: use uint8, uint16 or float in [0,1]")
