"""`OnnxGenerator`: run an exported generator (`dpe_hf.export.onnx.export_onnx`) with
onnxruntime. Needs numpy and onnxruntime only: importing this module does not import torch,
so `dpe enhance --model model.onnx` starts without it (`dpe_hf.inference_numpy`).

Torch tensors are still accepted (and returned) when torch is in use; `parameters()`, the
only other torch-facing bit, imports torch when called.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from dpe_hf.errors import ModelLoadError

__all__ = ["OnnxGenerator"]


class OnnxGenerator:
    """An exported generator run by onnxruntime, usable where inference takes a generator.

    Call it on (B,3,H,W) float in [0,1], a numpy array or a torch tensor; the result is the
    same kind (a tensor on the input's device and dtype), not clipped. `eval()` and
    `parameters()` exist so that code written for `nn.Module` generators (`dpe_hf.enhance`)
    can take it: it runs in float32 on the CPU (or the providers given). `run` is the numpy
    entry point used by the torch-free `dpe_hf.inference_numpy`.
    """

    #: Marks generators that take and return numpy arrays (`dpe_hf.inference_numpy`).
    numpy_native = True

    def __init__(self, path: str | os.PathLike, *, providers: list[str] | None = None,
                 threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelLoadError(f"{path}: running ONNX models needs onnxruntime "
                                 "(pip install 'dpe_hf[export]')") from None
        self.path = Path(path)
        options = ort.SessionOptions()
        if threads is None:
            threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
        options.intra_op_num_threads = max(threads, 0)
        try:
            self.session = ort.InferenceSession(str(self.path), options,
                                                providers=providers or ["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"{self.path}: not a loadable ONNX model ({first})") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ModelLoadError(f"{self.path}: expected one (B,3,H,W) input, found "
                                 f"{[(i.name, i.shape) for i in inputs]}")
        self.input_name = inputs[0].name
        self.output_name = self.session.get_outputs()[0].name
        self._param = None

    def __repr__(self) -> str:
        return f"OnnxGenerator({str(self.path)!r})"

    def __call__(self, x):
        torch = sys.modules.get("torch")  # a tensor can only come from an imported torch
        if torch is not None and isinstance(x, torch.Tensor):
            out = self.run(x.detach().to("cpu", torch.float32).numpy())
            return torch.from_numpy(out).to(x.device, x.dtype)
        return self.run(np.asarray(x))

    def run(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B,3,H,W) array, got shape {tuple(x.shape)}")
        x = np.ascontiguousarray(x, dtype=np.float32)
        return self.session.run([self.output_name], {self.input_name: x})[0]

    # -- the bits of the nn.Module interface that inference code uses -----------------------
    def eval(self) -> OnnxGenerator:
        return self

    def parameters(self):
        """One empty float32 CPU tensor: tells callers where to put the input (imports torch)."""
        if self._param is None:
            import torch

            self._param = torch.empty(0, dtype=torch.float32)
        yield self._param
