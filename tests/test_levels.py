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
