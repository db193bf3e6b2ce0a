"""Run an exported generator (`dpe_hf.export.onnx.export_onnx`) with onnxruntime:
`OnnxGenerator`, the model on (B, 3, H, W) arrays, and `OnnxBackend`, the inference core's
network (`dpe_hf.enhancer`) for it or for any callable on such numpy arrays. Needs numpy and
onnxruntime only: importing this module does not import torch, so `dpe enhance --model
model.onnx` starts without it. Torch tensors are still accepted (and returned) by
`OnnxGenerator` when torch is in use.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from dpe_hf.errors import ModelLoadError
from dpe_hf.ops.strips import worker_threads

__all__ = ["OnnxBackend", "OnnxGenerator"]


class OnnxGenerator:
    """An exported generator run by onnxruntime, in float32 on the CPU (or the providers given).

    Call it on (B,3,H,W) float in [0,1], a numpy array or a torch tensor; the result is the
    same kind (a tensor on the input's device and dtype), not clipped. `run` is the numpy
    entry point. `dpe_hf.enhance` and `Enhancer` take it (through `OnnxBackend`).
    """

    def __init__(self, path: str | os.PathLike, *, providers: list[str] | None = None,
                 threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelLoadError(f"{path}: running ONNX models needs onnxruntime "
                                 "(pip install onnxruntime)") from None
        self.path = Path(path)
        self.levels = 0.0  # auto-levels mixed into its outputs by default (`DPEGenerator(levels=)`)
        options = ort.SessionOptions()
        # the rule of the full-size passes (OMP_NUM_THREADS, else every CPU): onnxruntime's own
        # default counts physical cores, one on a 2-vCPU machine
        options.intra_op_num_threads = worker_threads(threads)
        # onnxruntime's workers otherwise spin after each run, taking the cores that decoding,
        # encoding and the full-size carry of the photos around the network need
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
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


class OnnxBackend:
    """The inference core's network for an `OnnxGenerator`, a path to a .onnx file, or any
    callable on (B, 3, H, W) float32 numpy in [0, 1] (an object with a ``run`` method is called
    through it). numpy only. No ``method="tiled"``: an exported graph computes its global
    feature from whatever it is given, so it has no input for the one every tile must share."""

    supports_tiling = False
    tile_multiple = None

    def __init__(self, model):
        self.model = OnnxGenerator(model) if isinstance(model, (str, os.PathLike)) else model
        self._call = getattr(self.model, "run", self.model)

    def __repr__(self) -> str:
        return f"OnnxBackend({self.model!r})"

    def run(self, x: np.ndarray, global_feature=None) -> np.ndarray:
        """float32 H x W x 3 in [0, 1] -> the network's output, clipped, float32 H x W x 3."""
        if global_feature is not None:
            raise ValueError("an ONNX model takes no global feature")
        y = self._call(np.ascontiguousarray(x.transpose(2, 0, 1)[None]))
        return np.clip(np.asarray(y, np.float32), 0, 1)[0].transpose(1, 2, 0)

    def encode_global(self, x: np.ndarray):
        raise ValueError("an ONNX model has no separate global feature")
