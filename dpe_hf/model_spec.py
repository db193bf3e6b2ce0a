"""What a model spec names, from its form alone, so that a typo fails at once and names itself.

The same specs work for `--model`, the app's chooser, `load_generator` and
`DPEGenerator.from_pretrained`:

- `./run`, `../m`, `/abs/m`, `~/m` (a path by its form) or `*.onnx`: a local path, and only that;
  if it does not exist, that is the error;
- `hf-hub:org/name`: the Hugging Face hub, always (from the cache without network);
- anything else: a local model folder or training run folder of that name when there is one,
  else a bundled checkpoint (`dpe-expertC`), else, for `org/name`, the hub.

When the hub cannot be reached, a hub spec is looked up in the local cache only: one quick probe
(`hub_reachable`) instead of huggingface_hub's retries, which take about 25 s to fail.

No torch here: `dpe --help` and `dpe enhance --model x.onnx` import this.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dpe_hf.errors import ModelLoadError
from dpe_hf.resources import resource_dir

DEFAULT_MODEL = "dpe-expertC"
DEFAULT_REPO_ID = "dpe-hf/dpe-expertC"
BUNDLED_COPIES = {DEFAULT_REPO_ID: DEFAULT_MODEL}  # hub repo id -> the bundled checkpoint with its weights
RUN_GENERATOR_SUBDIR = "generator"
BUNDLED_ONNX = "model.onnx"
HUB_PREFIX = "hf-hub:"
HUB_PROBE_SECONDS = 2.0
_PATH_PREFIXES = ("./", "../", "/", "~", ".\\", "..\\")


@dataclass(frozen=True)
class ModelSource:
    """Where a spec's model is: `kind` is "onnx" (a file), "folder" (a model folder, run folders
    and bundled names resolved) or "hub" (`location` is then a repo id)."""

    kind: str
    location: str
    spec: str  # as the user wrote it, for messages


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


def bundled_onnx(spec: str | Path | None) -> Path | None:
    """The ONNX copy of a bundled checkpoint (`model.onnx` beside its weights: the same network,
    run by onnxruntime without importing torch), when `spec` (None: the default) names that
    checkpoint and no local folder of the same name shadows it."""
    text = DEFAULT_MODEL if spec is None else str(spec)
    folder = bundled_models().get(text)
    if folder is None or is_path_spec(text) or resolve_local(text) != folder:
        return None
    onnx = folder / BUNDLED_ONNX
    return onnx if onnx.is_file() else None


def is_onnx_spec(spec: str | Path | None) -> bool:
    return spec is not None and str(spec).lower().endswith(".onnx")


def is_path_spec(spec: str | Path) -> bool:
    """Written as a path: relative with ./ or ../, absolute, or from the home folder."""
    return isinstance(spec, Path) or str(spec).startswith(_PATH_PREFIXES) or os.path.isabs(str(spec))


def parse_model_spec(spec: str | Path | None) -> ModelSource:
    """Where `spec` (None: the bundled default) is; a ModelLoadError, naming the spec, when it
    is a local path that holds no model, or names nothing that can exist."""
    text = DEFAULT_MODEL if spec is None else str(spec)
    if text.startswith(HUB_PREFIX):
        repo_id = text[len(HUB_PREFIX):]
        if repo_id.count("/") != 1 or not all(repo_id.split("/")):
            raise ModelLoadError(f"{text}: a hub spec is {HUB_PREFIX}org/name")
        return ModelSource("hub", repo_id, text)
    path = Path(text).expanduser()
    if is_onnx_spec(text):
        if not path.is_file():
            raise ModelLoadError(f"{text}: no such ONNX file")
        return ModelSource("onnx", str(path), text)
    local = resolve_local(text)
    if local is not None:
        return ModelSource("folder", str(local), text)
    if path.exists():
        raise ModelLoadError(f"{text}: not a model folder (no config.json in it or in {path / RUN_GENERATOR_SUBDIR})")
    if spec is not None and is_path_spec(spec):
        raise ModelLoadError(f"{text}: no such file or folder")
    if text == DEFAULT_MODEL:
        raise ModelLoadError(f"no bundled default model '{DEFAULT_MODEL}' in this install yet; "
                             "pass --model with a model folder, a run folder or a hub repo id")
    if text.count("/") != 1:
        raise ModelLoadError(f"{text}: no such folder, bundled model ({', '.join(bundled_models()) or 'none'}) "
                             "or hub repo id (org/name)")
    return ModelSource("hub", text, text)


def hub_offline() -> bool:
    """HF_HUB_OFFLINE is set, or the hub's host (or the proxy to it) does not answer quickly."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or not hub_reachable(constants.ENDPOINT)


@functools.lru_cache(maxsize=4)
def hub_reachable(endpoint: str) -> bool:
    """Whether a TCP connection to `endpoint` (or the HTTPS proxy, if one is set) opens within
    HUB_PROBE_SECONDS. Once per process: the answer is cached."""
    from urllib.request import getproxies  # 40 ms of imports (http, email) that a local model does not need

    url = urlsplit(getproxies().get("https") or endpoint)
    address = (url.hostname or "", url.port or (443 if url.scheme == "https" else 80))
    answered = threading.Event()

    def probe() -> None:
        try:
            with socket.create_connection(address, timeout=HUB_PROBE_SECONDS):
                answered.set()
        except OSError:
            pass

    # a thread, because name resolution has no timeout of its own
    thread = threading.Thread(target=probe, daemon=True, name="dpe-hub-probe")
    thread.start()
    thread.join(HUB_PROBE_SECONDS)
    return answered.is_set()
