"""EXIF: read the orientation, reset it to 1 in place (so that every other tag survives byte for
byte), and apply it to pixel arrays."""

from __future__ import annotations

import struct

import numpy as np
from PIL import Image

EXIF_PREFIX = b"Exif\x00\x00"
ORIENTATION_TAG = 0x0112
# TIFF tags that describe the pixel layout of a TIFF file: they must not travel as "EXIF".
_TIFF_STRUCTURE_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 284, 290, 291,
     292, 293, 317, 320, 322, 323, 324, 325, 338, 339, 340, 341, 347, 530, 531, 532, 34675}
)


def _orientation_entry(exif: bytes) -> tuple[int, int | None, str] | None:
    """Parse IFD0 of raw EXIF (with or without the "Exif\\0\\0" prefix).

    Returns (orientation, byte offset of its value or None, byte order) or None when the bytes
    are not a TIFF structure.  Orientation is 1 when the tag is absent."""
    base = len(EXIF_PREFIX) if exif.startswith(EXIF_PREFIX) else 0
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
        if tag == ORIENTATION_TAG:
            if typ != 3 or n != 1:  # must be one SHORT stored inline
                return None
            (value,) = struct.unpack_from(order + "H", data, off + 8)
            return value, base + off + 8, order
    return 1, None, order


def normalise_exif(exif: bytes | None) -> bytes | None:
    """EXIF bytes that start with "Exif\\0\\0", or None when there are none."""
    if not exif:
        return None
    exif = bytes(exif)
    return exif if exif.startswith(EXIF_PREFIX) else EXIF_PREFIX + exif


def exif_orientation(exif: bytes | None) -> int:
    if not exif:
        return 1
    entry = _orientation_entry(exif)
    if entry is None:
        try:
            ex = Image.Exif()
            ex.load(exif)
            return int(ex.get(ORIENTATION_TAG, 1))
        except Exception:
            return 1
    return entry[0]


def exif_with_orientation_1(exif: bytes | None) -> bytes | None:
    """EXIF bytes (prefixed) with the Orientation tag set to 1 if present; None if empty."""
    exif = normalise_exif(exif)
    if exif is None:
        return None
    entry = _orientation_entry(exif)
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
        if ORIENTATION_TAG in ex:
            ex[ORIENTATION_TAG] = 1
        return normalise_exif(ex.tobytes())
    except Exception:
        return None


def exif_from_pil(im: Image.Image) -> bytes | None:
    raw = im.info.get("exif")
    if isinstance(raw, (bytes, bytearray)) and raw:
        return normalise_exif(bytes(raw))
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
        return normalise_exif(ex.tobytes())
    except Exception:
        return None


def pil_orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(ORIENTATION_TAG, 1))
    except Exception:
        return 1


def orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an array upright for an EXIF orientation (same result as PIL's exif_transpose)."""
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
