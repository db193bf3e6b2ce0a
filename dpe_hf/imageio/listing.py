"""`list_images`: the image files of a folder, the one lister of the CLI, evaluation and training."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from dpe_hf.imageio.formats import SUPPORTED_SUFFIXES


def _hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("__")  # "__": __MACOSX, __pycache__, ...


def list_images(folder: str | os.PathLike[str], *, recursive: bool = False,
                exclude: str | os.PathLike[str] | None = None,
                suffixes: Iterable[str] = SUPPORTED_SUFFIXES) -> list[Path]:
    """Image files of `folder` (suffix in `suffixes`, any case), sorted; with `recursive`, those
    of its subfolders too, links to folders followed (each real folder listed once). Hidden
    entries (".x", "__x") and files under `exclude` are left out. A `folder` that cannot be
    listed raises its OSError; a subfolder that cannot be listed is skipped."""
    root = Path(folder)
    wanted = {s.lower() for s in suffixes}
    excluded = Path(exclude).resolve() if exclude is not None else None
    root_key = os.path.realpath(root)
    listed: set[str] = set()
    out = []

    def unreadable(error: OSError) -> None:
        if error.filename is not None and os.path.realpath(error.filename) == root_key:
            raise error

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in listed:  # a link back to a folder listed already
            dirnames[:] = []
            continue
        listed.add(real)
        dirnames[:] = sorted(d for d in dirnames if recursive and not _hidden(d))
        for name in filenames:
            p = Path(dirpath) / name
            if _hidden(name) or p.suffix.lower() not in wanted or not p.is_file():
                continue
            if excluded is not None and p.resolve().is_relative_to(excluded):
                continue
            out.append(p)
    return sorted(out)
