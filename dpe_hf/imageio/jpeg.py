"""JPEG pixels through OpenCV, the metadata segments written by hand.

Pillow and OpenCV both wrap libjpeg-turbo with the same settings (ISLOW DCT, fancy upsampling,
`jpeg_set_quality(q, baseline)`, standard Huffman tables), so they give the same pixels and even
the same bytes; OpenCV is cheaper at both ends of a 12 MP photo. Decoding, Pillow stores RGB as 4
bytes a pixel and packs it again for numpy (about 45 ms); encoding, OpenCV skips Pillow's copies.
Pillow still parses the header (size, EXIF, ICC, every error message) and decodes everything
outside the plain case: grey, CMYK, reduced-scale drafts, multi-picture files, and anything OpenCV
refuses.
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO

import numpy as np

from dpe_hf.imageio.optional import import_cv2

_SOI = b"\xff\xd8"
_EOI = b"\xff\xd9"
_APP0, _APP1, _APP2, _SOS = 0xE0, 0xE1, 0xE2, 0xDA
_BASELINE_OR_PROGRESSIVE = (0xC0, 0xC1, 0xC2)  # SOF0 baseline, SOF1 extended, SOF2 progressive
_MAX_SEGMENT_DATA = 65533  # a segment's 16-bit length counts itself (2 bytes)
ICC_CHUNK = _MAX_SEGMENT_DATA - 14  # 65519 bytes after b"ICC_PROFILE\0", sequence and count
_ICC_SIGNATURE = b"ICC_PROFILE\x00"


def _frame_marker(data: bytes) -> int | None:
    """The SOFn marker of a JPEG (0xC0 ...), found by walking the segments before the scan;
    None when the layout is not the plain one (the Pillow path then decides)."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # DHT, JPG, DAC are not frames
            return marker
        if marker == _SOS:
            return None
        (length,) = struct.unpack_from(">H", data, pos + 2)
        pos += 2 + length
    return None


def decode_rgb_jpeg(f: BinaryIO, size: tuple[int, int]) -> np.ndarray | None:
    """Decode a baseline or progressive 3-component JPEG of `size` (width, height, from Pillow's
    header parse) to H x W x 3 RGB with OpenCV, without applying its EXIF orientation (the caller
    does); None to leave the file to Pillow.

    A file that does not end with EOI is truncated (or carries a trailer): Pillow's path keeps
    deciding those, with its own error message. Damaged data inside a complete scan is only a
    libjpeg warning for both libraries, which fill it in the same way; OpenCV lets libjpeg print
    that warning on stderr where Pillow stays silent.
    """
    f.seek(0)
    data = f.read()
    if not data.endswith(_EOI) or _frame_marker(data) not in _BASELINE_OR_PROGRESSIVE:
        return None
    cv2 = import_cv2()
    buf = np.frombuffer(data, np.uint8)
    rgb_flag = getattr(cv2, "IMREAD_COLOR_RGB", None)  # OpenCV >= 4.10 decodes straight to RGB
    flags = (rgb_flag or cv2.IMREAD_COLOR) | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        arr = cv2.imdecode(buf, flags)
    except cv2.error:
        return None
    if arr is None or arr.shape != (size[1], size[0], 3):
        return None
    return arr if rgb_flag else cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)


def encode_rgb_jpeg(rgb: np.ndarray, quality: int, full_chroma: bool, exif: bytes | None,
                    icc: bytes | None) -> bytes | None:
    """An 8-bit H x W x 3 RGB array as a baseline JPEG (4:4:4 when `full_chroma`, else 4:2:0) with
    its EXIF and ICC segments: the bytes Pillow writes for the same settings. None when OpenCV
    cannot encode it or the profile cannot be stored (the Pillow path then decides)."""
    segments = metadata_segments(exif, icc)
    if segments is None:
        return None
    cv2 = import_cv2()
    sampling = cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444 if full_chroma else cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420
    params: list[Any] = [cv2.IMWRITE_JPEG_QUALITY, int(quality), cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sampling]
    try:
        bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
        ok, encoded = cv2.imencode(".jpg", bgr, params)
    except cv2.error:
        return None
    return insert_after_jfif(encoded.tobytes(), segments) if ok else None


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def metadata_segments(exif: bytes | None, icc: bytes | None) -> bytes | None:
    """APP1 EXIF (`exif` starts with b"Exif\\0\\0") then the APP2 ICC chunks, in Pillow's order and
    layout; None when the ICC profile needs more than the 255 chunks a JPEG can number."""
    out = [_segment(_APP1, exif)] if exif else []
    if icc:
        chunks = [icc[i:i + ICC_CHUNK] for i in range(0, len(icc), ICC_CHUNK)]
        if len(chunks) > 255:
            return None
        out += [_segment(_APP2, _ICC_SIGNATURE + bytes((n, len(chunks))) + chunk)
                for n, chunk in enumerate(chunks, start=1)]
    return b"".join(out)


def insert_after_jfif(jpeg: bytes, segments: bytes) -> bytes:
    """Put `segments` (whole APPn segments) right after SOI, or after the JFIF APP0 segment that
    follows it.

    OpenCV's encoder takes no EXIF or ICC, so we splice their segments into its stream. JFIF
    readers expect APP0 first and metadata before the tables, and this is where Pillow puts EXIF
    and ICC: our files stay byte for byte what the Pillow writer made.
    """
    if not jpeg.startswith(_SOI):
        raise ValueError("not a JPEG stream (no SOI marker)")
    pos = len(_SOI)
    if jpeg[pos:pos + 2] == bytes((0xFF, _APP0)):
        (length,) = struct.unpack_from(">H", jpeg, pos + 2)
        pos += 2 + length
    return jpeg[:pos] + segments + jpeg[pos:]
