"""Resolve "which model" from what a user types: a path, a bundled name or a hub repo id.

Order (the same for `dpe enhance --model`, `dpe eval --model` and the app's chooser):
1. an existing local path: a folder with config.json, a training run folder (its
   `generator/` subfolder), or an exported `.onnx` file;
2. the name of a bundled checkpoint (`dpe-expertC`);
3. a hub repo id (`org/name`), from the HF cache or, with network, the hub.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from dpe_hf.errors import ModelLoadError
from dpe_hf.resources import resource_dir

DEFAULT_MODEL = "dpe-expertC"
DEFAULT_REPO_ID = "dpe-hf/dpe-expertC"
RUN_GENERATOR_SUBDIR = "generator"


def bundled_models() -> dict[str, Path]:
    """Bundled checkpoints by name (folders of `checkpoints/` that hold a config.json)."""
    root = resource_dir("checkpoints")
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if (p / "config.json").is_file()}


def resolve_local(spec: str | Path) -> Path | None:
    """The model folder `spec` names on disk, or None when it is not a local model."""
    path = Path(spec).expanduser()
    if (path / "config.json").is_file():
        return path
    if (path / RUN_GENERATOR_SUBDIR / "config.json").is_file():
        return path / RUN_GENERATOR_SUBDIR
    bundled = bundled_models()
    if str(spec) in bundled:
        return bundled[str(spec)]
    return None


def describe(spec: str | Path | None) -> str:
    return str(spec if spec is not None else DEFAULT_MODEL)


def load_generator(spec: str | Path | None = None, *, device: str = "cpu", cache_dir: str | Path | None = None):
    """Load a `DPEGenerator` from a folder, run folder, bundled name or hub repo id (eval mode).

    Raises `ModelLoadError` with one line saying what was tried when nothing matches.
    """
    spec = DEFAULT_MODEL if spec is None else spec
    if str(spec).lower().endswith(".onnx"):
        onnx_path = Path(str(spec)).expanduser()
        if not onnx_path.is_file():
            raise ModelLoadError(f"{spec}: no such ONNX file")
        from dpe_hf.export.onnx_runtime import OnnxGenerator  # no torch import for .onnx

        return OnnxGenerator(onnx_path)
    from dpe_hf.models.generator import DPEGenerator

    local = resolve_local(spec)
    if local is not None:
        try:
            return DPEGenerator.from_pretrained(str(local), map_location=device)
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{local}: config.json does not describe a DPEGenerator ({exc})") from None
    path = Path(str(spec)).expanduser()
    if path.exists():
        raise ModelLoadError(f"{spec}: not a model folder (no config.json in it or in {path / RUN_GENERATOR_SUBDIR})")
    if str(spec) == DEFAULT_MODEL:
        raise ModelLoadError(f"no bundled default model '{DEFAULT_MODEL}' in this install yet; "
                             "pass --model with a model folder, a run folder or a hub repo id")
    if str(spec).count("/") != 1:
        raise ModelLoadError(f"{spec}: no such folder, bundled model ({', '.join(bundled_models()) or 'none'}) "
                             "or hub repo id (org/name)")
    return _from_hub(str(spec), device=device, cache_dir=cache_dir)


def _from_hub(repo_id: str, *, device: str, cache_dir):
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    from dpe_hf.models.generator import DPEGenerator

    from huggingface_hub.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its retry warnings would bury our one-line error
    try:
        return DPEGenerator.from_pretrained(repo_id, map_location=device, cache_dir=cache_dir)
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        raise ModelLoadError(f"{repo_id}: not in the local Hugging Face cache and the hub cannot be reached "
                             f"({type(exc).__name__})") from None
    except HfHubHTTPError as exc:
        raise ModelLoadError(f"{repo_id}: the hub refused it ({str(exc).splitlines()[0]})") from None
    except OSError as exc:  # network errors that huggingface_hub does not wrap
        raise ModelLoadError(f"{repo_id}: could not be fetched ({exc})") from None
    finally:
        hf_logging.set_verbosity(verbosity)


def add_to_hf_cache(folder: str | Path, repo_id: str, cache_dir: str | Path, revision: str | None = None) -> Path:
    """Copy a model folder into an HF cache as `repo_id` (models--org--name/snapshots/REV and
    refs/main), so `from_pretrained(repo_id)` finds it offline. Returns the snapshot folder.

    Used by the tests to serve the bundled model through the repo-id path, and by users who
    carry a model to a machine without network.
    """
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if revision is None:
        digest = hashlib.sha1()
        for p in files:
            digest.update(p.name.encode() + p.read_bytes())
        revision = digest.hexdigest()
    repo_dir = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    for p in files:
        shutil.copy2(p, snapshot / p.name)
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(revision)
    return snapshot

