"""Image reading and writing for dpe_hf, without torch (the CLI's start-up time matters).

`read_image` returns an H x W x 3 RGB array (uint8 for 8-bit sources, uint16 for 16-bit ones)
with the EXIF orientation applied, and an `ImageMeta` that carries what is needed to write the
result back faithfully (EXIF with orientation 1, ICC profile, alpha).  Every failure is an
`ImageReadError` (or `ImageTooLargeError`) whose message is one line, "PATH: reason".

Camera RAW files (`RAW_SUFFIXES`) are developed with rawpy to 16-bit sRGB, and HEIF/HEIC files
(`HEIF_SUFFIXES`) decoded with pillow-heif: the optional extras [raw] and [heif]. Without them,
such a file is one `ImageReadError` that names the extra to install.

`write_image` writes atomically (temporary file in the same folder, then `os.replace`) and raises
`ImageWriteError` on any failure, leaving neither a partial destination nor a temporary file.

OpenCV and tifffile are imported lazily, only for 16-bit PNG and TIFF work.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import struct
import tempfile
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np
from PIL import Image

from dpe_hf.errors import ImageReadError, ImageTooLargeError, ImageWriteError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "HEIF_SUFFIXES",
    "RAW_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "WRITE_SUFFIXES",
    "ImageMeta",
    "read_image",
    "write_image",
    "to_float32",
    "from_float",
]

DEFAULT_MAX_PIXELS = 100_000_000

#: Camera RAW files: developed by rawpy (the [raw] extra). Told by suffix: most are TIFF inside.
RAW_SUFFIXES: tuple[str, ...] = (".dng", ".cr2", ".nef", ".arw", ".raf", ".orf", ".rw2")
#: HEIF / HEIC files: decoded by pillow-heif (the [heif] extra).
HEIF_SUFFIXES: tuple[str, ...] = (".heic", ".heif")

#: Suffixes (lower case, with the dot) that `read_image` is meant for.
SUPPORTED_SUFFIXES: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".jpe",
    ".jfif",
    ".png",
    ".webp",
    ".tif",
    ".tiff",
    ".bmp",
    ".gif",
    *RAW_SUFFIXES,
    *HEIF_SUFFIXES,
)

#: Suffixes `write_image` can write, and the format each one means.
WRITE_SUFFIXES: dict[str, str] = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jpe": "JPEG",
    ".jfif": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

_ALPHA_FORMATS = ("PNG", "WEBP", "TIFF")
# ISO base media "ftyp" brands of HEIF still images (HEVC-coded and generic)
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")
_EXIF_PREFIX = b"Exif\x00\x00"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ORIENTATION_TAG = 0x0112
_ICC_TIFF_TAG = 34675
_JPEG_MAX_EXIF = 65533 - len(_EXIF_PREFIX)
# TIFF tags that describe the pixel layout of a TIFF file: they must not travel as "EXIF".
_TIFF_STRUCTURE_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 284, 290, 291,
     292, 293, 317, 320, 322, 323, 324, 325, 338, 339, 340, 341, 347, 530, 531, 532, 34675}
)


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


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _exc_text(exc: BaseException) -> str:
    msg = _one_line(exc)
    return msg if msg else type(exc).__name__


def _mp(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} MP"


def _check_pixels(path: str | Path, width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels is None or max_pixels <= 0:
        return
    pixels = int(width) * int(height)
    if pixels > max_pixels:
        raise ImageTooLargeError(
            path,
            f"image is {width}x{height} = {_mp(pixels)}, over the limit of {_mp(max_pixels)} "
            "(--max-pixels)",
        )


_limit_lock = threading.Lock()
_umask_lock = threading.Lock()
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
    if head.startswith(_PNG_SIGNATURE):
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


def _optional(module: str, kind: str, extra: str, path: str | Path) -> Any:
    """Import the package of an optional extra, or say in one line how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImageReadError(path, f'{kind} needs the optional extra: pip install "dpe_hf[{extra}]"') from None


def _corrupt(path: str | Path, detail: str) -> ImageReadError:
    return ImageReadError(path, f"truncated or corrupt image data ({_one_line(detail)})")


