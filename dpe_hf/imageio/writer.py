"""`write_image`: an array (and the `ImageMeta` read with it) to JPEG, PNG, WebP or TIFF,
written atomically; every failure is one `ImageWriteError` and leaves no partial file.

JPEGs are encoded by OpenCV (`jpeg.encode_rgb_jpeg`, cheaper, the same bytes), everything else
and any JPEG that OpenCV refuses by Pillow."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

from dpe_hf.errors import ImageWriteError
from dpe_hf.imageio.atomic import TempFileError, atomic_write
from dpe_hf.imageio.checks import exc_text
from dpe_hf.imageio.dtypes import match_dtype, to_8bit
from dpe_hf.imageio.exif import EXIF_PREFIX, exif_with_orientation_1
from dpe_hf.imageio.formats import WRITE_SUFFIXES
from dpe_hf.imageio.jpeg import encode_rgb_jpeg
from dpe_hf.imageio.meta import ImageMeta
from dpe_hf.imageio.optional import import_cv2
from dpe_hf.imageio.png import encode_png16
from dpe_hf.imageio.tiff import encode_tiff16

_ALPHA_FORMATS = ("PNG", "WEBP", "TIFF")
_JPEG_MAX_EXIF = 65533 - len(EXIF_PREFIX)


def _resolve_format(path: Path, format: str | None) -> str:
    if format:
        key = format.lower().lstrip(".")
        fmt = WRITE_SUFFIXES.get("." + key)
        if fmt is None:
            raise ImageWriteError(
                path, f"unsupported output format {format!r} (use jpg, png, webp or tif)"
            )
        return fmt
    fmt = WRITE_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        shown = path.suffix or "(no suffix)"
        raise ImageWriteError(
            path, f"unsupported output format {shown} (use .jpg, .png, .webp or .tif)"
        )
    return fmt


def _write_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        known = {
            errno.ENOSPC: "no space left on device",
            errno.EACCES: "permission denied",
            errno.EPERM: "permission denied",
            errno.EROFS: "read-only file system",
            errno.ENOTDIR: "the parent path is not a folder",
            errno.ENOENT: "the output folder does not exist",
            errno.EISDIR: "the destination is a directory",
            errno.EDQUOT: "disk quota exceeded",
            errno.ENAMETOOLONG: "file name too long",
        }
        if exc.errno in known:
            return known[exc.errno]
    return f"write failed ({type(exc).__name__}: {exc_text(exc)})"


def _temp_file_reason(exc: OSError, parent: Path) -> str:
    if isinstance(exc, PermissionError):
        return f"permission denied (cannot create a file in {parent})"
    if exc.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
        return _write_reason(exc)
    return f"cannot create a file in {parent} ({exc_text(exc.strerror or exc)})"


def write_image(
    path: str | os.PathLike[str],
    image: np.ndarray,
    meta: ImageMeta | None = None,
    *,
    quality: int = 95,
    format: str | None = None,  # noqa: A002 - the brief's name
) -> Path:
    """Write an H x W x 3 (or x 4) uint8/uint16 array atomically; returns the destination Path.

    The format comes from `format` ("jpg", "png", "webp", "tif", ...) or the path's suffix.
    `meta.exif` / `meta.icc_profile` are carried where the format allows; `meta.alpha` (or a
    4th channel) is written for PNG/WebP/TIFF.  16-bit arrays are written as 16-bit PNG/TIFF and
    rounded to 8 bits for JPEG/WebP.  Raises `ImageWriteError`; never leaves a partial file.
    """
    dest = Path(path)
    fmt = _resolve_format(dest, format)
    if not isinstance(image, np.ndarray):
        raise ImageWriteError(dest, f"expected a numpy array, got {type(image).__name__}")
    if image.dtype.kind == "u" and image.dtype.itemsize in (1, 2) and not image.dtype.isnative:
        image = image.astype(image.dtype.newbyteorder("="))
    if image.dtype not in (np.uint8, np.uint16) or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ImageWriteError(
            dest,
            f"cannot write an array of shape {tuple(image.shape)} and dtype {image.dtype} "
            "(expected H x W x 3 or H x W x 4, uint8 or uint16)",
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageWriteError(dest, f"cannot write an empty image {tuple(image.shape)}")
    if not 1 <= int(quality) <= 100:
        raise ImageWriteError(dest, f"quality must be between 1 and 100, got {quality}")

    rgb = image[:, :, :3]
    alpha = image[:, :, 3] if image.shape[2] == 4 else None
    if alpha is None and meta is not None and meta.alpha is not None:
        alpha = _fit_alpha(np.asarray(meta.alpha), rgb.shape[:2])
    if alpha is not None:
        alpha = match_dtype(alpha, rgb.dtype)
    if fmt not in _ALPHA_FORMATS:
        alpha = None
    exif = exif_with_orientation_1(meta.exif) if meta is not None and meta.exif else None
    icc = bytes(meta.icc_profile) if meta is not None and meta.icc_profile else None

    parent = dest.parent
    try:
        if dest.is_dir():
            raise ImageWriteError(dest, "the destination is a directory")
        if parent.exists() and not parent.is_dir():
            raise ImageWriteError(dest, f"the parent path {parent} is not a folder")
        if not parent.exists():
            raise ImageWriteError(dest, f"the output folder {parent} does not exist")
    except OSError as exc:
        raise ImageWriteError(dest, _write_reason(exc)) from None

    try:
        return atomic_write(dest, lambda fh: _encode(fh, fmt, rgb, alpha, exif, icc, int(quality)))
    except TempFileError as exc:
        raise ImageWriteError(dest, _temp_file_reason(exc.__cause__ or exc, parent)) from None
    except ImageWriteError:
        raise
    except MemoryError as exc:
        raise ImageWriteError(dest, "not enough memory to encode the image") from exc
    except Exception as exc:  # KeyboardInterrupt and SystemExit pass through as they are
        raise ImageWriteError(dest, _write_reason(exc)) from exc


def _fit_alpha(alpha: np.ndarray, shape: tuple[int, int]) -> np.ndarray | None:
    if alpha.ndim == 3 and alpha.shape[2] == 1:
        alpha = alpha[:, :, 0]
    if alpha.ndim != 2:
        return None
    if alpha.shape == shape:
        return alpha
    cv2 = import_cv2()
    src = alpha.astype(np.float32) if alpha.dtype.kind == "f" else alpha
    out = cv2.resize(src, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return out.astype(alpha.dtype)


def _encode(
    fh: BinaryIO,
    fmt: str,
    rgb: np.ndarray,
    alpha: np.ndarray | None,
    exif: bytes | None,
    icc: bytes | None,
    quality: int,
) -> None:
    sixteen = rgb.dtype == np.uint16
    if sixteen and fmt == "PNG":
        encode_png16(fh, rgb, alpha, exif, icc)
        return
    if sixteen and fmt == "TIFF":
        encode_tiff16(fh, rgb, alpha, icc)
        return
    rgb8 = to_8bit(rgb)
    full_chroma = quality >= 90  # 4:4:4, else JPEG's usual 4:2:0
    if fmt == "JPEG":
        if exif and len(exif) > _JPEG_MAX_EXIF + len(EXIF_PREFIX):
            exif = None  # does not fit one APP1 segment: drop rather than fail
        encoded = encode_rgb_jpeg(rgb8, quality, full_chroma, exif, icc)
        if encoded is not None:
            fh.write(encoded)
            return
    if alpha is not None:
        arr = np.concatenate([rgb8, to_8bit(alpha)[:, :, None]], axis=2)
        im = Image.fromarray(np.ascontiguousarray(arr), "RGBA")
    else:
        im = Image.fromarray(np.ascontiguousarray(rgb8), "RGB")
    params: dict[str, Any] = {}
    if icc:
        params["icc_profile"] = icc
    if exif:
        params["exif"] = exif
    if fmt == "JPEG":
        params["quality"] = quality
        if full_chroma:
            params["subsampling"] = 0
    elif fmt == "WEBP":
        params["quality"] = quality
    elif fmt == "PNG":
        params["compress_level"] = 6
    elif fmt == "TIFF":
        params["compression"] = "tiff_adobe_deflate"
    im.save(fh, format=fmt, **params)
