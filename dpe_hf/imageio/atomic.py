"""`atomic_write`: a file appears whole or not at all, whatever happens while it is written.

The content goes to a temporary file in the destination's folder, is flushed to disk, takes the
permissions the destination has (or a new file would get) and is then renamed over it with
`os.replace`. On any failure, interruptions included, the temporary file is removed and the
destination is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

_umask_lock = threading.Lock()


class TempFileError(OSError):
    """The temporary file could not be created beside the destination: nothing was written.
    The OSError that said why is its ``__cause__``."""


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
    if umask is None:  # reading the umask means setting it: one thread at a time
        with _umask_lock:
            umask = os.umask(0o022)
            os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Call `write` with a binary file object, then put what it wrote at `path`; returns the Path.

    Raises `TempFileError` when no temporary file can be made, else whatever `write`, the flush
    or the rename raised."""
    dest = Path(path)
    mode = _file_mode_for(dest)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name[:100]}.", suffix=".tmp", dir=dest.parent)
    except OSError as exc:
        raise TempFileError(exc.errno, exc.strerror, exc.filename) from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return dest
