"""The bundled checkpoints ship an ONNX copy (`model.onnx`) that `dpe enhance` runs on a CPU
without importing torch: it must be the same network as the weights beside it, and give the
torch path's output within one level (issue 20)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dpe_hf.batch import load_model
from dpe_hf.cli import main
from dpe_hf.data.generated import generated_photo
from dpe_hf.errors import ModelLoadError
from dpe_hf.export.onnx_runtime import OnnxGenerator
from dpe_hf.hub import bundled_models, load_generator
from dpe_hf.imageio import read_image, write_image
from dpe_hf.model_spec import BUNDLED_ONNX, bundled_onnx
from helpers import TORCH_PROBE

BUNDLED = sorted(bundled_models())



@pytest.mark.parametrize("name", BUNDLED)
def test_onnx_copy_is_the_bundled_network(name):
    """A retrained checkpoint whose model.onnx was not exported again fails here."""
    onnx = bundled_onnx(name)
    assert onnx is not None and onnx.name == BUNDLED_ONNX
    x = np.stack([generated_photo((96, 128), seed=s).transpose(2, 0, 1) for s in (1, 2)]).astype(np.float32) / 255
    with torch.inference_mode():
        expected = load_generator(name)(torch.from_numpy(x)).numpy()
    got = OnnxGenerator(onnx, threads=1).run(x)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-4


def test_default_enhance_on_cpu_runs_without_torch_and_matches_torch(tmp_path):
    photo = tmp_path / "p0.jpg"
    write_image(photo, generated_photo((300, 400), seed=5))
    # 400 px > 128: the guided carry runs; PNG, since JPEG's quantisation can turn one level into several
    args = ["enhance", str(photo), "--max-side", "128", "--device", "cpu", "--ext", "png"]
    done = subprocess.run([sys.executable, "-c", TORCH_PROBE, *args, "-o", str(tmp_path / "auto")],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "TORCH_IMPORTED False" in done.stdout, done.stdout

    assert main([*args, "-o", str(tmp_path / "torch"), "--runtime", "torch"]) == 0
    a = read_image(tmp_path / "auto" / "p0_enhanced.png")[0].astype(int)
    b = read_image(tmp_path / "torch" / "p0_enhanced.png")[0].astype(int)
    assert np.abs(a - read_image(photo)[0].astype(int)).mean() > 2  # the model changed the photo
    assert np.abs(a - b).max() <= 1


def test_the_sessions_threads_are_the_photos_share():
    """`dpe enhance` on several photos runs two at a time, each network run on its share of the threads."""
    for threads in (1, 2):
        generator = load_model(None, "cpu", "auto", threads)
        assert isinstance(generator, OnnxGenerator)
        assert generator.session.get_session_options().intra_op_num_threads == threads


def test_runtime_choice():
    assert isinstance(load_model(None, "cpu", "auto"), OnnxGenerator)
    assert isinstance(load_model("dpe-expertC", "cpu", "onnx"), OnnxGenerator)
    assert isinstance(load_model(None, "cpu", "torch"), torch.nn.Module)
    with pytest.raises(ValueError, match="runtime must be one of"):
        load_model(None, "cpu", "tensorrt")
    with pytest.raises(ValueError, match="runs on the CPU"):
        load_model(None, "cuda", "onnx")


def test_runtime_onnx_needs_an_onnx_copy(tmp_path):
    folder = tmp_path / "mine"
    load_generator("dpe-expertC").save_pretrained(folder)
    with pytest.raises(ModelLoadError, match="no ONNX copy"):
        load_model(str(folder), "cpu", "onnx")
    photo = tmp_path / "p.png"
    write_image(photo, generated_photo((40, 50), seed=1))
    assert main(["enhance", str(photo), "-o", str(tmp_path / "o"), "--model", str(folder), "--runtime", "onnx"]) == 2


def test_a_local_folder_shadows_the_bundled_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert bundled_onnx("dpe-expertC") is not None
    load_generator("dpe-expertC").save_pretrained(Path("dpe-expertC"))  # the user's own model of that name
    assert bundled_onnx("dpe-expertC") is None
    assert bundled_onnx("./dpe-expertC") is None


def test_tiled_keeps_torch(tmp_path):
    photo = tmp_path / "p.png"
    write_image(photo, generated_photo((200, 260), seed=7))
    assert main(["enhance", str(photo), "-o", str(tmp_path / "o"), "--method", "tiled", "--tile", "128",
                 "--max-side", "128", "--device", "cpu"]) == 0
    assert main(["enhance", str(photo), "-o", str(tmp_path / "o2"), "--method", "tiled", "--tile", "128",
                 "--runtime", "onnx"]) == 2  # an ONNX graph cannot share one look across tiles
