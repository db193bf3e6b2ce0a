"""The torch-free names that `dpe_hf.cli` and `app.py` import; the code is in `dpe_hf.enhancer`.

Kept until those importers use `dpe_hf.enhancer` directly: `enhance_numpy(model, image,
**options)` is `dpe_hf.enhancer.enhance`, and `blend` is `dpe_hf.enhancer.blend`.
"""

from __future__ import annotations

from dpe_hf.enhancer import DEFAULT_MAX_SIDE, blend
from dpe_hf.enhancer import enhance as enhance_numpy

__all__ = ["DEFAULT_MAX_SIDE", "blend", "enhance_numpy"]