# --------------------------------------------------------------------------------------------
# EXIF: read / reset the orientation in place, so everything else survives byte for byte
# --------------------------------------------------------------------------------------------


def _exif_orientation_entry(exif: bytes) -> tuple[int, int | None, str] | None:
    """Parse IFD0 of raw EXIF (with or without the "Exif\\0\\0" prefix).

    Returns (orientation, byte offset of its value or None, byte order) or None when the bytes
    are not a TIFF structure.  Orientation is 1 when the tag is absent."""
    base = len(_EXIF_PREFIX) if exif.startswith(_EXIF_PREFIX) else 0
    data = memoryview(exif)[base:]
    if len(data) < 8 or bytes(data[:4]) not in (b"II*\x00", b"MM\x00*"):
        return None
    order = "<" if bytes(data[:2]) == b"II" else ">"
    (ifd0,) = struct.unpack_from(order + "I", data, 4)
    if ifd0 + 2 > len(data):
        return None
    (count,) = struct.unpack_from(order + "H", data, ifd0)
    for i in range(count):
        off = ifd0 + 2 + 12 * i
        if off + 12 > len(data):
            return None
        tag, typ, n = struct.unpack_from(order + "HHI", data, off)
        if tag == _ORIENTATION_TAG:
            if typ != 3 or n != 1:  # must be one SHORT stored inline
                return None
            (value,) = struct.unpack_from(order + "H", data, off + 8)
            return value, base + off + 8, order
    return 1, None, order


def _normalise_exif(exif: bytes | None) -> bytes | None:
    if not exif:
        return None
    exif = bytes(exif)
    return exif if exif.startswith(_EXIF_PREFIX) else _EXIF_PREFIX + exif


def _exif_orientation(exif: bytes | None) -> int:
    if not exif:
        return 1
    entry = _exif_orientation_entry(exif)
    if entry is None:
        try:
            ex = Image.Exif()
            ex.load(exif)
            return int(ex.get(_ORIENTATION_TAG, 1))
        except Exception:
            return 1
    return entry[0]


def _exif_with_orientation_1(exif: bytes | None) -> bytes | None:
    """EXIF bytes (prefixed) with the Orientation tag set to 1 if present; None if empty."""
    exif = _normalise_exif(exif)
    if exif is None:
        return None
    entry = _exif_orientation_entry(exif)
    if entry is not None:
        value, offset, order = entry
        if offset is None or value == 1:
            return exif
        buf = bytearray(exif)
        struct.pack_into(order + "H", buf, offset, 1)
        return bytes(buf)
    try:  # unusual layout: let Pillow re-serialise it
        ex = Image.Exif()
        ex.load(exif)
        if _ORIENTATION_TAG in ex:
            ex[_ORIENTATION_TAG] = 1
        return _normalise_exif(ex.tobytes())
    except Exception:
        return None


def _exif_from_pil(im: Image.Image) -> bytes | None:
    raw = im.info.get("exif")
    if isinstance(raw, (bytes, bytearray)) and raw:
        return _normalise_exif(bytes(raw))
    try:
        ex = im.getexif()
    except Exception:
        return None
    if not ex:
        return None
    if im.format == "TIFF":  # IFD0 of a TIFF holds the layout tags too: keep only metadata
        for tag in list(ex.keys()):
            if tag in _TIFF_STRUCTURE_TAGS:
                del ex[tag]
        if not ex:
            return None
    try:
        return _normalise_exif(ex.tobytes())
    except Exception:
        return None


