"""The Hugging Face hub mixin as dpe_hf uses it.

`PyTorchModelHubMixin` already gives `save_pretrained` (config.json from the constructor
arguments, model.safetensors, README.md) and `from_pretrained` (local folder or repo id).
We tighten loading: safetensors only (never pickles), strict keys, and errors that say what is
wrong in one line instead of a stack trace.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download

from dpe_hf.errors import ModelLoadError

WEIGHTS_NAME = "model.safetensors"


class DPEHubMixin(PyTorchModelHubMixin):
    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision, cache_dir, force_download, local_files_only, token,
                         map_location: str = "cpu", strict: bool = True, **model_kwargs):
        if os.path.isdir(model_id):
            weights = Path(model_id) / WEIGHTS_NAME
            if not weights.is_file():
                raise ModelLoadError(f"{model_id}: no {WEIGHTS_NAME} in this folder")
        else:
            weights = hf_hub_download(repo_id=model_id, filename=WEIGHTS_NAME, revision=revision,
                                      cache_dir=cache_dir, force_download=force_download, token=token,
                                      local_files_only=local_files_only)
        model = cls(**model_kwargs)
        load_weights(model, weights, map_location=map_location, strict=strict)
        model.eval()
        return model

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def load_weights(model: torch.nn.Module, path: str | Path, *, map_location: str = "cpu", strict: bool = True) -> None:
    """Load a safetensors file into `model`; a malformed file or a mismatch names the problem."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not a valid safetensors file ({exc})") from None
    own = model.state_dict()
    for key, expected in own.items():  # in the model's order, so the first bad layer is named
        if key in state and state[key].shape != expected.shape:
            raise ModelLoadError(f"{path}: layer {key} has shape {tuple(state[key].shape)} in the file "
                                 f"but {tuple(expected.shape)} in the model (wrong config.json?)")
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if strict and (missing or unexpected):
        raise ModelLoadError(f"{path}: weights do not match the model: missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]}")
    model.load_state_dict(state, strict=strict)
