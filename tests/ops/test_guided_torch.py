"""dpe_hf.ops.guided_torch: the bilateral grid's fit and full-size pass on a torch device, run here
on the CPU against the numpy/OpenCV implementation that the CPU path uses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dpe_hf.data.generated import generated_photo
from dpe_hf.enhancer import Enhancer
from dpe_hf import DPEGenerator
from dpe_hf.ops import guided as G
from dpe_hf.ops import guided_torch as GT


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return generated_photo((700, 1030), seed=5)  # neither side a multiple of the fit's 4 px blocks


def _look(x: np.ndarray) -> np.ndarray:
    """A local, colour-dependent edit: the grid has work to do in every cell."""
    return np.clip(x ** 0.75 * np.array([1.08, 1.0, 0.9]) + 0.03 * np.sin(7 * x[..., :1]), 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def pair(photo):
    low = G.downscale_long_side(photo, 512).astype(np.float32) / 255
    return low, _look(low)


@pytest.mark.parametrize("grid", [None, (9, 13, 5)])
def test_the_fit_is_the_numpy_fit(pair, grid):
    low, out = pair
    ours = GT.fit_bilateral_grid(torch.from_numpy(low), torch.from_numpy(out), grid=grid)
    assert ours.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), G.fit_bilateral_grid(low, out, grid=grid), atol=1e-6)


def test_the_slice_is_opencvs_within_a_level(photo, pair):
    grid = G.fit_bilateral_grid(*pair)
    reference = G.apply_bilateral_grid(photo, grid)
    ours = GT.slice_bilateral_grid(photo, grid, "cpu")
    assert ours.dtype == np.uint8 and ours.shape == photo.shape
    diff = np.abs(ours.astype(np.int16) - reference)
    # OpenCV's remap reads coordinates to 1/32 of a texel, this pass in float32: rare 1-level ties
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01
    # the edit is real: the pass is not near the identity
    assert np.abs(ours.astype(np.int16) - photo).mean() > 5


def test_sixteen_bit_photos_and_bands_of_rows(photo, pair):
    grid = G.fit_bilateral_grid(*pair)
    deep = photo[:300, :410].astype(np.uint16) * 257
    ours = GT.slice_bilateral_grid(deep, grid, "cpu")
    assert ours.dtype == np.uint16
    assert np.abs(ours.astype(np.int64) - G.apply_bilateral_grid(deep, grid)).max() <= 257  # one 8-bit level
    # bands are a memory bound, not a change: 7 rows at a time gives the same bits
    np.testing.assert_array_equal(GT.slice_bilateral_grid(deep, grid, "cpu", band_pixels=7 * 410), ours)


@pytest.mark.parametrize("strength", [1.0, 0.4])
def test_guided_upsample_matches_the_cpu_method(photo, pair, strength):
    low, out = pair
    ours = GT.guided_upsample(photo, low, out, "cpu", strength=strength)
    reference = G.guided_upsample(photo, low, out, strength=strength)
    assert np.abs(ours.astype(np.int16) - reference).max() <= 1


def test_a_bad_grid_is_refused(photo):
    with pytest.raises(ValueError, match="grid must have shape"):
        GT.slice_bilateral_grid(photo, torch.zeros(4, 4, 3, 3, 3), "cpu")


def test_the_enhancer_carries_on_the_networks_cuda_device_only(photo):
    generator = DPEGenerator(width=0.25, init_scale=None).eval()
    enhancer = Enhancer(generator, levels=0.5)
    assert enhancer.carry_device is None  # the CPU keeps numpy and OpenCV
    reference = enhancer(photo)
    # the route a CUDA network takes, run here on the CPU
    enhancer.carry_device = torch.device("cpu")
    on_device = enhancer(photo)
    assert np.abs(on_device.astype(np.int16) - reference).max() <= 1
    assert np.abs(reference.astype(np.int16) - photo).mean() > 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_carry_is_the_cpus(photo, pair):
    low, out = pair
    on_gpu = GT.guided_upsample(photo, low, out, "cuda", strength=0.8)
    assert np.abs(on_gpu.astype(np.int16) - G.guided_upsample(photo, low, out, strength=0.8)).max() <= 1
    generator = DPEGenerator(width=0.25, init_scale=None).eval().to("cuda")
    assert Enhancer(generator).carry_device.type == "cuda"
