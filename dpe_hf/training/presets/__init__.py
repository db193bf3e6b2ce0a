"""Training presets: `--preset paired` and `--preset unpaired`, a recipe for your own photos.

A preset is the lowest config layer (preset < --config < flags and --set). Its YAML file
ships inside the package, so an installed wheel has it; what a YAML file cannot say is which
folders the user must give, so that lives here (`REQUIRED`) and is checked before training.
"""

from __future__ import annotations

from pathlib import Path

from dpe_hf.errors import ConfigError
from dpe_hf.training.config import TrainConfig, read_yaml

_FOLDER = Path(__file__).resolve().parent

#: preset -> (data key, the flag that sets it, what the user should pass)
REQUIRED: dict[str, tuple[tuple[str, str, str], ...]] = {
    "paired": (("input", "--input", "your photos as they are"),
               ("expert", "--expert", "the same photos retouched, same file names")),
    "unpaired": (("source", "--source", "photos like those you want to enhance"),
                 ("target", "--target", "photos whose look you like")),
}
NAMES = tuple(REQUIRED)


def preset_path(name: str) -> Path:
    return _FOLDER / f"{name}.yaml"


def read_preset(name: str) -> dict:
    """The preset's config layer (a dict, as read from its YAML file)."""
    if name not in REQUIRED:
        raise ConfigError(f"--preset {name!r}: no such preset (known: {', '.join(NAMES)})")
    return read_yaml(preset_path(name))


def check_required(name: str, config: TrainConfig) -> None:
    """Fail early, in one line naming the flag, when a folder the preset trains on is missing:
    later, deep in data loading, the error would not say which flag to add."""
    missing = [(flag, what) for key, flag, what in REQUIRED[name] if not getattr(config.data, key)]
    if missing:
        needs = " and ".join(f"{flag} DIR ({what})" for flag, what in missing)
        raise ConfigError(f"--preset {name} needs {needs}")
