"""dpe_hf.imageio.atomic_write: the file appears whole or not at all."""

from __future__ import annotations

import os
import stat

import pytest

from dpe_hf.imageio import atomic_write
from dpe_hf.imageio.atomic import TempFileError


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_writes_the_bytes_and_returns_the_path(tmp_path):
    dest = tmp_path / "a.txt"
    assert atomic_write(str(dest), lambda f: f.write(b"one\n")) == dest
    assert dest.read_bytes() == b"one\n" and _leftovers(tmp_path) == []


def test_replacing_keeps_the_destination_mode(tmp_path):
    dest = tmp_path / "a.txt"
    dest.write_bytes(b"old")
    os.chmod(dest, 0o640)
    atomic_write(dest, lambda f: f.write(b"new"))
    assert dest.read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o640


@pytest.mark.parametrize("error", [ValueError("boom"), KeyboardInterrupt()])
def test_a_failing_write_leaves_the_old_file_and_no_temporary(tmp_path, error):
    dest = tmp_path / "a.txt"
    dest.write_bytes(b"old")

    def write(f):
        f.write(b"half")
        raise error

    with pytest.raises(type(error)):
        atomic_write(dest, write)
    assert dest.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_no_folder_is_a_temp_file_error_with_its_cause(tmp_path):
    with pytest.raises(TempFileError) as info:
        atomic_write(tmp_path / "missing" / "a.txt", lambda f: f.write(b"x"))
    assert isinstance(info.value, OSError)
    assert isinstance(info.value.__cause__, FileNotFoundError)
