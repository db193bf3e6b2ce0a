"""Where the files that ship with the package live: `model_cards/` and `checkpoints/`.

In a source checkout they sit at the repository root (the layout the owner asked for); in an
installed wheel setuptools maps them into the package (`dpe_hf/model_cards`,
`dpe_hf/checkpoints`). This is the one place that knows both.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """Folder `name` ("model_cards" or "checkpoints"): the checkout's, else the wheel's."""
    checkout = _PACKAGE.parent / name
    if (_PACKAGE.parent / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    return _PACKAGE / name


def model_card_template(kind: str = "generator") -> str:
    return (resource_dir("model_cards") / f"{kind}.md").read_text(encoding="utf-8")
