"""TIFF files Pillow cannot read faithfully (16-bit, float, premultiplied alpha), read and
written with tifffile."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

from dpe_hf.errors import ImageReadError
from dpe_hf.imageio.checks import check_pixels, corrupt, exc_text
from dpe_hf.imageio.dtypes import from_float, gray_to_rgb
from dpe_hf.imageio.exif import exif_from_pil
from dpe_hf.imageio.meta import ImageMeta, finish, icc_colour_space

_ICC_TIFF_TAG = 34675
_ORIENTATION_TIFF_TAG = 274


def read_tiff(
    f: BinaryIO, path: str | Path, max_pixels: int | None, im: Image.Image | None
) -> tuple[np.ndarray, ImageMeta]:
    import tifffile

    exif = exif_from_pil(im) if im is not None else None
    f.seek(0)
    try:
        tif = tifffile.TiffFile(f)
    except Exception as exc:
        raise corrupt(path, f"TIFF header could not be parsed: {exc_text(exc)}") from None
    with tif:
        if not tif.pages:
            raise corrupt(path, "TIFF file has no image")
        page = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]
        check_pixels(path, page.imagewidth, page.imagelength, max_pixels)
        tags = page.tags
        orientation = int(tags[_ORIENTATION_TIFF_TAG].value) if _ORIENTATION_TIFF_TAG in tags else 1
        icc = bytes(tags[_ICC_TIFF_TAG].value) if _ICC_TIFF_TAG in tags else None
        photometric = int(page.photometric)
        extra = page.extrasamples
        extrasamples = tuple(int(v) for v in np.atleast_1d(extra)) if extra is not None else ()
        try:
            arr = page.asarray()
        except MemoryError:
            raise
        except Exception as exc:
            raise corrupt(path, exc_text(exc)) from None
        axes = page.axes
    # bring to H x W x S
    if axes.startswith("S") and arr.ndim == 3:
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ImageReadError(path, f"unsupported TIFF layout (axes {axes}, shape {arr.shape})")

    if arr.dtype == np.uint8:
        bit_depth = 8
    elif arr.dtype == np.uint16:
        bit_depth = 16
    elif arr.dtype.kind == "f":
        arr, bit_depth = from_float(arr, np.uint16), 16
    else:
        raise ImageReadError(path, f"unsupported TIFF sample format ({arr.dtype})")

    maxval = 255 if bit_depth == 8 else 65535
    alpha = None
    if photometric in (0, 1):  # MINISWHITE / MINISBLACK
        gray = arr[:, :, 0]
        if photometric == 0:
            gray = maxval - gray
        rgb = gray_to_rgb(gray)
        if arr.shape[2] > 1 and extrasamples and extrasamples[0] in (1, 2):
            alpha = arr[:, :, 1]
        mode = "LA" if alpha is not None else "L"
        if icc_colour_space(icc) != b"RGB ":
            icc = None
    elif photometric == 2 and arr.shape[2] >= 3:  # RGB
        rgb = arr[:, :, :3]
        if arr.shape[2] > 3 and extrasamples and extrasamples[0] in (1, 2):
            alpha = arr[:, :, 3]
            if extrasamples[0] == 1:  # associated (premultiplied) alpha -> straight
                a = alpha.astype(np.float64)
                with np.errstate(divide="ignore", invalid="ignore"):
                    un = rgb.astype(np.float64) * maxval / a[:, :, None]
                un = np.where(a[:, :, None] > 0, un, 0)
                rgb = np.clip(np.rint(un), 0, maxval).astype(arr.dtype)
        mode = "RGBA" if alpha is not None else "RGB"
    else:
        raise ImageReadError(path, f"unsupported TIFF colour format (photometric {photometric})")
    if bit_depth == 16:
        mode += ";16"
    return finish(
        np.ascontiguousarray(rgb),
        None if alpha is None else np.ascontiguousarray(alpha),
        orientation,
        "TIFF",
        bit_depth,
        mode,
        exif,
        icc,
    )


def encode_tiff16(
    fh: BinaryIO, rgb: np.ndarray, alpha: np.ndarray | None, icc: bytes | None
) -> None:
    import tifffile

    kwargs: dict[str, Any] = {"photometric": "rgb", "compression": "zlib"}
    if alpha is not None:
        arr = np.concatenate([rgb, alpha[:, :, None]], axis=2)
        kwargs["extrasamples"] = ("unassalpha",)
    else:
        arr = rgb
    if icc:
        kwargs["iccprofile"] = icc
    buf = io.BytesIO()  # tifffile wants a named file object; ours is an os.fdopen() handle
    tifffile.imwrite(buf, np.ascontiguousarray(arr), **kwargs)
    fh.write(buf.getbuffer())
