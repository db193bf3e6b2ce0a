"""`ImageMeta`, and `finish`: the upright array and the meta that every reader returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dpe_hf.imageio.exif import exif_with_orientation_1, orient


@dataclass
class ImageMeta:
    """What `read_image` learned about a file, and what `write_image` carries into the output."""

    format: str  # "JPEG", "PNG", "WEBP", "TIFF", "GIF", "BMP", ...
    bit_depth: int  # 8 or 16: the dtype of the returned array (uint8 / uint16)
    mode: str  # the original PIL mode ("RGB", "P", "CMYK", ...) or e.g. "RGB;16", "L;16"
    exif: bytes | None = None  # starts with b"Exif\0\0"; Orientation reset to 1 (already applied)
    icc_profile: bytes | None = None
    alpha: np.ndarray | None = None  # H x W, same dtype as the image, already oriented
    size: tuple[int, int] = (0, 0)  # (width, height) after orientation


def icc_colour_space(icc: bytes | None) -> bytes | None:
    """The colour space an ICC profile describes (b"RGB ", b"GRAY", b"CMYK", ...)."""
    return icc[16:20] if icc and len(icc) >= 20 else None


def finish(
    rgb: np.ndarray,
    alpha: np.ndarray | None,
    orientation: int,
    fmt: str,
    bit_depth: int,
    mode: str,
    exif: bytes | None,
    icc: bytes | None,
) -> tuple[np.ndarray, ImageMeta]:
    rgb = orient(rgb, orientation)
    if not rgb.flags.writeable or not rgb.flags.c_contiguous:
        rgb = np.array(rgb, copy=True, order="C")
    if alpha is not None:
        alpha = orient(alpha, orientation)
        if not alpha.flags.writeable or not alpha.flags.c_contiguous:
            alpha = np.array(alpha, copy=True, order="C")
    meta = ImageMeta(
        format=fmt,
        bit_depth=bit_depth,
        mode=mode,
        exif=exif_with_orientation_1(exif),
        icc_profile=bytes(icc) if icc else None,
        alpha=alpha,
        size=(int(rgb.shape[1]), int(rgb.shape[0])),
    )
    return rgb, meta
