"""dpe_hf.metrics against scikit-image on random, smooth and colour-shifted image pairs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dpe_hf.metrics import _ciede2000_lab, ciede2000, evaluate_pair, psnr, ssim

SIZES = [(11, 11), (37, 53), (128, 96)]
KINDS = ["random", "smooth", "colour_shift"]
DTYPES = [torch.float32, torch.float64]


def _smooth(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Gradients and a slow wave plus a little noise: (H, W, 3) in [0, 1], like a photo."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([xx, yy, 0.5 + 0.3 * np.sin(6 * xx + 3 * yy)], axis=-1)
    return np.clip(img + 0.02 * rng.standard_normal((h, w, 3)), 0, 1)


def _pair(kind: str, h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(pred, target) as (H, W, 3) float64 numpy images in [0, 1]."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        target, pred = rng.random((h, w, 3)), rng.random((h, w, 3))
        target[0, 0] = pred[0, 0] = 0  # an achromatic pixel pair: zero chroma in CIEDE2000
    elif kind == "smooth":
        target = _smooth(h, w, rng)
        pred = np.clip(target + 0.05 * rng.standard_normal(target.shape), 0, 1)
    else:  # a small global white-balance and exposure change
        target = _smooth(h, w, rng)
        pred = np.clip(target * np.array([1.03, 0.98, 1.0]) + 0.01, 0, 1)
    return pred, target


def _torch(img: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1).to(dtype)


def _case(kind, size, dtype):
    """Torch pair plus the same pixels in float64 numpy, for skimage."""
    pred, target = _pair(kind, *size)
    tp, tt = _torch(pred, dtype), _torch(target, dtype)
    return tp, tt, tp.permute(1, 2, 0).double().numpy(), tt.permute(1, 2, 0).double().numpy()


def _sk_ssim(pred, target):
    return structural_similarity(target, pred, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=1, channel_axis=-1)


def _sk_delta_e(pred, target):
    return deltaE_ciede2000(rgb2lab(target), rgb2lab(pred)).mean()


def _batch(n=3, h=16, w=13, dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    target = torch.rand(n, 3, h, w, generator=g, dtype=dtype)
    return (target + 0.1 * torch.randn(n, 3, h, w, generator=g, dtype=dtype)).clamp(0, 1), target


@pytest.mark.parametrize("metric", [psnr, ssim, ciede2000])
class TestCommon:
    def test_shapes(self, metric):
        p, t = _batch(n=2)
        assert metric(p, t).shape == (2,)
        assert metric(p[0], t[0]).shape == ()

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_dtype_kept(self, metric, dtype):
        p, t = _batch(n=1, dtype=dtype)
        assert metric(p, t).dtype == dtype

    def test_batch_matches_items(self, metric):
        p, t = _batch(n=3)
        batched = metric(p, t)
        single = torch.stack([metric(p[i], t[i]) for i in range(3)])
        torch.testing.assert_close(batched, single, rtol=1e-12, atol=1e-12)

    def test_shape_mismatch_names_both(self, metric):
        with pytest.raises(ValueError, match=r"\(1, 3, 16, 16\).*\(1, 3, 16, 17\)"):
            metric(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 17))

    @pytest.mark.parametrize("shape", [(16, 16), (1, 1, 3, 16, 16), (1, 4, 16, 16), (16, 16, 3)])
    def test_bad_shape(self, metric, shape):
        with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
            metric(torch.rand(shape), torch.rand(shape))

    def test_integer_dtype(self, metric):
        x = torch.zeros(3, 16, 16, dtype=torch.uint8)
        with pytest.raises(ValueError, match="floating"):
            metric(x, x)


class TestPsnr:
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("size", SIZES)
    @pytest.mark.parametrize("kind", KINDS)
    def test_matches_skimage(self, kind, size, dtype):
        tp, tt, p, t = _case(kind, size, dtype)
        ref = peak_signal_noise_ratio(t, p, data_range=1)
        assert abs(psnr(tp, tt).item() - ref) < 1e-4

    def test_data_range(self):
        p, t = _batch(n=1)
        ref = peak_signal_noise_ratio(255 * t[0].numpy(), 255 * p[0].numpy(), data_range=255)
        assert abs(psnr(255 * p, 255 * t, data_range=255).item() - ref) < 1e-4

    def test_identical_is_inf(self):
        p, _ = _batch(n=2)
        assert torch.isinf(psnr(p, p)).all()

    def test_bad_data_range(self):
        p, t = _batch(n=1)
        with pytest.raises(ValueError, match="data_range"):
            psnr(p, t, data_range=0)

    def test_gradcheck(self):
        p, t = _batch(n=2, h=4, w=5)
        assert torch.autograd.gradcheck(psnr, (p.requires_grad_(), t))


class TestSsim:
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("size", SIZES)
    @pytest.mark.parametrize("kind", KINDS)
    def test_matches_skimage(self, kind, size, dtype):
        tp, tt, p, t = _case(kind, size, dtype)
        assert abs(ssim(tp, tt).item() - _sk_ssim(p, t)) < 1e-3

    def test_other_window_matches_skimage(self):
        # skimage's window radius is int(3.5 * sigma + 0.5): 7 taps for sigma = 1.
        tp, tt, p, t = _case("smooth", (37, 53), torch.float64)
        ref = structural_similarity(t, p, gaussian_weights=True, sigma=1.0, use_sample_covariance=False,
                                    data_range=1, channel_axis=-1)
        assert abs(ssim(tp, tt, window_size=7, sigma=1.0).item() - ref) < 1e-3

    def test_identical_is_one(self):
        p, _ = _batch(n=2)
        torch.testing.assert_close(ssim(p, p), torch.ones(2, dtype=p.dtype))

    @pytest.mark.parametrize("h,w", [(10, 11), (11, 10), (5, 5)])
    def test_smaller_than_window(self, h, w):
        x = torch.rand(3, h, w)
        with pytest.raises(ValueError, match=f"{h}x{w}"):
            ssim(x, x)

    @pytest.mark.parametrize("kwargs", [dict(window_size=10), dict(window_size=0), dict(sigma=0.0),
                                        dict(data_range=-1.0)])
    def test_bad_parameters(self, kwargs):
        p, t = _batch(n=1)
        with pytest.raises(ValueError):
            ssim(p, t, **kwargs)

    def test_gradcheck(self):
        p, t = _batch(n=1, h=5, w=6)
        fn = lambda x: ssim(x, t, window_size=3, sigma=1.0)  # noqa: E731
        # fast_mode checks random projections of the Jacobian: 2 forward passes, not 2 per pixel.
        assert torch.autograd.gradcheck(fn, (p.requires_grad_(),), fast_mode=True)


class TestCiede2000:
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("size", SIZES)
    @pytest.mark.parametrize("kind", KINDS)
    def test_matches_skimage(self, kind, size, dtype):
        tp, tt, p, t = _case(kind, size, dtype)
        assert abs(ciede2000(tp, tt).item() - _sk_delta_e(p, t)) < 1e-3

    def test_hue_branches_match_skimage(self):
        # Lab pairs straight into the formula: zero chroma on one or both sides, hues more
        # than pi apart with their sum on either side of 2*pi, and hues on the a* axis.
        rng = np.random.default_rng(3)
        n = 4000
        lab1 = np.stack([rng.uniform(0, 100, n), rng.uniform(-80, 80, n), rng.uniform(-80, 80, n)], -1)
        lab2 = lab1 + rng.normal(0, 20, lab1.shape)
        lab1[:500, 1:] = 0
        lab2[250:750, 1:] = 0
        lab1[800:900, 2], lab2[800:900, 2] = 0, 0
        # Hue pairs well clear of the branch edges, so rounding cannot pick the other side:
        # wrap with the sum above 2*pi, wrap with the sum below it, no wrap, same side.
        lab1[900:1000, 1:] = [[30, -1], [30, 1], [30, -1], [30, 1]] * 25
        lab2[900:1000, 1:] = [[-30, 3], [-30, -3], [-30, -3], [30, 3]] * 25
        ref = deltaE_ciede2000(lab1, lab2)
        as_chw = lambda lab: torch.from_numpy(lab.T.reshape(3, 1, n))  # noqa: E731
        out = _ciede2000_lab(as_chw(lab1), as_chw(lab2))
        np.testing.assert_allclose(out.reshape(n).numpy(), ref, rtol=0, atol=1e-9)

    def test_identical_is_zero(self):
        p, _ = _batch(n=2)
        torch.testing.assert_close(ciede2000(p, p), torch.zeros(2, dtype=p.dtype))


class TestEvaluatePair:
    def test_values(self):
        tp, tt, p, t = _case("smooth", (37, 53), torch.float32)
        out = evaluate_pair(tp, tt)
        assert set(out) == {"psnr", "ssim", "delta_e"}
        assert all(isinstance(v, float) for v in out.values())
        assert abs(out["psnr"] - peak_signal_noise_ratio(t, p, data_range=1)) < 1e-4
        assert abs(out["ssim"] - _sk_ssim(p, t)) < 1e-3
        assert abs(out["delta_e"] - _sk_delta_e(p, t)) < 1e-3

    def test_batch_of_one(self):
        tp, tt, _, _ = _case("random", (11, 11), torch.float32)
        assert evaluate_pair(tp[None], tt[None]) == evaluate_pair(tp, tt)

    def test_identical(self):
        x = torch.rand(3, 12, 12)
        out = evaluate_pair(x, x)
        assert out["psnr"] == math.inf and out["ssim"] == pytest.approx(1.0) and out["delta_e"] == 0.0

    def test_batch_rejected(self):
        p, t = _batch(n=2)
        with pytest.raises(ValueError, match="one image pair"):
            evaluate_pair(p, t)
