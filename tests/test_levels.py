"""Auto-levels mixed into a network's result (`Enhancer(levels=...)`, `dpe enhance --levels`)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.exposure import rescale_intensity

from dpe_hf.enhancer import Enhancer
from dpe_hf.imageio import to_float32
from dpe_hf.ops.guided import downscale_long_side
from dpe_hf.ops.levels import apply_levels, levels_bounds
from helpers import photo


def identity_network(batch: np.ndarray) -> np.ndarray:
    return batch


def darkening_network(batch: np.ndarray) -> np.ndarray:
    return batch * np.float32(0.5)


def test_levels_match_an_independent_percentile_stretch():
    x = to_float32(photo(40, 56, seed=3))
    expected = np.stack([rescale_intensity(x[..., c], in_range=tuple(np.percentile(x[..., c], (0.5, 99.5))),
                                           out_range=(0.0, 1.0)) for c in range(3)], axis=-1)
    assert np.allclose(apply_levels(x, levels_bounds(x)), expected, atol=1e-6)


@pytest.mark.parametrize("weight", [0.0, 0.5, 1.0])
def test_a_small_photo_is_the_weighted_mix_of_the_network_and_auto_levels(weight):
    image = photo(40, 56, seed=1)  # smaller than max_side: the network runs at full size
    x = to_float32(image)
    out = to_float32(Enhancer(darkening_network, levels=weight)(image))
    expected = (1 - weight) * x * 0.5 + weight * apply_levels(x, levels_bounds(x))
    assert np.abs(out - expected).max() <= 0.5 / 255 + 1e-6  # rounding to 8 bits


def test_a_large_photo_carries_the_mix_to_full_size_with_every_method():
    image = photo(200, 280, seed=2)
    plain = to_float32(Enhancer(identity_network, max_side=64)(image))
    mixed = to_float32(Enhancer(identity_network, max_side=64, levels=1.0)(image))
    # the stretch is decided on the copy the network sees, and applied to the whole photo
    target = apply_levels(to_float32(image), levels_bounds(to_float32(downscale_long_side(image, 64))))
    # the identity network leaves the photo as it is; with levels=1 the result is the stretch
    assert np.abs(plain - to_float32(image)).mean() < 0.01
    assert np.abs(mixed - target).mean() < 0.01 < 0.05 < np.abs(plain - target).mean()
    residual = to_float32(Enhancer(identity_network, max_side=64, levels=1.0, method="residual")(image))
    assert np.abs(residual - target).mean() < 0.03  # the upsampled residual blurs the edit across edges


def test_the_lut_of_the_run_carries_the_mix():
    image = photo(200, 280, seed=4)
    _, pair = Enhancer(identity_network, max_side=64, levels=0.5).with_pair(image)
    look = Enhancer(identity_network, max_side=64, levels=0.5).look(image)
    assert np.array_equal(pair.low_out, look.low_out)
    assert np.abs(pair.low_out - pair.low_in).mean() > 0.005  # the stretch moved it


def test_levels_outside_zero_to_one_are_refused():
    with pytest.raises(ValueError, match="levels must be in"):
        Enhancer(identity_network, levels=1.5)


# -- a model's own weight (`DPEGenerator(levels=)`, saved in its config.json) ----------------


def test_a_model_brings_its_own_weight_and_an_explicit_one_wins(tmp_path):
    import torch

    from dpe_hf.inference import enhance
    from dpe_hf.models.generator import DPEGenerator

    torch.manual_seed(0)
    DPEGenerator(width=0.25, levels=0.5).save_pretrained(tmp_path / "m")
    model = DPEGenerator.from_pretrained(str(tmp_path / "m"))
    assert model.levels == 0.5
    plain = DPEGenerator(width=0.25)
    plain.load_state_dict(model.state_dict())
    image = photo(80, 120, seed=2)
    own = Enhancer(model, max_side=64)(image)
    assert np.array_equal(own, Enhancer(plain, max_side=64, levels=0.5)(image))
    assert np.array_equal(Enhancer(model, max_side=64, levels=0.0)(image), Enhancer(plain, max_side=64)(image))
    assert not np.array_equal(own, Enhancer(plain, max_side=64)(image))
    # tensors too, with the float residual method that otherwise skips the core
    x = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    y = enhance(model, x, max_side=64, method="residual")
    expected = Enhancer(plain, max_side=64, method="residual", levels=0.5)(image).astype(np.float32) / 255
    assert np.abs(y.permute(1, 2, 0).numpy() - expected).max() <= 1 / 255


def test_a_model_with_a_weight_outside_zero_to_one_is_refused():
    from dpe_hf.models.generator import DPEGenerator

    with pytest.raises(ValueError, match="levels must be in"):
        DPEGenerator(width=0.25, levels=-0.1)


def test_the_bundled_onnx_copy_brings_the_bundled_weight():
    import json

    from dpe_hf.batch import load_model
    from dpe_hf.hub import bundled_models

    config = json.loads((bundled_models()["dpe-expertC"] / "config.json").read_text())
    assert load_model(None, "cpu", "onnx").levels == config.get("levels", 0.0)
    assert load_model(None, "cpu", "torch").levels == config.get("levels", 0.0)


def test_auto_exposure_leaves_the_models_own_weight_out_unless_asked():
    from dpe_hf.models.generator import DPEGenerator

    model = DPEGenerator(width=0.25, levels=0.5)
    assert Enhancer(model).levels == 0.5
    assert Enhancer(model, auto_exposure=True).levels == 0.0
    assert Enhancer(model, auto_exposure=True, levels=0.5).levels == 0.5