# --------------------------------------------------------------------------------------------
# orientation on arrays (same result as PIL.ImageOps.exif_transpose)
# --------------------------------------------------------------------------------------------


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    if orientation == 2:
        out = arr[:, ::-1]
    elif orientation == 3:
        out = arr[::-1, ::-1]
    elif orientation == 4:
        out = arr[::-1]
    elif orientation == 5:
        out = arr.swapaxes(0, 1)
    elif orientation == 6:
        out = np.rot90(arr, -1)
    elif orientation == 7:
        out = arr[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        out = np.rot90(arr, 1)
    else:
        return arr
    return np.ascontiguousarray(out)


# --------------------------------------------------------------------------------------------
# PNG chunk scanning: IHDR before decoding, CRCs, iCCP and eXIf
# --------------------------------------------------------------------------------------------


@dataclass
class _PngInfo:
    width: int
    height: int
    bit_depth: int
    color_type: int
    icc: bytes | None
    exif: bytes | None


def _png_chunk_name(ctype: bytes) -> str:
    return ctype.decode("latin-1") if ctype.isalpha() else repr(ctype)


def _scan_png(f: BinaryIO, path: str | Path, max_pixels: int | None) -> _PngInfo:
    """Walk every chunk of a PNG: check the size in IHDR first (before anything is decoded),
    verify every CRC, and collect the ICC profile and EXIF."""
    f.seek(len(_PNG_SIGNATURE))
    info: _PngInfo | None = None
    icc_raw: bytes | None = None
    exif: bytes | None = None
    while True:
        hdr = f.read(8)
        if len(hdr) < 8:
            raise _corrupt(path, "PNG file ends before the IEND chunk")
        length, ctype = struct.unpack(">I4s", hdr)
        name = _png_chunk_name(ctype)
        if length > 0x7FFFFFFF or not ctype.isalpha():
            raise _corrupt(path, f"invalid PNG chunk header ({name})")
        if info is None and ctype != b"IHDR":
            raise _corrupt(path, "PNG does not start with an IHDR chunk")
        keep = ctype in (b"IHDR", b"iCCP", b"eXIf") and length <= (64 << 20)
        crc = zlib.crc32(ctype)
        parts: list[bytes] = []
        remaining = length
        while remaining:
            buf = f.read(min(remaining, 1 << 20))
            if not buf:
                raise _corrupt(path, f"PNG file ends inside the {name} chunk")
            crc = zlib.crc32(buf, crc)
            if keep:
                parts.append(buf)
            remaining -= len(buf)
        crc_bytes = f.read(4)
        if len(crc_bytes) < 4:
            raise _corrupt(path, f"PNG file ends inside the {name} chunk")
        if struct.unpack(">I", crc_bytes)[0] != (crc & 0xFFFFFFFF):
            raise ImageReadError(path, f"corrupt PNG data (bad CRC in the {name} chunk)")
        data = b"".join(parts)
        if ctype == b"IHDR":
            if length != 13:
                raise _corrupt(path, "invalid PNG IHDR chunk")
            width, height, depth, ctype_ = struct.unpack(">IIBB", data[:10])
            if width == 0 or height == 0:
                raise _corrupt(path, f"PNG declares an empty image ({width}x{height})")
            _check_pixels(path, width, height, max_pixels)
            info = _PngInfo(width, height, depth, ctype_, None, None)
        elif ctype == b"iCCP" and keep and icc_raw is None:
            icc_raw = data
        elif ctype == b"eXIf" and keep and exif is None:
            exif = data
        elif ctype == b"IEND":
            break
    assert info is not None
    if icc_raw:
        nul = icc_raw.find(b"\x00")
        if 0 < nul < 80 and len(icc_raw) > nul + 2:
            with contextlib.suppress(zlib.error):
                info.icc = zlib.decompress(icc_raw[nul + 2 :])
    info.exif = _normalise_exif(exif)
    return info


def _png_chunk(ctype: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + ctype
        + data
        + struct.pack(">I", zlib.crc32(data, zlib.crc32(ctype)) & 0xFFFFFFFF)
    )


def _png_add_metadata(png: bytes, icc: bytes | None, exif: bytes | None) -> bytes:
    """Insert iCCP / eXIf chunks right after IHDR of an encoded PNG (e.g. from OpenCV)."""
    if not icc and not exif:
        return png
    ihdr_end = len(_PNG_SIGNATURE) + 8 + 13 + 4
    if png[: len(_PNG_SIGNATURE)] != _PNG_SIGNATURE or png[12:16] != b"IHDR":
        return png
    extra = b""
    if icc:
        extra += _png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc))
    if exif:
        raw = exif[len(_EXIF_PREFIX) :] if exif.startswith(_EXIF_PREFIX) else exif
        extra += _png_chunk(b"eXIf", raw)
    return png[:ihdr_end] + extra + png[ihdr_end:]


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def _icc_colour_space(icc: bytes | None) -> bytes | None:
    return icc[16:20] if icc and len(icc) >= 20 else None


