"""The baselines a model is measured against (dpe_hf.baselines), each checked against a reference
computed here another way: a numpy percentile stretch and scikit-image's rescale_intensity for
auto-levels, PIL's histogram-cut rule written out for autocontrast, colour maps known exactly
for the fixed LUT, and scikit-image's match_histograms and a known barycentre for the tone match."""

import numpy as np
import pytest
from skimage.exposure import rescale_intensity

from dpe_hf.baselines import FixedLut, ToneMatch, auto_levels, autocontrast, identity
from helpers import photo


def stretched(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """Each channel's `low` and `high` percentiles mapped to 0 and 1, clipped, in float64."""
    x = image.astype(np.float64) / np.iinfo(image.dtype).max
    out = np.empty_like(x)
    for c in range(3):
        lo, hi = np.percentile(x[..., c], [low, high])
        out[..., c] = np.clip((x[..., c] - lo) / (hi - lo), 0, 1)
    return out


def test_identity_returns_its_input():
    image = photo(8, 6)
    assert identity(image) is image


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_auto_levels_is_a_per_channel_percentile_stretch(dtype):
    image = photo(40, 56, seed=3, dtype=dtype)
    out = auto_levels(image)
    assert out.dtype == np.float32 and out.shape == image.shape
    np.testing.assert_allclose(out, stretched(image, 0.5, 99.5), atol=2e-6)
    np.testing.assert_allclose(auto_levels(image, 5, 95), stretched(image, 5, 95), atol=2e-6)
    # the stretch reaches both ends in every channel
    assert (out.min(axis=(0, 1)) == 0).all() and (out.max(axis=(0, 1)) == 1).all()


def test_auto_levels_agrees_with_scikit_image():
    image = photo(30, 20, seed=4)
    x = image.astype(np.float64) / 255
    expected = np.stack([rescale_intensity(x[..., c], in_range=tuple(np.percentile(x[..., c], [0.5, 99.5])),
                                           out_range=(0.0, 1.0)) for c in range(3)], axis=-1)
    np.testing.assert_allclose(auto_levels(image), expected, atol=2e-6)


def test_auto_levels_leaves_a_flat_channel_at_zero_instead_of_dividing_by_zero():
    image = photo(10, 12, seed=5)
    image[..., 1] = 77
    out = auto_levels(image)
    assert np.isfinite(out).all() and (out[..., 1] == 0).all() and out[..., 0].max() == 1


def autocontrast_by_hand(image: np.ndarray, cutoff: float) -> np.ndarray:
    """PIL's rule per channel: drop `cutoff` % of the pixels (rounded down) from each end of the
    histogram, then map the lowest and highest remaining levels linearly to 0 and 255, truncating."""
    out = np.empty_like(image)
    for c in range(3):
        values = np.sort(image[..., c].ravel())
        cut = len(values) * cutoff // 100
        lo, hi = int(values[int(cut)]), int(values[len(values) - 1 - int(cut)])
        scale = 255.0 / (hi - lo)
        table = np.clip([int(v * scale - lo * scale) for v in range(256)], 0, 255)
        out[..., c] = table[image[..., c]]
    return out


def test_autocontrast_is_pils_histogram_cut_written_out():
    image = (photo(40, 50, seed=6).astype(np.int32) * 3 // 5 + 40).astype(np.uint8)  # levels 46..193 or so
    out = autocontrast(image)
    assert out.dtype == np.uint8 and out.shape == image.shape
    np.testing.assert_array_equal(out, autocontrast_by_hand(image, 0.5))
    np.testing.assert_array_equal(autocontrast(image, cutoff=5), autocontrast_by_hand(image, 5))
    assert (out.min(axis=(0, 1)) <= 2).all() and (out.max(axis=(0, 1)) >= 253).all()


def test_autocontrast_rounds_sixteen_bit_input_to_eight_bits_first():
    wide = photo(20, 24, seed=7, dtype=np.uint16)
    rounded = np.round(wide / 257).astype(np.uint8)
    np.testing.assert_array_equal(autocontrast(wide), autocontrast(rounded))


# -- fixed LUT --------------------------------------------------------------------------------------


def colour_grid(levels: int) -> np.ndarray:
    """Every colour of a levels^3 lattice over 0..255, as an image (levels^2 x levels)."""
    axis = np.round(np.linspace(0, 255, levels)).astype(np.uint8)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(levels * levels, levels, 3)


def rotate_and_flatten(image: np.ndarray) -> np.ndarray:
    """A known look: channels rotated (r, g, b) <- (g, b, r), contrast halved around mid-grey."""
    x = image.astype(np.float64) / 255
    return np.round((x[..., [1, 2, 0]] * 0.5 + 0.25) * 255).astype(np.uint8)


def test_fixed_lut_of_untouched_photos_is_the_identity():
    photos = [photo(24, 32, seed=s) for s in range(3)]
    lut = FixedLut.fit((p, p) for p in photos)
    unseen = photo(20, 20, seed=9)
    np.testing.assert_array_equal(lut(unseen), unseen)


def test_fixed_lut_reproduces_a_known_colour_map_on_colours_it_never_saw():
    grid = colour_grid(33)
    lut = FixedLut.fit([(grid, rotate_and_flatten(grid))], size=17)
    assert lut.lut.shape == (17, 17, 17, 3)
    unseen = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    error = np.abs(lut(unseen).astype(int) - rotate_and_flatten(unseen).astype(int))
    assert error.mean() < 0.6 and error.max() <= 3  # the smoothness term bends the lattice's faces a little
    assert lut(unseen.astype(np.uint16) * 257).dtype == np.uint16


def test_fixed_lut_is_the_average_look_of_its_pairs():
    # the same photos retouched two ways, weighing alike: the least-squares fit is their mean
    grid = colour_grid(17)
    x = grid.astype(np.float32) / 255
    darker, warmer = x * 0.6, np.clip(x * np.float32([1.2, 1.0, 0.7]), 0, 1)
    both = FixedLut.fit([(grid, darker), (grid, warmer)], size=9)
    mean = FixedLut.fit([(grid, (darker + warmer) / 2)], size=9)
    np.testing.assert_allclose(both.lut, mean.lut, atol=1e-5)
    # a photo counts once whatever its size: a pair repeated in a bigger copy changes nothing
    bigger = np.repeat(grid, 2, axis=0)
    resized = FixedLut.fit([(bigger, np.repeat(darker, 2, axis=0)), (grid, warmer)], size=9)
    np.testing.assert_allclose(resized.lut, mean.lut, atol=1e-5)


def test_tone_match_agrees_with_scikit_image_histogram_matching():
    from skimage.exposure import match_histograms

    rng = np.random.default_rng(0)
    source = np.clip(rng.beta(2, 5, (60, 80, 3)) + np.linspace(0, 0.1, 80)[None, :, None], 0, 1)
    reference = np.clip(rng.beta(4, 2, (50, 70, 3)) * np.array([1.0, 0.9, 0.8]), 0, 1)
    ours = ToneMatch.fit([reference])(source)
    theirs = match_histograms(source, reference, channel_axis=-1)
    assert ours.dtype == np.float32 and ours.shape == source.shape
    # 100 quantiles between 0.5 and 99.5 % against scikit-image's every value: the tails differ a little
    assert np.abs(ours - theirs).mean() < 0.005 and np.percentile(np.abs(ours - theirs), 99) < 0.03


def test_tone_match_averages_quantile_curves_not_histograms():
    # two photos that differ by a shift of 0.2: the barycentre is the photo shifted by 0.1, where
    # pooling their pixels would give a wider, two-humped histogram
    rng = np.random.default_rng(1)
    a = rng.uniform(0.2, 0.5, (40, 40, 3))
    prior = ToneMatch.fit([a, a + 0.2])
    np.testing.assert_allclose(prior.quantiles, np.percentile(a.reshape(-1, 3) + 0.1, ToneMatch.PERCENTILES, axis=0),
                               atol=1e-9)
    # a photo matched to a set of itself comes back, up to the 0.5 % tails
    out = ToneMatch.fit([a])(a)
    inner = (a > np.percentile(a, 1)) & (a < np.percentile(a, 99))
    np.testing.assert_allclose(out[inner], a[inner], atol=1e-3)
    with pytest.raises(ValueError, match="at least one image"):
        ToneMatch.fit([])
