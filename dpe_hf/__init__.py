"""dpe_hf: the Deep Photo Enhancer (CVPR 2018) as hub-ready PyTorch models.

Imports are lazy so that `dpe --help` and other light entry points do not pay for torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "DPEGenerator": "dpe_hf.models.generator",
    "DPEDiscriminator": "dpe_hf.models.discriminator",
    "enhance": "dpe_hf.inference",
    "load_generator": "dpe_hf.hub",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dpe_hf' has no attribute {name!r}")