def _gray_to_rgb(arr: np.ndarray) -> np.ndarray:
    return np.repeat(arr[:, :, None], 3, axis=2)


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
        raise ImageReadError(path, f"cannot access file ({_exc_text(exc)})") from None
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
        raise ImageReadError(path, f"cannot open file ({_exc_text(exc)})") from None


def read_image(
    path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, ImageMeta]:
    """Read an image as an H x W x 3 RGB array (uint8, or uint16 for 16-bit PNG/TIFF and camera
    RAW), upright. RAW and HEIF files need the [raw] / [heif] extras (see the module docstring).

    The pixel count is checked against `max_pixels` (None or 0: no limit) from the header, before
    anything is decoded.  Raises `ImageTooLargeError` / `ImageReadError`, never a raw PIL error.
    """
    f = _open_checked(path)
    try:
        with f, _pillow_limit_disabled():
            return _read(f, path, max_pixels)
    except ImageReadError:
        raise
    except MemoryError:
        raise ImageReadError(path, "not enough memory to decode the image") from None
    except Exception as exc:  # anything unexpected still becomes a one-line ImageReadError
        raise _corrupt(path, _exc_text(exc)) from exc


def _read(f: BinaryIO, path: str | Path, max_pixels: int | None) -> tuple[np.ndarray, ImageMeta]:
    try:
        head = f.read(16)
        f.seek(0)
    except OSError as exc:
        raise ImageReadError(path, f"cannot read file ({_exc_text(exc)})") from None
    if Path(path).suffix.lower() in RAW_SUFFIXES:
        return _read_raw(f, path, max_pixels)
    sniffed = _sniff(head)
    if sniffed == "HEIF" or Path(path).suffix.lower() in HEIF_SUFFIXES:
        _optional("pillow_heif", "HEIF", "heif", path).register_heif_opener()  # Pillow opens it now
    png = _scan_png(f, path, max_pixels) if sniffed == "PNG" else None
    f.seek(0)
    try:
        im = Image.open(f)
    except Image.DecompressionBombError as exc:  # cannot happen with the limit off; be safe
        raise ImageTooLargeError(path, _exc_text(exc)) from None
    except (OSError, SyntaxError, ValueError, struct.error, IndexError, TypeError, EOFError) as exc:
        if sniffed == "TIFF":
            return _read_tiff(f, path, max_pixels, None)
        if sniffed is not None:
            raise _corrupt(path, f"{sniffed} header could not be parsed") from exc
        raise ImageReadError(path, "not a recognised image format") from None
    with im:
        width, height = im.size
        _check_pixels(path, width, height, max_pixels)
        if png is not None and png.bit_depth == 16:
            return _read_png16(f, path, png)
        if im.format == "TIFF":
            bits = im.tag_v2.get(258, (8,))
            bits = bits if isinstance(bits, tuple) else (bits,)
            sample_format = im.tag_v2.get(339, (1,))
            sample_format = sample_format if isinstance(sample_format, tuple) else (sample_format,)
            if any(int(b) > 8 for b in bits) or any(int(s) != 1 for s in sample_format):
                return _read_tiff(f, path, max_pixels, im)
        return _read_pil(im, path, max_pixels, png)


