"""The Hugging Face hub mixin as dpe_hf uses it.

`PyTorchModelHubMixin` already gives `save_pretrained` (config.json from the constructor
arguments, model.safetensors, README.md) and `from_pretrained` (local folder or repo id).
We tighten loading: safetensors only (never pickles), strict keys, and errors that say what is
wrong in one line instead of a stack trace. `from_pretrained` takes the specs of `dpe --model`
(`dpe_hf.model_spec`), and config.json names its class (`_class_name`), so that one model's
folder is not loaded as another (configs saved before carry no name and still load).
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path

import torch
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download

from dpe_hf.errors import ModelLoadError
from dpe_hf.model_spec import BUNDLED_COPIES, ModelSource, bundled_models, hub_offline, parse_model_spec

WEIGHTS_NAME = "model.safetensors"
CLASS_KEY = "_class_name"
log = logging.getLogger(__name__)


class DPEHubMixin(PyTorchModelHubMixin):
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, *, force_download: bool = False,
                        token: str | bool | None = None, cache_dir: str | Path | None = None,
                        local_files_only: bool = False, revision: str | None = None, **model_kwargs):
        """Load from a model folder, a training run folder, a bundled name (`dpe-expertC`), a hub
        repo id (`org/name`, `hf-hub:org/name`): the specs of `dpe --model`. A spec written as a
        path (`./x`, `/x`, `~/x`) that holds no model fails at once, naming it; a hub repo id fails
        within seconds when it is neither cached nor reachable. A repo id with a bundled copy
        (`dpe-hf/dpe-expertC`) loads the hub's copy when there is one, else the bundled one, and
        logs one line saying which. The keywords are PyTorchModelHubMixin's. Raises ModelLoadError."""
        kwargs = dict(force_download=force_download, token=token, cache_dir=cache_dir,
                      local_files_only=local_files_only, revision=revision, **model_kwargs)
        source = parse_model_spec(pretrained_model_name_or_path)
        if source.kind == "onnx":
            raise ModelLoadError(f"{source.spec}: an ONNX model; load it with dpe_hf.load_generator")
        if source.kind == "folder":
            return cls._from_folder(source.location, **kwargs)
        return cls._from_hub(source, **kwargs)

    @classmethod
    def _from_folder(cls, folder: str, **kwargs):
        try:
            return super().from_pretrained(folder, **kwargs)
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{folder}: config.json does not describe a {cls.__name__} ({exc})") from None

    @classmethod
    def _from_hub(cls, source: ModelSource, **kwargs):
        from huggingface_hub.errors import HfHubHTTPError

        repo_id = source.location
        bundled_name = BUNDLED_COPIES.get(repo_id)
        bundled = bundled_models().get(bundled_name) if bundled_name else None
        cache_only = bool(kwargs.pop("local_files_only", False)) or hub_offline()
        try:
            with _quiet_hub_logging():
                model = super().from_pretrained(repo_id, local_files_only=cache_only, **kwargs)
        except HfHubHTTPError as exc:
            why = f"the hub refused it ({str(exc).splitlines()[0]})"
        except OSError as exc:  # not cached and no network (LocalEntryNotFoundError, OfflineModeIsEnabled...)
            why = ("not in the local Hugging Face cache and the hub cannot be reached" if cache_only
                   else f"could not be fetched ({exc})")
        else:
            if bundled is not None:
                log.warning("%s: loaded the hub's copy%s", repo_id, " (from the local cache)" if cache_only else "")
            return model
        if bundled is not None:
            log.warning("%s: %s; loaded the bundled copy (%s)", repo_id, why, bundled_name)
            return cls._from_folder(str(bundled), **kwargs)
        no_folder = ", and there is no local folder of that name either" if source.spec == repo_id else ""
        raise ModelLoadError(f"{repo_id}: {why}{no_folder}")

    def save_pretrained(self, save_directory: str | Path, *, config: dict | None = None, repo_id: str | None = None,
                        push_to_hub: bool = False, model_card_kwargs: dict | None = None, **push_to_hub_kwargs):
        """As PyTorchModelHubMixin's, with the class named in config.json."""
        config = dict(config if config is not None else self._hub_mixin_config or {})
        config[CLASS_KEY] = type(self).__name__
        return super().save_pretrained(save_directory, config=config, repo_id=repo_id, push_to_hub=push_to_hub,
                                       model_card_kwargs=model_card_kwargs, **push_to_hub_kwargs)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision, cache_dir, force_download, local_files_only, token,
                         map_location: str = "cpu", strict: bool = True, config: dict | None = None,
                         **model_kwargs):
        named = (config or {}).get(CLASS_KEY, cls.__name__)
        if named != cls.__name__:
            raise ModelLoadError(f"{model_id}: config.json is for a {named}, not a {cls.__name__}")
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


@contextmanager
def _quiet_hub_logging():
    """huggingface_hub's retry warnings would bury our one-line error."""
    from huggingface_hub.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
