"""The inference core (`dpe_hf.enhancer.Enhancer`): built once and called per photo, the same
results through the torch and the ONNX backends, and the LUT of the run that enhanced a photo."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from dpe_hf.cli import main
from dpe_hf.data.generated import generated_photo
from dpe_hf.imageio import read_image, to_float32
from dpe_hf.enhancer import Enhancer, LowPair, backend_for
from dpe_hf.export.lut import fit_lut, read_cube
from dpe_hf.export.onnx_runtime import OnnxBackend
from dpe_hf.inference import enhance
from dpe_hf.models.generator import DPEGenerator
from dpe_hf.ops.guided import downscale_long_side
from dpe_hf.torch_backend import TorchBackend
from helpers import adobe_rgb_like_icc

HAS_ONNX = importlib.util.find_spec("onnx") is not None and importlib.util.find_spec("onnxruntime") is not None
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason="needs the [export] extra (onnx, onnxruntime)")


@pytest.fixture(scope="module")
def generator() -> DPEGenerator:
    torch.manual_seed(0)
    return DPEGenerator(width=0.25, init_scale=None).eval()  # random: visibly changes photos


class CountingNet:
    """A numpy network (as an ONNX model is run) that brightens, and counts its runs."""

    def __init__(self):
        self.runs = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.runs += 1
        return x * np.float32(0.8) + np.float32(0.15)


def test_backends_are_chosen_by_the_models_kind(generator):
    assert isinstance(backend_for(generator), TorchBackend)
    numpy_net = CountingNet()
    assert isinstance(backend_for(numpy_net), OnnxBackend)
    backend = TorchBackend(generator)
    assert backend_for(backend) is backend
    assert Enhancer(backend).backend is backend
    with pytest.raises(ValueError, match="needs a PyTorch model"):
        Enhancer(numpy_net, method="tiled")
    with pytest.raises(ValueError, match="method must be one of"):
        Enhancer(generator, method="bicubic")
    with pytest.raises(ValueError, match="strength"):
        Enhancer(generator, strength=1.5)


@pytest.mark.parametrize("method", ["guided", "residual", "tiled"])
def test_built_once_called_on_several_photos(generator, method):
    enhancer = Enhancer(generator, method=method, max_side=48, strength=0.8, tile=64)
    backend = enhancer.backend
    photos = [generated_photo((90, 120), seed=1), generated_photo((40, 30), seed=2),  # the second is small
              generated_photo((70, 50), seed=3).astype(np.uint16) * 257]
    for photo in photos:
        out = enhancer(photo)
        assert out.shape == photo.shape and out.dtype == photo.dtype
        assert np.array_equal(out, enhance(generator, photo, method=method, max_side=48, strength=0.8, tile=64))
        assert np.abs(out.astype(int) - photo).max() > 0  # it did something
    pil = enhancer(Image.fromarray(photos[0]).convert("RGBA"))
    assert pil.mode == "RGBA" and np.array_equal(np.asarray(pil)[..., :3], enhancer(photos[0]))
    assert enhancer.backend is backend  # the same backend served every photo


def test_one_network_run_per_photo_pair_included():
    net = CountingNet()
    enhancer = Enhancer(net, max_side=32)
    photo = generated_photo((80, 100), seed=4)
    plain = enhancer(photo)
    assert net.runs == 1
    out, pair = enhancer.with_pair(photo)
    assert net.runs == 2 and np.array_equal(out, plain)
    assert isinstance(pair, LowPair) and pair.low_in.shape == (26, 32, 3)


@needs_onnx
@pytest.mark.parametrize("method", ["guided", "residual"])
def test_torch_and_onnx_backends_agree_within_one_level(generator, tmp_path, method):
    from dpe_hf.export.onnx import export_onnx

    path = export_onnx(generator, tmp_path / "model.onnx")
    by_torch = Enhancer(generator, method=method, max_side=64)
    by_onnx = Enhancer(OnnxBackend(path), method=method, max_side=64)
    for photo in (generated_photo((120, 160), seed=5), generated_photo((50, 40), seed=6)):
        a, b = by_torch(photo).astype(int), by_onnx(photo).astype(int)
        assert np.abs(a - b).max() <= 1
        assert np.abs(a - photo).max() > 5  # the model changes the photo
    pair_torch, pair_onnx = by_torch.with_pair(photo)[1], by_onnx.with_pair(photo)[1]
    assert np.array_equal(pair_torch.low_in, pair_onnx.low_in)
    assert np.abs(pair_torch.low_out - pair_onnx.low_out).max() <= 1e-4


@pytest.mark.parametrize("strength", [1.0, 0.6])
@pytest.mark.parametrize("method", ["guided", "tiled"])
def test_the_lut_of_the_run_is_the_lut_of_the_networks_pair(generator, strength, method):
    photo = generated_photo((100, 140), seed=7)
    enhancer = Enhancer(generator, max_side=64, strength=strength, method=method, tile=64)
    out, pair = enhancer.with_pair(photo)
    assert np.array_equal(out, enhancer(photo))
    low = to_float32(downscale_long_side(photo, 64))
    network = TorchBackend(generator).run(low)
    assert np.array_equal(pair.low_in, low)
    assert np.array_equal(pair.low_out, network if strength == 1.0 else low + np.float32(strength) * (network - low))
    np.testing.assert_array_equal(fit_lut(pair.low_in, pair.low_out, 9), fit_lut(low, pair.low_out, 9))


def test_the_pair_with_auto_exposure_starts_from_the_photo_as_given():
    photo = (generated_photo((90, 120), seed=8) // 3).astype(np.uint8)  # dark: re-exposure lifts it
    identity = Enhancer(lambda x: x, max_side=32, auto_exposure=True)
    out, pair = identity.with_pair(photo)
    assert np.array_equal(pair.low_in, to_float32(downscale_long_side(photo, 32)))
    assert pair.low_out.mean() > pair.low_in.mean() + 0.05  # the network saw the re-exposed copy
    assert out.mean() > photo.mean() + 10


def test_the_pair_is_in_the_photos_colour_space():
    def red(x):  # answers sRGB's pure red everywhere
        out = np.zeros_like(x)
        out[:, 0] = 1.0
        return out

    photo = generated_photo((60, 80), seed=9)
    _, plain = Enhancer(red, max_side=32).with_pair(photo)
    _, tagged = Enhancer(red, max_side=32).with_pair(photo, icc_profile=adobe_rgb_like_icc())
    assert np.array_equal(tagged.low_in, plain.low_in)  # the photo's own numbers
    assert np.array_equal(plain.low_out[0, 0] * 255, (255, 0, 0))
    assert np.array_equal(np.round(tagged.low_out[0, 0] * 255), (219, 0, 0))  # sRGB red in the photo's space


def test_save_lut_writes_the_lut_of_the_enhancing_run(generator, tmp_path):
    model = tmp_path / "model"
    generator.save_pretrained(model)
    src = tmp_path / "p.png"
    photo = generated_photo((90, 120), seed=10)
    Image.fromarray(photo).save(src)
    out = tmp_path / "out"
    assert main(["enhance", str(src), "-o", str(out), "--model", str(model), "--max-side", "48",
                 "--save-lut", "--strength", "0.7"]) == 0
    enhanced, pair = Enhancer(generator, max_side=48, strength=0.7).with_pair(photo)
    assert np.array_equal(read_image(out / "p_enhanced.png")[0], enhanced)
    np.testing.assert_allclose(read_cube(out / "p.cube"), fit_lut(pair.low_in, pair.low_out), atol=1e-6)
