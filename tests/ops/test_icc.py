"""Photos tagged with a non-sRGB ICC profile: the network sees sRGB, the result is written in the
photo's own colour space with its own profile; untagged and sRGB photos are untouched by this.

The wide-gamut profile is the hand-built Adobe-RGB-like one of tests/helpers.py. In it,
sRGB's pure red (255, 0, 0) is (219, 0, 0) (LittleCMS, relative colorimetric).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

import dpe_hf.cli.enhance
from dpe_hf.cli import main
from dpe_hf.imageio import read_image
from dpe_hf.enhancer import Enhancer
from dpe_hf.inference import enhance, enhance_array
from dpe_hf.ops.guided import downscale_long_side
from dpe_hf.ops.icc import srgb_converter
from helpers import adobe_rgb_like_icc, photo

ADOBE = adobe_rgb_like_icc()
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
SRGB_RED_IN_ADOBE = (219, 0, 0)


class ConstantNet(torch.nn.Module):
    """Answers one sRGB colour everywhere and keeps what it was shown."""

    def __init__(self, rgb=(1.0, 0.0, 0.0)):
        super().__init__()
        self.rgb = torch.nn.Parameter(torch.tensor(rgb), requires_grad=False)
        self.seen: torch.Tensor | None = None

    def forward(self, x, global_feature=None):
        self.seen = x.clone()
        return self.rgb.view(1, 3, 1, 1).expand_as(x).clone()

    def encode_global(self, x):
        return None


def littlecms(image, source: bytes, target: bytes) -> np.ndarray:
    """8-bit colours (H x W x 3, or one colour) through LittleCMS, as the reference."""
    array = np.asarray(image, np.uint8)
    profiles = [ImageCms.ImageCmsProfile(io.BytesIO(p)) for p in (source, target)]
    out = ImageCms.profileToProfile(Image.fromarray(array.reshape(-1, 1, 3)), *profiles,
                                    renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    return np.asarray(out).reshape(array.shape).astype(int)


def test_which_profiles_convert():
    assert srgb_converter(None) is None and srgb_converter(b"") is None
    assert srgb_converter(SRGB) is None  # sRGB: nothing to do
    assert srgb_converter(b"not an icc profile" * 10) is None  # unusable: taken as sRGB, as before
    assert srgb_converter(ADOBE) is not None
    assert tuple(littlecms((255, 0, 0), SRGB, ADOBE)) == SRGB_RED_IN_ADOBE


@pytest.mark.parametrize("max_side", [512, 24])  # the network at full size; the guided carry
def test_network_sees_srgb_and_result_is_in_the_photos_space(max_side):
    colour = (150, 90, 40)
    image = np.empty((40, 56, 3), np.uint8)
    image[:] = colour
    image[::2, ::3] = (60, 140, 200)  # some texture, so the guided fit has colours to work with
    net = ConstantNet()
    out = enhance_array(net, image, icc_profile=ADOBE, max_side=max_side)
    seen = np.round(net.seen[0].permute(1, 2, 0).numpy() * 255).astype(int)
    low = downscale_long_side(image, max_side)
    assert np.abs(seen - littlecms(low, ADOBE, SRGB)).max() <= 1
    assert np.abs(seen - low).max() > 10  # not the photo's own numbers
    assert np.abs(out.astype(int) - SRGB_RED_IN_ADOBE).max() <= 2


def test_strength_zero_gives_the_wide_gamut_photo_back():
    image = photo(60, 90, seed=2)
    for method in ("guided", "residual", "tiled"):
        out = enhance_array(ConstantNet(), image, icc_profile=ADOBE, strength=0.0, max_side=32, method=method,
                            tile=64)
        assert np.array_equal(out, image), method
    tiled = enhance_array(ConstantNet(), image, icc_profile=ADOBE, max_side=32, method="tiled", tile=64)
    assert np.abs(tiled.astype(int) - SRGB_RED_IN_ADOBE).max() <= 1


def test_untagged_and_srgb_photos_are_enhanced_as_before(model):  # noqa: F811
    from dpe_hf.hub import load_generator

    generator = load_generator(model)
    image = photo(50, 70, seed=3)
    before = enhance_array(generator, image, max_side=32)
    assert np.array_equal(enhance_array(generator, image, max_side=32, icc_profile=SRGB), before)
    pil = enhance(generator, Image.fromarray(image), max_side=32)
    assert np.array_equal(np.asarray(pil), before) and "icc_profile" not in pil.info


def test_pil_images_bring_and_keep_their_profile():
    image = Image.fromarray(photo(30, 40, seed=4))
    image.info["icc_profile"] = ADOBE
    out = enhance(ConstantNet(), image)
    assert out.info["icc_profile"] == ADOBE
    assert np.abs(np.asarray(out, dtype=int) - SRGB_RED_IN_ADOBE).max() <= 1


def test_the_torch_free_path_converts_too():
    def red(x):  # an ONNX-like numpy generator
        out = np.zeros_like(x)
        out[:, 0] = 1.0
        return out

    out = Enhancer(red)(photo(30, 40, seed=5), icc_profile=ADOBE)
    assert np.abs(out.astype(int) - SRGB_RED_IN_ADOBE).max() <= 1


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif"])
def test_dpe_enhance_writes_the_photos_space_with_its_profile(tmp_path, monkeypatch, suffix):
    monkeypatch.setattr(dpe_hf.cli.enhance, "load_model", lambda spec, device="cpu", runtime="torch", threads=None: ConstantNet())
    for name, icc, expected in (("adobe", ADOBE, SRGB_RED_IN_ADOBE), ("srgb", SRGB, (255, 0, 0)),
                                ("plain", None, (255, 0, 0))):
        src = tmp_path / f"{name}{suffix}"
        Image.fromarray(photo(40, 56)).save(src, **({"icc_profile": icc} if icc else {}))
        assert main(["enhance", str(src), "-o", str(tmp_path / "out")]) == 0
        written, meta = read_image(tmp_path / "out" / f"{name}_enhanced{suffix}")
        assert meta.icc_profile == icc
        assert np.abs(written.astype(int) - expected).max() <= 1, name
