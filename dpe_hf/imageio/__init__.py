"""Image reading and writing for dpe_hf, without torch (the CLI's start-up time matters).

`read_image` returns an H x W x 3 RGB array (uint8 for 8-bit sources, uint16 for 16-bit ones)
with the EXIF orientation applied, and an `ImageMeta` that carries what is needed to write the
result back faithfully (EXIF with orientation 1, ICC profile, alpha).  Every failure is an
`ImageReadError` (or `ImageTooLargeError`) whose message is one line, "PATH: reason".

Camera RAW files (`RAW_SUFFIXES`) are developed with rawpy to 16-bit sRGB, and HEIF/HEIC files
(`HEIF_SUFFIXES`) decoded with pillow-heif: the optional extras [raw] and [heif]. Without them,
such a file is one `ImageReadError` that names the extra to install.

`write_image` writes atomically (`atomic_write`: temporary file in the same folder, then
`os.replace`) and raises `ImageWriteError` on any failure, leaving neither a partial destination
nor a temporary file. `list_images` finds the image files of a folder.

OpenCV and tifffile are imported lazily, for JPEG pixels (OpenCV decodes and encodes plain RGB
JPEGs: the same pixels as Pillow, cheaper) and for 16-bit PNG and TIFF work.

Modules: `readers` (sniffing, Pillow, RAW, HEIF), `png` and `tiff` (their own readers and
16-bit writers), `jpeg` (OpenCV's pixels, EXIF and ICC segments), `exif`, `meta` (`ImageMeta`), `writer`, `atomic`, `listing`, `dtypes`,
`formats` (suffixes), `checks` (pixel limit, error reasons), `optional` (lazy imports).
"""

from dpe_hf.imageio.atomic import atomic_write
from dpe_hf.imageio.checks import DEFAULT_MAX_PIXELS
from dpe_hf.imageio.dtypes import from_float, to_float32
from dpe_hf.imageio.formats import HEIF_SUFFIXES, RAW_SUFFIXES, SUPPORTED_SUFFIXES, WRITE_SUFFIXES
from dpe_hf.imageio.listing import list_images
from dpe_hf.imageio.meta import ImageMeta
from dpe_hf.imageio.readers import read_image
from dpe_hf.imageio.writer import write_image

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "HEIF_SUFFIXES",
    "RAW_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "WRITE_SUFFIXES",
    "ImageMeta",
    "atomic_write",
    "from_float",
    "list_images",
    "read_image",
    "to_float32",
    "write_image",
]
