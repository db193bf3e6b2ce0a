"""PNG: a chunk scanner that checks the size in IHDR before anything is decoded, verifies every
CRC and collects iCCP / eXIf; and the 16-bit PNG reader and writer (OpenCV keeps 16 bits,
Pillow does not)."""

from __future__ import annotations

import contextlib
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from dpe_hf.errors import ImageReadError
from dpe_hf.imageio.checks import check_pixels, corrupt
from dpe_hf.imageio.dtypes import gray_to_rgb
from dpe_hf.imageio.exif import EXIF_PREFIX, exif_orientation, normalise_exif
from dpe_hf.imageio.meta import ImageMeta, finish, icc_colour_space
from dpe_hf.imageio.optional import import_cv2

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class PngInfo:
    width: int
    height: int
    bit_depth: int
    color_type: int
    icc: bytes | None
    exif: bytes | None


def _chunk_name(ctype: bytes) -> str:
    return ctype.decode("latin-1") if ctype.isalpha() else repr(ctype)


def scan_png(f: BinaryIO, path: str | Path, max_pixels: int | None) -> PngInfo:
    """Walk every chunk of a PNG: check the size in IHDR first (before anything is decoded),
    verify every CRC, and collect the ICC profile and EXIF."""
    f.seek(len(PNG_SIGNATURE))
    info: PngInfo | None = None
    icc_raw: bytes | None = None
    exif: bytes | None = None
    while True:
        hdr = f.read(8)
        if len(hdr) < 8:
            raise corrupt(path, "PNG file ends before the IEND chunk")
        length, ctype = struct.unpack(">I4s", hdr)
        name = _chunk_name(ctype)
        if length > 0x7FFFFFFF or not ctype.isalpha():
            raise corrupt(path, f"invalid PNG chunk header ({name})")
        if info is None and ctype != b"IHDR":
            raise corrupt(path, "PNG does not start with an IHDR chunk")
        keep = ctype in (b"IHDR", b"iCCP", b"eXIf") and length <= (64 << 20)
        crc = zlib.crc32(ctype)
        parts: list[bytes] = []
        remaining = length
        while remaining:
            buf = f.read(min(remaining, 1 << 20))
            if not buf:
                raise corrupt(path, f"PNG file ends inside the {name} chunk")
            crc = zlib.crc32(buf, crc)
            if keep:
                parts.append(buf)
            remaining -= len(buf)
        crc_bytes = f.read(4)
        if len(crc_bytes) < 4:
            raise corrupt(path, f"PNG file ends inside the {name} chunk")
        if struct.unpack(">I", crc_bytes)[0] != (crc & 0xFFFFFFFF):
            raise ImageReadError(path, f"corrupt PNG data (bad CRC in the {name} chunk)")
        data = b"".join(parts)
        if ctype == b"IHDR":
            if length != 13:
                raise corrupt(path, "invalid PNG IHDR chunk")
            width, height, depth, ctype_ = struct.unpack(">IIBB", data[:10])
            if width == 0 or height == 0:
                raise corrupt(path, f"PNG declares an empty image ({width}x{height})")
            check_pixels(path, width, height, max_pixels)
            info = PngInfo(width, height, depth, ctype_, None, None)
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
    info.exif = normalise_exif(exif)
    return info


def _chunk(ctype: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + ctype
        + data
        + struct.pack(">I", zlib.crc32(data, zlib.crc32(ctype)) & 0xFFFFFFFF)
    )


def _add_metadata(png: bytes, icc: bytes | None, exif: bytes | None) -> bytes:
    """Insert iCCP / eXIf chunks right after IHDR of an encoded PNG (e.g. from OpenCV)."""
    if not icc and not exif:
        return png
    ihdr_end = len(PNG_SIGNATURE) + 8 + 13 + 4
    if png[: len(PNG_SIGNATURE)] != PNG_SIGNATURE or png[12:16] != b"IHDR":
        return png
    extra = b""
    if icc:
        extra += _chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc))
    if exif:
        raw = exif[len(EXIF_PREFIX) :] if exif.startswith(EXIF_PREFIX) else exif
        extra += _chunk(b"eXIf", raw)
    return png[:ihdr_end] + extra + png[ihdr_end:]


def read_png16(f: BinaryIO, path: str | Path, png: PngInfo) -> tuple[np.ndarray, ImageMeta]:
    cv2 = import_cv2()
    f.seek(0)
    data = np.frombuffer(f.read(), dtype=np.uint8)
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)  # UNCHANGED: 16 bits kept, EXIF ignored
    if arr is None:
        raise corrupt(path, "OpenCV could not decode the 16-bit PNG")
    if arr.dtype != np.uint16:
        arr = arr.astype(np.uint16) * 257 if arr.dtype == np.uint8 else arr.astype(np.uint16)
    alpha = None
    if arr.ndim == 2:
        rgb, mode = gray_to_rgb(arr), "L;16"
    elif arr.shape[2] == 1:
        rgb, mode = gray_to_rgb(arr[:, :, 0]), "L;16"
    elif arr.shape[2] == 2:
        rgb, alpha, mode = gray_to_rgb(arr[:, :, 0]), arr[:, :, 1], "LA;16"
    elif arr.shape[2] == 3:
        rgb, mode = arr[:, :, ::-1], "RGB;16"
    else:
        rgb, alpha, mode = arr[:, :, 2::-1], arr[:, :, 3], "RGBA;16"
    if png.color_type == 4:
        mode = "LA;16"
    elif png.color_type == 0:
        mode = "L;16"
    icc = png.icc
    if mode.startswith("L") and icc_colour_space(icc) != b"RGB ":
        icc = None
    exif = png.exif
    return finish(
        np.ascontiguousarray(rgb),
        None if alpha is None else np.ascontiguousarray(alpha),
        exif_orientation(exif),
        "PNG",
        16,
        mode,
        exif,
        icc,
    )


def encode_png16(
    fh: BinaryIO, rgb: np.ndarray, alpha: np.ndarray | None, exif: bytes | None, icc: bytes | None
) -> None:
    cv2 = import_cv2()
    if alpha is not None:
        bgr = np.concatenate([rgb[:, :, ::-1], alpha[:, :, None]], axis=2)
    else:
        bgr = rgb[:, :, ::-1]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(bgr), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise OSError("OpenCV could not encode the 16-bit PNG")
    fh.write(_add_metadata(buf.tobytes(), icc, exif))