def _read_pil(
    im: Image.Image, path: str | Path, max_pixels: int | None, png: _PngInfo | None
) -> tuple[np.ndarray, ImageMeta]:
    fmt = im.format or "UNKNOWN"
    if fmt == "MPO":  # multi-picture JPEG (many phones): the first picture is a plain JPEG
        fmt = "JPEG"
    mode = im.mode
    try:
        im.load()
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(path, _exc_text(exc)) from None
    except MemoryError:
        raise
    except Exception as exc:
        raise _corrupt(path, _exc_text(exc)) from None
    _check_pixels(path, im.width, im.height, max_pixels)  # GIF frames may grow the canvas

    icc = im.info.get("icc_profile") or (png.icc if png else None) or None
    exif = _exif_from_pil(im)
    if exif is None and png is not None:
        exif = png.exif
    orientation = _exif_orientation(exif) if exif else _pil_orientation(im)

    alpha: np.ndarray | None = None
    bit_depth = 8
    bands = im.getbands()
    try:
        if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
            arr = np.asarray(im)
            arr = np.clip(arr, 0, 65535).astype(np.uint16) if mode == "I" else arr.astype(np.uint16)
            rgb = _gray_to_rgb(arr)
            bit_depth = 16
            mode = "L;16"
        elif mode == "F":
            arr = np.asarray(im, dtype=np.float32)
            rgb = _gray_to_rgb(from_float(arr, np.uint16))
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
        raise ImageReadError(path, f"unsupported colour mode {mode} ({_exc_text(exc)})") from None

    # An ICC profile for another colour model (CMYK, GRAY) no longer fits the RGB pixels.
    rgb_source = mode in ("RGB", "RGBA", "RGBX", "RGBa", "P", "PA")
    if icc and not rgb_source and _icc_colour_space(icc) != b"RGB ":
        icc = None
    return _finish(rgb, alpha, orientation, fmt, bit_depth, mode, exif, icc)


def _read_raw(f: BinaryIO, path: str | Path, max_pixels: int | None) -> tuple[np.ndarray, ImageMeta]:
    """Develop a camera RAW file as its camera would roughly: camera white balance, LibRaw's
    default brightness, sRGB primaries and the sRGB tone curve, 16 bits, upright (LibRaw
    applies the orientation). EXIF is not carried: rawpy does not read it."""
    rawpy = _optional("rawpy", "camera RAW", "raw", path)
    try:
        with rawpy.imread(f) as raw:
            _check_pixels(path, raw.sizes.width, raw.sizes.height, max_pixels)
            rgb = raw.postprocess(output_bps=16, use_camera_wb=True, output_color=rawpy.ColorSpace.sRGB,
                                  gamma=(2.4, 12.92))
    except (rawpy.LibRawError, ValueError) as exc:
        raise _corrupt(path, f"camera RAW could not be developed: {_exc_text(exc)}") from None
    return _finish(np.ascontiguousarray(rgb, np.uint16), None, 1, "RAW", 16, "RGB;16", None, None)


def _pil_orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:
        return 1


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    if icc and _icc_colour_space(icc) == b"CMYK":
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


def _finish(
    rgb: np.ndarray,
    alpha: np.ndarray | None,
    orientation: int,
    fmt: str,
    bit_depth: int,
    mode: str,
    exif: bytes | None,
    icc: bytes | None,
) -> tuple[np.ndarray, ImageMeta]:
    rgb = _orient(rgb, orientation)
    if not rgb.flags.writeable or not rgb.flags.c_contiguous:
        rgb = np.array(rgb, copy=True, order="C")
    if alpha is not None:
        alpha = _orient(alpha, orientation)
        if not alpha.flags.writeable or not alpha.flags.c_contiguous:
            alpha = np.array(alpha, copy=True, order="C")
    meta = ImageMeta(
        format=fmt,
        bit_depth=bit_depth,
        mode=mode,
        exif=_exif_with_orientation_1(exif),
        icc_profile=bytes(icc) if icc else None,
        alpha=alpha,
        size=(int(rgb.shape[1]), int(rgb.shape[0])),
    )
    return rgb, meta


def _import_cv2() -> Any:
    # We check the pixel count ourselves; keep OpenCV's own (lower, 2**30) cap out of the way.
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(1 << 40))
    import cv2

    return cv2


