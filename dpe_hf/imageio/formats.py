"""Which files are images: the suffixes `read_image` is meant for and those `write_image` writes."""

from __future__ import annotations

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
