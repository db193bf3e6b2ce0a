"""`read_image`: any supported file to an upright H x W x 3 RGB array and its `ImageMeta`.

The format is sniffed from the first bytes (the suffix only tells camera RAW and HEIF). PNGs
are scanned chunk by chunk first, 16-bit PNGs and TIFFs go to their own readers, camera RAW is
developed by rawpy and HEIF decoded by pillow-heif (the extras [raw] and [heif]); plain RGB
JPEGs are decoded by OpenCV (`jpeg.decode_rgb_jpeg`, the same pixels, cheaper) after Pillow has
read their header; everything else is decoded by Pillow.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import stat
import struct
import threading
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
from PIL import Image

from dpe_hf.errors import ImageReadError, ImageTooLargeError
from dpe_hf.imageio.checks import DEFAULT_MAX_PIXELS, check_pixels, corrupt, exc_text
from dpe_hf.imageio.dtypes import from_float, gray_to_rgb
from dpe_hf.imageio.exif import exif_from_pil, exif_orientation, pil_orientation
from dpe_hf.imageio.formats import HEIF_SUFFIXES, RAW_SUFFIXES
from dpe_hf.imageio.jpeg import decode_rgb_jpeg
from dpe_hf.imageio.meta import ImageMeta, finish, icc_colour_space
from dpe_hf.imageio.optional import optional_module
from dpe_hf.imageio.png import PNG_SIGNATURE, PngInfo, read_png16, scan_png
from dpe_hf.imageio.tiff import read_tiff

# ISO base media "ftyp" brands of HEIF still images (HEVC-coded and generic)
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")

_limit_lock = threading.Lock()
_limit_depth = 0
_limit_saved: int | None = None


@contextlib.contextmanager
def _pillow_limit_disabled() -> Iterator[None]:
    """Switch Pillow's own decompression-bomb guard off while we read: we check the pixel count
    ourselves, with our own limit and message.  Reference-counted, so concurrent reads in threads
    restore the original value only when the last one ends."""
    global _limit_depth, _limit_saved
    with _limit_lock:
        if _limit_depth == 0:
            _limit_saved = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
        _limit_depth += 1
    try:
        yield
    finally:
        with _limit_lock:
            _limit_depth -= 1
            if _limit_depth == 0:
                Image.MAX_IMAGE_PIXELS = _limit_saved


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(PNG_SIGNATURE):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head[:2] == b"BM":
        return "BMP"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "HEIF"
    return None


def _open_checked(path: str | Path) -> BinaryIO:
    """Open a file for reading, with one clear reason for every way that can fail."""
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        if os.path.islink(p):
            raise ImageReadError(path, "file not found (broken symbolic link)") from None
        raise ImageReadError(path, "file not found") from None
    except NotADirectoryError:
        raise ImageReadError(
            path, "file not found (a parent in the path is not a folder)"
        ) from None
    except PermissionError:
        raise ImageReadError(path, "permission denied") from None
    except (OSError, ValueError) as exc:
        raise ImageReadError(path, f"cannot access file ({exc_text(exc)})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageReadError(path, "is a directory, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise ImageReadError(path, "not a regular file")
    if st.st_size == 0:
        raise ImageReadError(path, "empty file (0 bytes)")
    try:
        return open(p, "rb")  # noqa: SIM115 - closed by the caller
    except PermissionError:
        raise ImageReadError(
            path, "permission denied (file cannot be opened for reading)"
        ) from None
    except IsADirectoryError:
        raise ImageReadError(path, "is a directory, not an image file") from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot open file ({exc_text(exc)})") from None


def read_image(
    path: str | os.PathLike[str],
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    data: bytes | None = None,
    jpeg_draft_side: int | None = None,
) -> tuple[np.ndarray, ImageMeta]:
    """Read an image as an H x W x 3 RGB array (uint8, or uint16 for 16-bit PNG/TIFF and camera
    RAW), upright. RAW and HEIF files need the [raw] / [heif] extras (see the module docstring).

    The pixel count is checked against `max_pixels` (None or 0: no limit) from the header, before
    anything is decoded.  Raises `ImageTooLargeError` / `ImageReadError`, never a raw PIL error.

    `data`: the file's bytes when they are already in memory (`path` then only names the image
    in messages and tells camera RAW / HEIF by its suffix). `jpeg_draft_side`: a JPEG whose long
    side is over 4 times this is decoded at a reduced DCT scale, its long side kept at least
    twice this (much faster, for callers that downscale anyway).
    """
    if data is not None:
        if not data:
            raise ImageReadError(path, "empty file (0 bytes)")
        f: BinaryIO = io.BytesIO(data)
    else:
        f = _open_checked(path)
    try:
        with f, _pillow_limit_disabled():
            return _read(f, path, max_pixels, jpeg_draft_side)
    except ImageReadError:
        raise
    except MemoryError:
        raise ImageReadError(path, "not enough memory to decode the image") from None
    except Exception as exc:  # anything unexpected still becomes a one-line ImageReadError
        raise corrupt(path, exc_text(exc)) from exc


def _read(f: BinaryIO, path: str | Path, max_pixels: int | None,
          jpeg_draft_side: int | None) -> tuple[np.ndarray, ImageMeta]:
    try:
        head = f.read(16)
        f.seek(0)
    except OSError as exc:
        raise ImageReadError(path, f"cannot read file ({exc_text(exc)})") from None
    if Path(path).suffix.lower() in RAW_SUFFIXES:
        return _read_raw(f, path, max_pixels)
    sniffed = _sniff(head)
    if sniffed == "HEIF" or Path(path).suffix.lower() in HEIF_SUFFIXES:
        optional_module("pillow_heif", "HEIF", "heif", path).register_heif_opener()  # Pillow opens it now
    png = scan_png(f, path, max_pixels) if sniffed == "PNG" else None
    f.seek(0)
    try:
        im = Image.open(f)
    except Image.DecompressionBombError as exc:  # cannot happen with the limit off; be safe
        raise ImageTooLargeError(path, exc_text(exc)) from None
    except (OSError, SyntaxError, ValueError, struct.error, IndexError, TypeError, EOFError) as exc:
        if sniffed == "TIFF":
            return read_tiff(f, path, max_pixels, None)
        if sniffed is not None:
            raise corrupt(path, f"{sniffed} header could not be parsed") from exc
        raise ImageReadError(path, "not a recognised image format") from None
    with im:
        width, height = im.size
        check_pixels(path, width, height, max_pixels)
        if png is not None and png.bit_depth == 16:
            return read_png16(f, path, png)
        if im.format == "TIFF":
            bits = im.tag_v2.get(258, (8,))
            bits = bits if isinstance(bits, tuple) else (bits,)
            sample_format = im.tag_v2.get(339, (1,))
            sample_format = sample_format if isinstance(sample_format, tuple) else (sample_format,)
            if any(int(b) > 8 for b in bits) or any(int(s) != 1 for s in sample_format):
                return read_tiff(f, path, max_pixels, im)
        drafted = False
        if jpeg_draft_side and im.format == "JPEG":
            scale = 2.0 * jpeg_draft_side / max(width, height)
            if scale < 0.5:
                im.draft(None, (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))))
                drafted = True
        decoded = None
        if im.format == "JPEG" and im.mode == "RGB" and not drafted:
            decoded = decode_rgb_jpeg(f, (width, height))
        return _read_pil(im, path, max_pixels, png, decoded)


def _read_pil(
    im: Image.Image, path: str | Path, max_pixels: int | None, png: PngInfo | None,
    decoded: np.ndarray | None = None,
) -> tuple[np.ndarray, ImageMeta]:
    """The pixels and metadata of an opened image; `decoded`: its RGB pixels when they are
    already decoded (plain JPEGs, by OpenCV), Pillow then only supplies the metadata."""
    fmt = im.format or "UNKNOWN"
    if fmt == "MPO":  # multi-picture JPEG (many phones): the first picture is a plain JPEG
        fmt = "JPEG"
    mode = im.mode
    if decoded is None:
        try:
            im.load()
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError(path, exc_text(exc)) from None
        except MemoryError:
            raise
        except Exception as exc:
            raise corrupt(path, exc_text(exc)) from None
        check_pixels(path, im.width, im.height, max_pixels)  # GIF frames may grow the canvas

    icc = im.info.get("icc_profile") or (png.icc if png else None) or None
    exif = exif_from_pil(im)
    if exif is None and png is not None:
        exif = png.exif
    orientation = exif_orientation(exif) if exif else pil_orientation(im)

    alpha: np.ndarray | None = None
    bit_depth = 8
    bands = im.getbands()
    try:
        if decoded is not None:
            rgb = decoded
        elif mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
            arr = np.asarray(im)
            arr = np.clip(arr, 0, 65535).astype(np.uint16) if mode == "I" else arr.astype(np.uint16)
            rgb = gray_to_rgb(arr)
            bit_depth = 16
            mode = "L;16"
        elif mode == "F":
            arr = np.asarray(im, dtype=np.float32)
            rgb = gray_to_rgb(from_float(arr, np.uint16))
            bit_depth = 16
        elif "A" in bands or "a" in bands or "transparency" in im.info:
            rgba = np.asarray(im.convert("RGBA"))
            rgb = np.ascontiguousarray(rgba[:, :, :3])
            alpha = np.ascontiguousarray(rgba[:, :, 3])
        elif mode == "CMYK":
            rgb = np.asarray(_cmyk_to_rgb(im, icc))
        else:
            rgb = np.asarray(im if mode == "RGB" else im.convert("RGB"))
    except ValueError as exc:
        raise ImageReadError(path, f"unsupported colour mode {mode} ({exc_text(exc)})") from None

    # An ICC profile for another colour model (CMYK, GRAY) no longer fits the RGB pixels.
    rgb_source = mode in ("RGB", "RGBA", "RGBX", "RGBa", "P", "PA")
    if icc and not rgb_source and icc_colour_space(icc) != b"RGB ":
        icc = None
    return finish(rgb, alpha, orientation, fmt, bit_depth, mode, exif, icc)


def _read_raw(f: BinaryIO, path: str | Path, max_pixels: int | None) -> tuple[np.ndarray, ImageMeta]:
    """Develop a camera RAW file as its camera would roughly: camera white balance, LibRaw's
    default brightness, sRGB primaries and the sRGB tone curve, 16 bits, upright (LibRaw
    applies the orientation). EXIF is not carried: rawpy does not read it."""
    rawpy = optional_module("rawpy", "camera RAW", "raw", path)
    try:
        with rawpy.imread(f) as raw:
            check_pixels(path, raw.sizes.width, raw.sizes.height, max_pixels)
            rgb = raw.postprocess(output_bps=16, use_camera_wb=True, output_color=rawpy.ColorSpace.sRGB,
                                  gamma=(2.4, 12.92))
    except (rawpy.LibRawError, ValueError) as exc:
        raise corrupt(path, f"camera RAW could not be developed: {exc_text(exc)}") from None
    return finish(np.ascontiguousarray(rgb, np.uint16), None, 1, "RAW", 16, "RGB;16", None, None)


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    if icc and icc_colour_space(icc) == b"CMYK":
        try:
            from PIL import ImageCms

            return ImageCms.profileToProfile(
                im,
                ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                ImageCms.createProfile("sRGB"),
                outputMode="RGB",
            )
        except Exception:
            pass
    return im.convert("RGB")
