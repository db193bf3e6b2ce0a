"""Synthetic degradations: determinism, identity, each edit's effect, ranges, batches, errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dpe_hf.data.degrade import (
    DegradeConfig,
    EditParams,
    apply_edit,
    degrade,
    identity_params,
    sample_edit_params,
)
from dpe_hf.data.generated import generated_photo


def _photo(seed: int = 0, size: tuple[int, int] = (48, 64)) -> torch.Tensor:
    return torch.from_numpy(generated_photo(size, seed)).permute(2, 0, 1).float() / 255.0


def _luma(x: torch.Tensor) -> torch.Tensor:
    return 0.299 * x[..., 0, :, :] + 0.587 * x[..., 1, :, :] + 0.114 * x[..., 2, :, :]


def _chroma_std(x: torch.Tensor) -> float:
    return float((x - x.mean(dim=-3, keepdim=True)).std())


@pytest.fixture(scope="module")
def img() -> torch.Tensor:
    return _photo()


# --- determinism and identity ------------------------------------------------------------


def test_degrade_deterministic_per_seed(img):
    a, pa = degrade(img, seed=123)
    b, pb = degrade(img, seed=123)
    assert pa == pb
    assert torch.equal(a, b)
    c, pc = degrade(img, seed=124)
    assert pc != pa
    assert not torch.equal(a, c)


def test_sample_is_deterministic_per_generator_state():
    p1 = sample_edit_params(np.random.default_rng(5))
    p2 = sample_edit_params(np.random.default_rng(5))
    assert p1 == p2


def test_p_identity_does_not_shift_other_draws():
    # Same generator state: the values of edits that are not skipped are the same.
    full = sample_edit_params(np.random.default_rng(9), DegradeConfig(p_identity=0.0))
    none = sample_edit_params(np.random.default_rng(9), DegradeConfig(p_identity=1.0))
    assert none == identity_params()
    assert full.exposure_ev != 0.0 and full.gamma != 1.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_identity_params_return_input(img, dtype):
    x = img.to(dtype)
    assert identity_params().is_identity()
    torch.testing.assert_close(apply_edit(x, identity_params()), x, atol=1e-6, rtol=0)
    batch = torch.stack([x, _photo(1).to(dtype)])
    torch.testing.assert_close(apply_edit(batch, EditParams()), batch, atol=1e-6, rtol=0)


def test_srgb_round_trip_is_near_identity(img):
    # Exposure 0 with a tiny white balance still goes through decode/encode: it must be lossless.
    out = apply_edit(img, EditParams(wb_log_r=1e-9))
    torch.testing.assert_close(out, img, atol=1e-5, rtol=0)


# --- each edit alone moves the statistic it should ----------------------------------------


def test_exposure(img):
    darker = apply_edit(img, EditParams(exposure_ev=-1.0))
    brighter = apply_edit(img, EditParams(exposure_ev=0.5))
    assert darker.mean() < img.mean() - 0.05
    assert brighter.mean() > img.mean() + 0.03
    # -1 EV halves linear light: sRGB 0.5 -> linear 0.214 -> 0.107 -> sRGB 0.3608.
    grey = torch.full((3, 2, 2), 0.5)
    out = apply_edit(grey, EditParams(exposure_ev=-1.0))
    assert out[0, 0, 0].item() == pytest.approx(0.3608, abs=1e-3)


def test_saturation(img):
    duller = apply_edit(img, EditParams(saturation=0.5))
    assert _chroma_std(duller) < 0.7 * _chroma_std(img)
    # Luma is kept by a saturation change (up to clipping).
    torch.testing.assert_close(_luma(duller), _luma(img), atol=1e-5, rtol=0)
    assert _chroma_std(apply_edit(img, EditParams(saturation=0.0))) < 1e-5
    assert _chroma_std(apply_edit(img, EditParams(saturation=1.15))) > _chroma_std(img)


def test_contrast(img):
    flatter = apply_edit(img, EditParams(contrast=0.6))
    assert _luma(flatter).std() == pytest.approx(0.6 * _luma(img).std().item(), rel=1e-3)
    # Blending toward the mean keeps the mean.
    assert _luma(flatter).mean() == pytest.approx(_luma(img).mean().item(), abs=1e-4)
    assert _luma(apply_edit(img, EditParams(contrast=1.15))).std() > _luma(img).std()


@pytest.mark.parametrize(("log_r", "log_b"), [(0.15, 0.0), (-0.15, 0.0), (0.0, 0.15), (0.0, -0.15)])
def test_white_balance(img, log_r, log_b):
    out = apply_edit(img, EditParams(wb_log_r=log_r, wb_log_b=log_b))

    def ratio(x, c):
        return (x[c].mean() / x[1].mean()).item()

    if log_r:
        assert np.sign(ratio(out, 0) - ratio(img, 0)) == np.sign(log_r)
        torch.testing.assert_close(out[1:], img[1:], atol=1e-5, rtol=0)  # G and B untouched
    if log_b:
        assert np.sign(ratio(out, 2) - ratio(img, 2)) == np.sign(log_b)
        torch.testing.assert_close(out[:2], img[:2], atol=1e-5, rtol=0)


def test_gamma(img):
    mid = (img > 0.3) & (img < 0.7)
    assert mid.float().mean() > 0.2
    darker = apply_edit(img, EditParams(gamma=1.4))
    brighter = apply_edit(img, EditParams(gamma=0.75))
    assert darker[mid].mean() < img[mid].mean() - 0.05
    assert brighter[mid].mean() > img[mid].mean() + 0.05
    # Black and white are fixed points.
    ends = torch.tensor([0.0, 1.0]).view(1, 1, 2).expand(3, 1, 2)
    torch.testing.assert_close(apply_edit(ends, EditParams(gamma=1.4)), ends, atol=1e-5, rtol=0)


def test_tone_curve(img):
    ramp = torch.linspace(0, 1, 101).view(1, 1, -1).expand(3, 1, -1).contiguous()
    for s in (-0.9, -0.5, 0.3, 0.9):
        out = apply_edit(ramp, EditParams(tone_curve=s))[0, 0]
        assert (out.diff() > 0).all(), "tone curve must stay monotone"
        fixed = out[[0, 50, 100]]
        torch.testing.assert_close(fixed, torch.tensor([0.0, 0.5, 1.0]), atol=1e-6, rtol=0)
    # Inverse S lifts shadows and lowers highlights: flatter; S-curve: more contrast.
    assert _luma(apply_edit(img, EditParams(tone_curve=-0.5))).std() < _luma(img).std()
    assert _luma(apply_edit(img, EditParams(tone_curve=0.3))).std() > _luma(img).std()


def test_levels_map_black_and_white_points(img):
    # Hand-computed: the levels edit is the affine map x -> black + (white - black) x.
    out = apply_edit(img, EditParams(black=0.1, white=0.8))
    torch.testing.assert_close(out, 0.1 + 0.7 * img.clamp(0, 1), atol=1e-6, rtol=0)
    assert out.min() >= 0.1 - 1e-6 and out.max() <= 0.8 + 1e-6


# --- sampling ranges and the overall direction --------------------------------------------


def test_sampled_params_in_range():
    cfg = DegradeConfig()
    rng = np.random.default_rng(0)
    samples = [sample_edit_params(rng, cfg) for _ in range(2000)]
    for p in samples:
        assert cfg.exposure_ev[0] <= p.exposure_ev <= cfg.exposure_ev[1]
        assert cfg.gamma[0] <= p.gamma <= cfg.gamma[1]
        assert cfg.contrast[0] <= p.contrast <= cfg.contrast[1]
        assert cfg.saturation[0] <= p.saturation <= cfg.saturation[1]
        assert cfg.tone_curve[0] <= p.tone_curve <= cfg.tone_curve[1]
        assert abs(p.wb_log_r) <= cfg.wb_log_gain and abs(p.wb_log_b) <= cfg.wb_log_gain
        assert p.black == 0.0 or cfg.black_level[0] <= p.black <= cfg.black_level[1]
        assert p.white == 1.0 or cfg.white_level[0] <= p.white <= cfg.white_level[1]
        assert all(isinstance(v, float) for v in p.to_dict().values())
    # Each edit is skipped about p_identity of the time.
    skipped = np.mean([p.exposure_ev == 0.0 for p in samples])
    assert 0.07 < skipped < 0.13
    assert not all(p == samples[0] for p in samples)


def test_inputs_are_darker_flatter_duller_on_average():
    rng = np.random.default_rng(1)
    samples = [sample_edit_params(rng) for _ in range(2000)]
    assert np.mean([p.exposure_ev for p in samples]) < -0.2
    assert np.mean([p.exposure_ev < 0 for p in samples]) > 0.55
    assert np.mean([p.contrast for p in samples]) < 1.0
    assert np.mean([p.saturation for p in samples]) < 1.0
    # On real pixels: the degraded image is darker than its target for most seeds.
    img = _photo(2, (24, 32))
    shifts = [(degrade(img, s)[0].mean() - img.mean()).item() for s in range(100)]
    assert np.mean(shifts) < -0.03
    assert np.mean(np.array(shifts) < 0) > 0.6


@pytest.mark.parametrize("seed", range(10))
def test_output_in_unit_range(img, seed):
    extreme = DegradeConfig(
        exposure_ev=(-4.0, 3.0),
        gamma=(0.3, 3.0),
        contrast=(0.0, 2.0),
        saturation=(0.0, 3.0),
        wb_log_gain=1.0,
        tone_curve=(-1.0, 1.0),
        p_identity=0.0,
    )
    out, _ = degrade(img, seed, extreme)
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert torch.isfinite(out).all()


# --- shapes, batching, dtype, gradients ---------------------------------------------------


def test_batch_equals_each_alone():
    batch = torch.stack([_photo(s) for s in range(3)])
    params = sample_edit_params(np.random.default_rng(3), DegradeConfig(p_identity=0.0))
    out = apply_edit(batch, params)
    assert out.shape == batch.shape
    for i in range(3):
        torch.testing.assert_close(out[i], apply_edit(batch[i], params), atol=1e-6, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtype_and_shape_preserved(img, dtype):
    out, _ = degrade(img.to(dtype), seed=0)
    assert out.dtype == dtype and out.shape == img.shape


def test_differentiable():
    params = EditParams(
        exposure_ev=-0.4,
        wb_log_r=0.05,
        wb_log_b=-0.05,
        tone_curve=-0.3,
        contrast=0.8,
        gamma=1.2,
        saturation=0.7,
    )
    x = (0.2 + 0.6 * torch.rand(1, 3, 4, 5, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: apply_edit(t, params), (x,))
    # Gradients stay finite at black, where sRGB and gamma < 1 have unbounded slopes.
    z = torch.zeros(3, 4, 4, requires_grad=True)
    apply_edit(z, dataclasses.replace(params, gamma=0.75)).sum().backward()
    assert torch.isfinite(z.grad).all()


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "exc"),
    [
        ([[0.5]], TypeError),
        (np.zeros((3, 4, 4), np.float32), TypeError),
        (torch.rand(4, 4), ValueError),
        (torch.rand(1, 4, 4), ValueError),
        (torch.rand(2, 4, 4, 4), ValueError),
        (torch.rand(1, 1, 3, 4, 4), ValueError),
        (torch.zeros(3, 4, 4, dtype=torch.uint8), ValueError),
    ],
)
def test_bad_images_raise(bad, exc):
    with pytest.raises(exc):
        apply_edit(bad, identity_params())
    with pytest.raises(exc):
        degrade(bad, 0)


def test_bad_params_and_seeds_raise(img):
    with pytest.raises(TypeError):
        apply_edit(img, {"gamma": 1.0})
    with pytest.raises(TypeError):
        sample_edit_params(0)
    for seed in (-1, 1.5, "1", None, True):
        with pytest.raises(ValueError):
            degrade(img, seed)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"exposure_ev": (1.0, -1.0)},
        {"gamma": (0.0, 1.0)},
        {"gamma": (1.0,)},
        {"contrast": (-0.1, 1.0)},
        {"saturation": (-0.1, 1.0)},
        {"tone_curve": (-1.5, 0.0)},
        {"wb_log_gain": -0.1},
        {"p_identity": 1.5},
        {"black_level": (0.0, 0.8)},
        {"white_level": (0.7, 1.2)},
        {"exposure_ev": (float("nan"), 0.0)},
    ],
)
def test_bad_config_raises(kwargs):
    with pytest.raises(ValueError):
        DegradeConfig(**kwargs)


def test_config_accepts_lists():
    cfg = DegradeConfig(exposure_ev=[-1, 0])
    assert cfg.exposure_ev == (-1.0, 0.0)
