"""`dpe enhance --model model.onnx` runs without importing torch (start-up time), and gives the
PyTorch model's result (issue 7)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dpe_hf.cli import main
from dpe_hf.data.generated import generated_photo
from dpe_hf.imageio import read_image, write_image
from dpe_hf.models.generator import DPEGenerator
from helpers import TORCH_PROBE

HAS_ONNX = importlib.util.find_spec("onnx") is not None and importlib.util.find_spec("onnxruntime") is not None
pytestmark = pytest.mark.skipif(not HAS_ONNX, reason="needs the [export] extra (onnx, onnxruntime)")



@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    from dpe_hf.export.onnx import export_onnx

    torch.manual_seed(0)
    generator = DPEGenerator(width=0.25, init_scale=None).eval()  # random: changes the image
    folder = tmp_path_factory.mktemp("models")
    generator.save_pretrained(folder / "torch")
    return folder / "torch", export_onnx(generator, folder / "model.onnx")


def _run_cli(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", TORCH_PROBE, *args], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.mark.parametrize("method", ["guided", "residual"])
def test_enhance_with_onnx_does_not_import_torch(models, tmp_path, method):
    torch_dir, onnx_path = models
    photo = tmp_path / "p0.png"
    write_image(photo, generated_photo((150, 200), seed=3))
    args = [str(photo), "--max-side", "64", "--method", method]  # 200 px > 64: the upsampling runs

    done = _run_cli(["enhance", *args, "-o", str(tmp_path / "onnx"), "--model", str(onnx_path)])
    assert done.returncode == 0, done.stderr
    assert "TORCH_IMPORTED False" in done.stdout, done.stdout

    assert main(["enhance", *args, "-o", str(tmp_path / "torch"), "--model", str(torch_dir)]) == 0
    a = read_image(tmp_path / "onnx" / "p0_enhanced.png")[0].astype(int)
    b = read_image(tmp_path / "torch" / "p0_enhanced.png")[0].astype(int)
    assert a.shape == b.shape == (150, 200, 3)
    assert np.abs(a - b).max() <= 1
    assert np.abs(a - read_image(photo)[0].astype(int)).max() > 5  # the model did something
