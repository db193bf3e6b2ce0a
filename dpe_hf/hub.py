"""Load the model a user names: a path, a bundled name or a hub repo id (`dpe_hf.model_spec`
says which is which), and carry models into an offline Hugging Face cache.

The same specs for `dpe enhance --model`, `dpe eval --model`, the app's chooser and
`DPEGenerator.from_pretrained`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from dpe_hf.model_spec import DEFAULT_MODEL, DEFAULT_REPO_ID, bundled_models, parse_model_spec

__all__ = ["DEFAULT_MODEL", "DEFAULT_REPO_ID", "add_to_hf_cache", "bundled_models", "load_generator"]


def load_generator(spec: str | Path | None = None, *, device: str = "cpu", cache_dir: str | Path | None = None,
                   threads: int | None = None):
    """Load a `DPEGenerator` from a folder, run folder, bundled name or hub repo id (eval mode),
    or an `OnnxGenerator` from a `.onnx` file (without importing torch) whose session uses
    `threads` CPU threads (None: `OnnxGenerator`'s rule).

    Raises `ModelLoadError` with one line saying what was tried when nothing matches.
    """
    source = parse_model_spec(spec)
    if source.kind == "onnx":
        from dpe_hf.export.onnx_runtime import OnnxGenerator

        return OnnxGenerator(Path(source.location), threads=threads)
    from dpe_hf.models.generator import DPEGenerator

    return DPEGenerator.from_pretrained(source.spec, map_location=device, cache_dir=cache_dir)


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

