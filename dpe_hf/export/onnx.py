"""ONNX export of a `DPEGenerator` with dynamic batch, height and width, and `OnnxGenerator`,
which runs such a file with onnxruntime and behaves like a generator for inference.

    from dpe_hf.export.onnx import export_onnx, OnnxGenerator
    export_onnx(generator, "model.onnx")
    gen = OnnxGenerator("model.onnx")
    out = gen(x)  # (B,3,H,W) float32 numpy array or torch tensor, any H, W

Why a wrapper module: the generator's forward decides its padding with Python arithmetic on
the input size (pad to a multiple of 16, at least 80; mirror padding where the image is large
enough, edge replication otherwise) and average-pools the global path to 8x8 with
`adaptive_avg_pool2d`. A trace would freeze all of these to the size of the example input, and
ONNX has no adaptive pooling for a size unknown at export time. `ExportableGenerator` runs the
same layers with the same numbers, but computes those steps from tensor ops on the input's
shape: the padding as index gathers (mirror and edge indices, chosen per call), the 8x8
pooling as two small averaging matrices built from the feature map's size (the bins of
`adaptive_avg_pool2d`: [floor(i*n/8), ceil((i+1)*n/8))), and the final crop as a gather.
SELU's expm1, which the TorchScript exporter cannot translate, is written as Exp - 1 during
the export. The generator itself is not changed; the tests check the ONNX file against it
through onnxruntime (max |difference| ~1e-7).

The ONNX model has one input "image" (B,3,H,W) float32 in [0,1] and one output "enhanced"
of the same shape, not clipped (as the generator's). It uses the generator's first BN set
(real inputs) and computes the global feature from the image it is given.

`OnnxGenerator` lives in `dpe_hf.export.onnx_runtime` (numpy + onnxruntime, no torch) and is
re-exported here.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from dpe_hf.export.onnx_runtime import OnnxGenerator  # torch-free; re-exported here
from dpe_hf.imageio import atomic_write

__all__ = ["DEFAULT_OPSET", "ExportableGenerator", "OnnxGenerator", "export_onnx"]

DEFAULT_OPSET = 17
INPUT_NAME = "image"
OUTPUT_NAME = "enhanced"


def _shape(x: torch.Tensor) -> torch.Tensor:
    """x's shape as an int64 tensor: recorded as a Shape op when traced, so it stays dynamic."""
    from torch.onnx import operators

    return operators.shape_as_tensor(x)


def _arange(n: torch.Tensor) -> torch.Tensor:
    return torch.arange(n, dtype=torch.int64)


class ExportableGenerator(nn.Module):
    """`DPEGenerator.forward(x)` (global feature from x, BN set 0) written with shape-dynamic
    tensor ops, for tracing to ONNX. Shares the generator's layers; same output up to float
    rounding of the pooling."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        from dpe_hf.models import generator as gen_module

        self.generator = generator
        self.multiple = gen_module.MULTIPLE
        self.minimum = gen_module.MIN_SIZE_WITH_GLOBAL
        self.grid = gen_module.GLOBAL_GRID

    # -- shape-dynamic equivalents of pad_to / adaptive_avg_pool2d / the final crop ------------
    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        """`pad_to(x, padded_size(h), padded_size(w))` as two index gathers."""
        shape = _shape(x)
        h, w = shape[2], shape[3]
        m = self.multiple
        ph = torch.clamp((h + (m - 1)) // m * m, min=self.minimum)
        pw = torch.clamp((w + (m - 1)) // m * m, min=self.minimum)
        mirror = ((ph - h) < h) & ((pw - w) < w)  # pad_to's rule: mirror only where it is defined
        return x.index_select(2, self._indices(h, ph, mirror)).index_select(3, self._indices(w, pw, mirror))

    @staticmethod
    def _indices(n: torch.Tensor, target: torch.Tensor, mirror: torch.Tensor) -> torch.Tensor:
        j = _arange(target)
        last = n - 1
        reflected = torch.clamp(torch.where(j <= last, j, 2 * last - j), min=0)
        replicated = torch.minimum(j, last)
        return torch.where(mirror, reflected, replicated)

    def _pool_matrix(self, n: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """(grid, n) averaging matrix of adaptive_avg_pool over a side of length n."""
        i = torch.arange(self.grid, dtype=torch.int64).unsqueeze(1)
        start = (i * n) // self.grid
        end = ((i + 1) * n + (self.grid - 1)) // self.grid
        j = _arange(n).unsqueeze(0)
        inside = ((j >= start) & (j < end)).to(dtype)
        return inside / (end - start).to(dtype)

    def _adaptive_pool(self, g: torch.Tensor) -> torch.Tensor:
        shape = _shape(g)
        rows = self._pool_matrix(shape[2], g.dtype)  # (8, h)
        cols = self._pool_matrix(shape[3], g.dtype)  # (8, w)
        return torch.matmul(torch.matmul(rows, g), cols.transpose(0, 1))

    # -- the generator's forward, step by step ------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gen = self.generator
        shape = _shape(x)
        xp = self._pad(x)
        e1, e2, e3, e4, e5 = gen._encode(xp)
        g = self._adaptive_pool(gen.g2(gen.g1(e5)))
        g = gen.g4(gen.g3(g))

        d0 = gen.d0(e5)
        d = torch.cat([d0, g.expand_as(d0)], dim=1)
        d = gen.d1(d)
        for up, post, skip in ((gen.up2, gen.post2, e4), (gen.up3, gen.post3, e3),
                               (gen.up4, gen.post4, e2), (gen.up5, gen.post5, e1)):
            d = F.interpolate(up(d), scale_factor=2, mode="nearest")
            d = post(torch.cat([d, skip], dim=1))
        out = xp + gen.out(gen.d6(d))
        return out.index_select(2, _arange(shape[2])).index_select(3, _arange(shape[3]))


def export_onnx(generator: nn.Module, path: str | os.PathLike, *, opset: int = DEFAULT_OPSET,
                example_size: tuple[int, int] = (96, 128)) -> Path:
    """Write `generator` (a `DPEGenerator`) to `path` as ONNX with dynamic batch, height and
    width. The example input only drives the trace; the file runs at any size. Returns the path.
    """
    import warnings

    if opset < 17:
        raise ValueError(f"opset must be 17 or newer, got {opset}")
    path = Path(path)
    generator.eval()
    generator.select_bn(0)
    wrapper = ExportableGenerator(generator).eval()
    param = next(generator.parameters())
    example = torch.rand(1, 3, *example_size, generator=torch.Generator().manual_seed(0)).to(param.device, param.dtype)
    axes = {0: "batch", 2: "height", 3: "width"}
    # SELU uses expm1, which the TorchScript exporter has no symbolic for: exp(x) - 1 (x <= 0
    # there, so the difference is float rounding, ~1e-7).
    torch.onnx.register_custom_op_symbolic("aten::expm1", _expm1_symbolic, opset)
    def export(file) -> None:
        with warnings.catch_warnings():
            # The TorchScript exporter (the one that needs no onnxscript) says it is deprecated.
            warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning, UserWarning))
            torch.onnx.export(wrapper, (example,), file, dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes}, do_constant_folding=True)

    try:
        return atomic_write(path, export)
    finally:
        torch.onnx.unregister_custom_op_symbolic("aten::expm1", opset)


def _expm1_symbolic(g, x):
    one = g.op("Constant", value_t=torch.tensor(1.0, dtype=torch.float32))
    return g.op("Sub", g.op("Exp", x), one)
