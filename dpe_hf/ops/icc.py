"""Photos tagged with a non-sRGB ICC profile (Display P3, Adobe RGB, ProPhoto...): the network
sees them in sRGB.

The network learned from sRGB photos. Given the numbers of a wide-gamut encoding as they are,
it would see duller colours than the photo has and "fix" them. `srgb_converter(icc)` returns
the two conversions between the photo's RGB and sRGB, or None where there is nothing to
convert: no profile, an sRGB profile (any profile within one 8-bit level of sRGB on a lattice
of test colours), or one LittleCMS cannot use (such photos are taken as sRGB, as before).

Only what the network sees is converted: the low-resolution copy and the network's output
(guided, residual), or each tile (tiled). The full-size photo keeps its own encoding, the
carried result is in the photo's colour space, and `dpe_hf.imageio.write_image` tags it with
the photo's own profile. So a photo at strength 0 comes back unchanged.

How: LittleCMS (Pillow's ImageCms, relative colorimetric intent) on 8-bit data, both ways.
The network's input and output are quantised to 8 bits for it: the network works at that
precision anyway, and the guided fit averages the rounding away; only ``method="tiled"``
writes converted values directly, so a 16-bit photo with a non-sRGB profile comes out of it
with 8-bit steps. Colours outside sRGB are clipped to it on the way in (the network cannot see
them), and the enhanced photo keeps that clipping. numpy and Pillow only (the ONNX path runs
without torch).
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SrgbConverter", "srgb_converter"]

_TEST_LEVELS = np.arange(0, 256, 17, dtype=np.uint8)  # 16^3 colours that decide "is sRGB"


@dataclass(frozen=True, eq=False)
class SrgbConverter:
    """Conversions between a photo's RGB and sRGB, both ways: H x W x 3 (uint8, uint16 or float
    in [0, 1]) in, float32 in [0, 1] out."""

    to_srgb_transform: Any  # ImageCms transforms, 8-bit RGB -> RGB
    from_srgb_transform: Any

    def to_srgb(self, image: np.ndarray) -> np.ndarray:
        return _apply(self.to_srgb_transform, image) / np.float32(255.0)

    def from_srgb(self, image: np.ndarray) -> np.ndarray:
        return _apply(self.from_srgb_transform, image) / np.float32(255.0)


def srgb_converter(icc_profile: bytes | None) -> SrgbConverter | None:
    """The conversions for a photo tagged with ``icc_profile`` (the bytes of an ICC profile),
    or None for an untagged photo, an sRGB profile or one LittleCMS cannot use."""
    if not icc_profile:
        return None
    return _converter(bytes(icc_profile))


@functools.lru_cache(maxsize=8)  # a batch's photos mostly share one profile
def _converter(icc_profile: bytes) -> SrgbConverter | None:
    from PIL import ImageCms

    try:
        photo = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
        # no 1-pixel cache: a transform is shared by the threads that use this profile
        options = dict(renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, flags=ImageCms.Flags.NOCACHE)
        converter = SrgbConverter(ImageCms.buildTransform(photo, srgb, "RGB", "RGB", **options),
                                  ImageCms.buildTransform(srgb, photo, "RGB", "RGB", **options))
        colours = np.stack(np.meshgrid(_TEST_LEVELS, _TEST_LEVELS, _TEST_LEVELS, indexing="ij"), -1)
        colours = colours.reshape(len(_TEST_LEVELS) ** 2, len(_TEST_LEVELS), 3)
        there = _apply(converter.to_srgb_transform, colours)
        back = _apply(converter.from_srgb_transform, colours)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None  # not an RGB profile LittleCMS can use: the photo is taken as sRGB
    if max(np.abs(there - colours).max(), np.abs(back - colours).max()) <= 1:
        return None
    return converter


def _apply(transform: Any, image: np.ndarray) -> np.ndarray:
    """An 8-bit ImageCms transform on H x W x 3 uint8 / uint16 / float in [0, 1]: float32 0..255."""
    from PIL import Image, ImageCms

    image = np.asarray(image)
    if image.dtype == np.uint8:
        u8 = image
    elif image.dtype == np.uint16:
        u8 = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)  # round(v / 257)
    else:
        u8 = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    mapped = ImageCms.applyTransform(Image.fromarray(np.ascontiguousarray(u8), "RGB"), transform)
    return np.asarray(mapped, dtype=np.float32)
