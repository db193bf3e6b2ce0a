"""dpe_hf.ops.color against scikit-image's sRGB -> XYZ -> Lab conversion."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2lab, rgb2xyz
from skimage.color.colorconv import rgb_from_xyz

from dpe_hf.ops.color import linear_rgb_to_xyz, linear_to_srgb, rgb_to_lab, srgb_to_linear

FUNCS = [srgb_to_linear, linear_rgb_to_xyz, rgb_to_lab]


def _rgb(h: int = 9, w: int = 7, seed: int = 0) -> np.ndarray:
    """(H, W, 3) float64 in [0, 1], with the corner cases the piecewise curves care about."""
    img = np.random.default_rng(seed).random((h, w, 3))
    img[0, :4] = [[0, 0, 0], [1, 1, 1], [0.04045] * 3, [0.5, 0.5, 0.5]]
    img[1, :3] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    img[2, :3] = [[0.01, 0.0, 0.03], [0.02, 0.02, 0.02], [0.9, 0.0, 0.9]]
    return img


def _chw(img: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1).to(dtype)


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).double().numpy()


@pytest.mark.parametrize("fn", FUNCS)
class TestShapesAndInputs:
    @pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 4, 5), (2, 1, 3, 1, 1)])
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_shape_and_dtype_kept(self, fn, shape, dtype):
        out = fn(torch.rand(shape, dtype=dtype))
        assert out.shape == shape
        assert out.dtype == dtype

    @pytest.mark.parametrize("shape", [(3,), (3, 4), (4, 5, 5), (2, 1, 5, 5), (8, 8, 3)])
    def test_bad_shape(self, fn, shape):
        with pytest.raises(ValueError, match=r"\(\.\.\., 3, H, W\)"):
            fn(torch.rand(shape))

    def test_integer_dtype(self, fn):
        with pytest.raises(ValueError, match="floating"):
            fn(torch.zeros(3, 2, 2, dtype=torch.uint8))

    def test_not_a_tensor(self, fn):
        with pytest.raises(TypeError):
            fn(np.zeros((3, 2, 2)))

    def test_batch_matches_items(self, fn):
        x = torch.rand(2, 3, 5, 6, dtype=torch.float64)
        torch.testing.assert_close(fn(x), torch.stack([fn(x[0]), fn(x[1])]))


class TestSrgbToLinear:
    def test_matches_skimage(self):
        img = _rgb()
        # skimage does not expose the curve alone; undo its matrix to get it back.
        ref = rgb2xyz(img) @ rgb_from_xyz.T
        out = _hwc(srgb_to_linear(_chw(img, torch.float64)))
        np.testing.assert_allclose(out, ref, atol=1e-12)

    def test_gradcheck(self):
        # Both branches: below and above the 0.04045 knee.
        x = torch.tensor([0.0, 0.01, 0.03, 0.2, 0.7, 1.0], dtype=torch.float64)
        x = x.view(1, 1, 6).expand(3, 1, 6).clone().requires_grad_()
        assert torch.autograd.gradcheck(srgb_to_linear, (x,))


class TestLinearRgbToXyz:
    @pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
    def test_matches_skimage(self, dtype, atol):
        img = _rgb()
        out = _hwc(linear_rgb_to_xyz(srgb_to_linear(_chw(img, dtype))))
        np.testing.assert_allclose(out, rgb2xyz(img), atol=atol)

    def test_gradcheck(self):
        x = torch.rand(3, 2, 2, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(linear_rgb_to_xyz, (x,))


class TestRgbToLab:
    def test_matches_skimage_float64(self):
        img = _rgb(37, 53, seed=1)
        out = _hwc(rgb_to_lab(_chw(img, torch.float64)))
        np.testing.assert_allclose(out, rgb2lab(img), rtol=0, atol=1e-4)

    def test_matches_skimage_float32(self):
        img = _rgb(37, 53, seed=2).astype(np.float32).astype(np.float64)
        out = _hwc(rgb_to_lab(_chw(img, torch.float32)))
        np.testing.assert_allclose(out, rgb2lab(img), rtol=0, atol=1e-4)

    def test_white_and_black(self):
        x = torch.tensor([[[0.0, 1.0]]] * 3, dtype=torch.float64)
        lab = rgb_to_lab(x)
        torch.testing.assert_close(lab[:, 0, 0], torch.zeros(3, dtype=torch.float64))
        # skimage's D65 white differs from its matrix's white in the 4th digit: L = 100, a, b ~ 0.
        torch.testing.assert_close(lab[:, 0, 1], torch.tensor([100.0, 0.0, 0.0], dtype=torch.float64),
                                   atol=1e-2, rtol=0)

    @pytest.mark.parametrize("low,high", [(0.2, 0.9), (0.0, 0.03)])
    def test_gradcheck(self, low, high):
        # (0.2, 0.9): power and cube-root branches; (0, 0.03): both linear branches.
        x = (low + (high - low) * torch.rand(1, 3, 2, 3, dtype=torch.float64)).requires_grad_()
        assert torch.autograd.gradcheck(rgb_to_lab, (x,))

    def test_grad_finite_at_zero(self):
        x = torch.zeros(3, 2, 2, dtype=torch.float64, requires_grad=True)
        rgb_to_lab(x).sum().backward()
        assert torch.isfinite(x.grad).all()


class TestLinearToSrgb:
    def test_inverts_srgb_to_linear(self):
        x = torch.rand(2, 3, 8, 9, dtype=torch.float64)
        torch.testing.assert_close(linear_to_srgb(srgb_to_linear(x)), x)

    def test_matches_the_iec_formula(self):
        # hand-computed: 0.5 linear -> 1.055 * 0.5 ** (1 / 2.4) - 0.055
        x = torch.full((3, 1, 1), 0.5, dtype=torch.float64)
        torch.testing.assert_close(linear_to_srgb(x), torch.full_like(x, 1.055 * 0.5 ** (1 / 2.4) - 0.055))