def _read_png16(f: BinaryIO, path: str | Path, png: _PngInfo) -> tuple[np.ndarray, ImageMeta]:
    cv2 = _import_cv2()
    f.seek(0)
    data = np.frombuffer(f.read(), dtype=np.uint8)
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)  # UNCHANGED: 16 bits kept, EXIF ignored
    if arr is None:
        raise _corrupt(path, "OpenCV could not decode the 16-bit PNG")
    if arr.dtype != np.uint16:
        arr = arr.astype(np.uint16) * 257 if arr.dtype == np.uint8 else arr.astype(np.uint16)
    alpha = None
    if arr.ndim == 2:
        rgb, mode = _gray_to_rgb(arr), "L;16"
    elif arr.shape[2] == 1:
        rgb, mode = _gray_to_rgb(arr[:, :, 0]), "L;16"
    elif arr.shape[2] == 2:
        rgb, alpha, mode = _gray_to_rgb(arr[:, :, 0]), arr[:, :, 1], "LA;16"
    elif arr.shape[2] == 3:
        rgb, mode = arr[:, :, ::-1], "RGB;16"
    else:
        rgb, alpha, mode = arr[:, :, 2::-1], arr[:, :, 3], "RGBA;16"
    if png.color_type == 4:
        mode = "LA;16"
    elif png.color_type == 0:
        mode = "L;16"
    icc = png.icc
    if mode.startswith("L") and _icc_colour_space(icc) != b"RGB ":
        icc = None
    exif = png.exif
    return _finish(
        np.ascontiguousarray(rgb),
        None if alpha is None else np.ascontiguousarray(alpha),
        _exif_orientation(exif),
        "PNG",
        16,
        mode,
        exif,
        icc,
    )


