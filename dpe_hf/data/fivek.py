"""The MIT-Adobe FiveK split: which ids are for training and which for testing."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from dpe_hf.data.sources import few
from dpe_hf.errors import ConfigError

_FIVEK_ID = re.compile(r"^a(\d{4})(?!\d)")


_FIVEK_FILE = re.compile(r"(?:^|_)(a\d{4})(?=[-_.]|$)")


def fivek_id(name: str) -> str | None:
    """The FiveK id that names a file or pair: at the start (``a3232-_DGW6397.jpg``) or after a
    folder prefix and an underscore, as a data pack flattens folders
    (``fivek-expertC-256_a3232-_DGW6397.jpg``); ``a3232`` for both, None for other names."""
    m = _FIVEK_FILE.search(name)
    return m.group(1) if m else None


def _fivek_number(i: str) -> int | None:
    m = _FIVEK_ID.match(i)
    return int(m.group(1)) if m else None


def fivek_split_ids(
    ids: Iterable[str], split: str, list_file: str | os.PathLike | None = None
) -> list[str]:
    """The ids of ``ids`` (kept in their order) that belong to a MIT-Adobe FiveK split.

    Without ``list_file``: by id range, ``a0001``-``a4500`` = "train", ``a4501``-``a5000`` =
    "test" (the split of the paper), "all" = every id. Ids may carry a suffix
    (``a0001-jmac_DSC1459``). With ``list_file``: the ids listed there, one per line (blank
    lines and ``#`` comments ignored); a line matches an id equal to it or, for a bare FiveK
    id like ``a0001``, an id with that FiveK number. ``split`` is then not used for selection.

    Raises:
        ConfigError: unknown split, ids that are not FiveK ids (range mode), a missing list
            file, listed ids not among ``ids``.
    """
    ids = [str(i) for i in ids]
    if split not in ("train", "test", "all"):
        raise ConfigError(f"FiveK split must be 'train', 'test' or 'all', got {split!r}")
    if list_file is not None:
        path = Path(list_file)
        if not path.is_file():
            raise ConfigError(f"{path}: FiveK split list file not found")
        listed = []
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                listed.append(line)
        exact = set(listed)
        numbers = {_fivek_number(x) for x in listed if _FIVEK_ID.fullmatch(x)}
        chosen = [i for i in ids if i in exact or (_fivek_number(i) in numbers)]
        known = set(ids)
        known_numbers = {_fivek_number(i) for i in ids}
        missing = [
            x for x in listed
            if x not in known and not (_FIVEK_ID.fullmatch(x) and _fivek_number(x) in known_numbers)
        ]
        if missing:
            raise ConfigError(
                f"{path}: {len(missing)} listed id(s) not in the dataset: {few(missing)}"
            )
        return chosen
    if split == "all":
        return ids
    bad = [i for i in ids if _fivek_number(i) is None or not 1 <= _fivek_number(i) <= 5000]
    if bad:
        raise ConfigError(
            f"{len(bad)} id(s) are not FiveK ids a0001-a5000, cannot split by range "
            f"(give a list file): {few(bad)}"
        )
    lo, hi = (1, 4500) if split == "train" else (4501, 5000)
    return [i for i in ids if lo <= _fivek_number(i) <= hi]  # type: ignore[operator]
