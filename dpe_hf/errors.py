"""Exceptions raised by dpe_hf: one family, so callers can catch `DPEError`.

Each message is one line that names the file (or the thing) and the problem, because the
CLI prints it as is for every bad file of a batch.
"""

from __future__ import annotations

from pathlib import Path


class DPEError(Exception):
    """Base class of every error dpe_hf raises on purpose."""


class ImageReadError(DPEError):
    """An input image could not be read: missing, empty, truncated, not an image, too large."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ImageTooLargeError(ImageReadError):
    """The image has more pixels than the configured limit (decompression-bomb guard)."""


class ImageWriteError(DPEError):
    """An output could not be written (folder not writable, output equals input, ...)."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelLoadError(DPEError):
    """A model could not be resolved or loaded (unknown name, not cached offline, bad file)."""


class ConfigError(DPEError):
    """A training config is invalid: unknown key, wrong type, missing data."""