def _read_tiff(
    f: BinaryIO, path: str | Path, max_pixels: int | None, im: Image.Image | None
) -> tuple[np.ndarray, ImageMeta]:
    import tifffile

    exif = _exif_from_pil(im) if im is not None else None
    f.seek(0)
    try:
        tif = tifffile.TiffFile(f)
    except Exception as exc:
        raise _corrupt(path, f"TIFF header could not be parsed: {_exc_text(exc)}") from None
    with tif:
        if not tif.pages:
            raise _corrupt(path, "TIFF file has no image")
        page = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]
        _check_pixels(path, page.imagewidth, page.imagelength, max_pixels)
        tags = page.tags
        orientation = int(tags[274].value) if 274 in tags else 1
        icc = bytes(tags[_ICC_TIFF_TAG].value) if _ICC_TIFF_TAG in tags else None
        photometric = int(page.photometric)
        extra = page.extrasamples
        extrasamples = tuple(int(v) for v in np.atleast_1d(extra)) if extra is not None else ()
        try:
            arr = page.asarray()
        except MemoryError:
            raise
        except Exception as exc:
            raise _corrupt(path, _exc_text(exc)) from None
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
        rgb = _gray_to_rgb(gray)
        if arr.shape[2] > 1 and extrasamples and extrasamples[0] in (1, 2):
            alpha = arr[:, :, 1]
        mode = "LA" if alpha is not None else "L"
        if _icc_colour_space(icc) != b"RGB ":
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
    return _finish(
        np.ascontiguousarray(rgb),
        None if alpha is None else np.ascontiguousarray(alpha),
        orientation,
        "TIFF",
        bit_depth,
        mode,
        exif,
        icc,
    )


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def _to_8bit(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    # round(v / 257) exactly (257 is odd, so there are no ties)
    return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _match_dtype(alpha: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if alpha.dtype == dtype:
        return alpha
    if dtype == np.uint16 and alpha.dtype == np.uint8:
        return alpha.astype(np.uint16) * 257
    if dtype == np.uint8 and alpha.dtype == np.uint16:
        return _to_8bit(alpha)
    if alpha.dtype.kind == "f":
        return from_float(alpha, dtype)
    return np.clip(alpha, 0, np.iinfo(dtype).max).astype(dtype)


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


def _file_mode_for(dest: Path) -> int:
    with contextlib.suppress(OSError):
        return stat.S_IMODE(os.stat(dest).st_mode)
    umask = None
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    umask = int(line.split()[1], 8)
                    break
    if umask is None:
        with _umask_lock:
            umask = os.umask(0o022)
            os.umask(umask)
    return 0o666 & ~umask


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
    return f"write failed ({type(exc).__name__}: {_exc_text(exc)})"


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
        alpha = _match_dtype(alpha, rgb.dtype)
    if fmt not in _ALPHA_FORMATS:
        alpha = None
    exif = _exif_with_orientation_1(meta.exif) if meta is not None and meta.exif else None
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

    mode = _file_mode_for(dest)
    stem = dest.name[:100]
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{stem}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        if isinstance(exc, PermissionError):
            reason = f"permission denied (cannot create a file in {parent})"
        elif exc.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
            reason = _write_reason(exc)
        else:
            reason = f"cannot create a file in {parent} ({_exc_text(exc.strerror or exc)})"
        raise ImageWriteError(dest, reason) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            _encode(fh, fmt, rgb, alpha, exif, icc, int(quality))
            fh.flush()
            os.fsync(fh.fileno())
        if hasattr(os, "chmod"):
            with contextlib.suppress(OSError):
                os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, ImageWriteError):
            raise
        if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: clean up, re-raise
            raise
        if isinstance(exc, MemoryError):
            raise ImageWriteError(dest, "not enough memory to encode the image") from exc
        raise ImageWriteError(dest, _write_reason(exc)) from exc
    return dest


def _fit_alpha(alpha: np.ndarray, shape: tuple[int, int]) -> np.ndarray | None:
    if alpha.ndim == 3 and alpha.shape[2] == 1:
        alpha = alpha[:, :, 0]
    if alpha.ndim != 2:
        return None
    if alpha.shape == shape:
        return alpha
    cv2 = _import_cv2()
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
        _encode_png16(fh, rgb, alpha, exif, icc)
        return
    if sixteen and fmt == "TIFF":
        _encode_tiff16(fh, rgb, alpha, icc)
        return
    rgb8 = _to_8bit(rgb)
    if alpha is not None:
        arr = np.concatenate([rgb8, _to_8bit(alpha)[:, :, None]], axis=2)
        im = Image.fromarray(np.ascontiguousarray(arr), "RGBA")
    else:
        im = Image.fromarray(np.ascontiguousarray(rgb8), "RGB")
    params: dict[str, Any] = {}
    if icc:
        params["icc_profile"] = icc
    if exif:
        params["exif"] = exif
    if fmt == "JPEG":
        if exif and len(exif) > _JPEG_MAX_EXIF + len(_EXIF_PREFIX):
            params.pop("exif")  # does not fit one APP1 segment: drop rather than fail
        params["quality"] = quality
        if quality >= 90:
            params["subsampling"] = 0  # 4:4:4
    elif fmt == "WEBP":
        params["quality"] = quality
    elif fmt == "PNG":
        params["compress_level"] = 6
    elif fmt == "TIFF":
        params["compression"] = "tiff_adobe_deflate"
    im.save(fh, format=fmt, **params)


def _encode_png16(
    fh: BinaryIO, rgb: np.ndarray, alpha: np.ndarray | None, exif: bytes | None, icc: bytes | None
) -> None:
    cv2 = _import_cv2()
    if alpha is not None:
        bgr = np.concatenate([rgb[:, :, ::-1], alpha[:, :, None]], axis=2)
    else:
        bgr = rgb[:, :, ::-1]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(bgr), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise OSError("OpenCV could not encode the 16-bit PNG")
    fh.write(_png_add_metadata(buf.tobytes(), icc, exif))


def _encode_tiff16(
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


# --------------------------------------------------------------------------------------------
# dtype conversions
# --------------------------------------------------------------------------------------------


def to_float32(arr: np.ndarray) -> np.ndarray:
    """uint8 -> /255, uint16 -> /65535, as float32 in [0, 1]; float input is cast unchanged."""
    arr = np.asarray(arr)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / np.float32(65535.0)
    if arr.dtype.kind == "f":
        return arr.astype(np.float32, copy=False)
    raise TypeError(f"to_float32 expects uint8, uint16 or float, got {arr.dtype}")


def from_float(arr: np.ndarray, dtype: Any = np.uint8) -> np.ndarray:
    """Float in [0, 1] -> uint8 (x255) or uint16 (x65535): NaN -> 0, clipped to [0, 1], then
    rounded half to even (np.rint)."""
    dt = np.dtype(dtype)
    if dt not in (np.uint8, np.uint16):
        raise TypeError(f"from_float supports uint8 and uint16, got {dt}")
    scale = 255.0 if dt == np.uint8 else 65535.0
    x = np.nan_to_num(np.asarray(arr, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    x = np.clip(x, 0.0, 1.0) * np.float32(scale)
    return np.rint(x).astype(dt)

