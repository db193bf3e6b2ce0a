"""The pixel limit, and the one-line reasons that every `ImageReadError` gives."""

from __future__ import annotations

from pathlib import Path

from dpe_hf.defaults import DEFAULT_MAX_PIXELS
from dpe_hf.errors import ImageReadError, ImageTooLargeError


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def exc_text(exc: BaseException) -> str:
    msg = one_line(exc)
    return msg if msg else type(exc).__name__


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} MP"


def check_pixels(path: str | Path, width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels is None or max_pixels <= 0:
        return
    pixels = int(width) * int(height)
    if pixels > max_pixels:
        raise ImageTooLargeError(
            path,
            f"image is {width}x{height} = {_megapixels(pixels)}, over the limit of "
            f"{_megapixels(max_pixels)} (--max-pixels)",
        )


def corrupt(path: str | Path, detail: str) -> ImageReadError:
    return ImageReadError(path, f"truncated or corrupt image data ({one_line(detail)})")
