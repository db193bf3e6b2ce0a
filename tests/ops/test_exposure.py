"""Auto exposure (dpe_hf.ops.exposure) against scikit-image's sRGB decoding and hand-computed
values, and its effect through `enhance`: two exposures of one photo come out alike."""

import numpy as np
import pytest

from dpe_hf.ops.exposure import (
    AUTO_EXPOSURE_KEY,
    LUMINANCE_FLOOR,
    MAX_GAIN,
    apply_exposure_gain,
    even_exposure,
    exposure_gain,
    log_average_luminance,
)
from helpers import REPO

EXAMPLES = REPO / "examples"


def _encode(linear: np.ndarray, dtype) -> np.ndarray:
    """Linear RGB in [0, 1] -> sRGB code values, by the IEC 61966-2-1 formula."""
    v = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)
    scale = np.iinfo(dtype).max
    return np.round(v * scale).astype(dtype)


def _decode(codes: np.ndarray) -> np.ndarray:
    """sRGB code values -> linear RGB in [0, 1], the inverse formula."""
    v = codes / np.iinfo(codes.dtype).max
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def test_log_average_luminance_matches_skimage():
    from skimage.color import rgb2xyz

    rng = np.random.default_rng(1)
    image = (rng.random((40, 50, 3)) ** 2 * 255).astype(np.uint8)
    y = rgb2xyz(image)[..., 1]  # skimage decodes sRGB and takes Y with its own (4-digit) matrix
    expected = np.exp(np.log(y + LUMINANCE_FLOOR).mean()) - LUMINANCE_FLOOR
    assert log_average_luminance(image) == pytest.approx(expected, rel=1e-3)


def test_uniform_grey_by_hand():
    # code 128: ((128/255 + 0.055) / 1.055) ** 2.4 = 0.21586 linear
    grey = np.full((8, 8, 3), 128, np.uint8)
    assert log_average_luminance(grey) == pytest.approx(0.21586, abs=1e-5)
    assert exposure_gain(grey) == pytest.approx(AUTO_EXPOSURE_KEY / 0.21586, rel=1e-4)
    # 0.088 linear is 1.055 * 0.088 ** (1 / 2.4) - 0.055 = 0.3282 encoded, code 84 (83.7)
    assert (even_exposure(grey) == 84).all()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_two_exposures_of_a_scene_become_one(dtype):
    rng = np.random.default_rng(2)
    scene = 0.02 + rng.random((64, 48, 3)) * 0.2  # linear light, well above the floor; 4x does not clip
    dark, bright = _encode(scene, dtype), _encode(scene * 4, dtype)
    assert log_average_luminance(bright) / log_average_luminance(dark) == pytest.approx(4, rel=0.02)
    a, b = even_exposure(dark), even_exposure(bright)
    assert a.dtype == b.dtype == dtype
    assert log_average_luminance(a) == pytest.approx(AUTO_EXPOSURE_KEY, rel=0.02)
    # what is left is the two encodings' rounding, carried through the gain
    scale = np.iinfo(dtype).max
    assert np.abs(a.astype(float) - b.astype(float)).mean() / scale < 2e-3
    assert np.abs(dark.astype(float) - bright.astype(float)).mean() / scale > 0.1


def test_gain_is_limited_and_white_clips():
    black = np.zeros((4, 4, 3), np.uint8)
    assert exposure_gain(black) == MAX_GAIN
    assert (even_exposure(black) == 0).all()
    white = np.full((4, 4, 3), 65535, np.uint16)
    assert exposure_gain(white) == pytest.approx(AUTO_EXPOSURE_KEY)  # key / 1.0
    assert (apply_exposure_gain(white, 3.0) == 65535).all()  # brighter than white clips at white


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="uint8 or uint16"):
        even_exposure(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="gain must be positive"):
        apply_exposure_gain(np.zeros((4, 4, 3), np.uint8), 0.0)
    with pytest.raises(ValueError, match="key must be in"):
        exposure_gain(np.zeros((4, 4, 3), np.uint8), key=1.5)


@pytest.fixture(scope="module")
def bundled():
    from dpe_hf.hub import load_generator

    return load_generator("dpe-expertC")


def _mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(float) - b.astype(float)).mean())


def test_enhance_with_auto_exposure_brings_two_exposures_together(bundled):
    from dpe_hf.imageio import read_image
    from dpe_hf.inference import enhance

    photo = read_image(EXAMPLES / "fig_bowl.jpg")[0]
    dark = _encode(_decode(photo) / 4, np.uint8)  # the same photo two stops under
    plain = [enhance(bundled, x) for x in (photo, dark)]
    even = [enhance(bundled, x, auto_exposure=True) for x in (photo, dark)]
    # the model alone keeps the darker shot darker; re-exposed first, the two nearly agree
    assert _mean_abs(*plain) > 10 * _mean_abs(*even)
    assert _mean_abs(*even) < 2  # of 255; what remains is what the dark shot lost to rounding
    # strength 0 is the photo as given, not the re-exposed one
    assert np.array_equal(enhance(bundled, dark, auto_exposure=True, strength=0.0), dark)


def test_enhance_refuses_auto_exposure_for_tensors(bundled):
    import torch

    from dpe_hf.inference import enhance

    with pytest.raises(ValueError, match="not a tensor"):
        enhance(bundled, torch.zeros(3, 32, 32), auto_exposure=True)


def test_the_torch_free_path_re_exposes_too():
    from dpe_hf.enhancer import enhance

    rng = np.random.default_rng(3)
    image = (rng.random((300, 400, 3)) * 120).astype(np.uint8)  # dark: the gain is well above 1
    identity_network = lambda x: x  # noqa: E731  (a numpy generator, as an ONNX model is run)
    # the network changes nothing, so the result is the re-exposed photo, carried to full size exactly
    assert np.array_equal(enhance(identity_network, image, max_side=128, auto_exposure=True),
                          even_exposure(image))
    assert np.array_equal(enhance(identity_network, image, auto_exposure=True, strength=0.0), image)
