"""dpe_hf.ops.guided: bilateral guided upsampling and the strip-wise residual method."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dpe_hf.data.generated import generated_photo
from dpe_hf.ops import guided as G
from dpe_hf.ops import strips
from dpe_hf.ops.resize import resize_long_side, resize_to


def _psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(peak**2 / mse))


def _f(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64) / (255.0 if x.dtype == np.uint8 else 65535.0)


def _pair(full: np.ndarray, transform) -> tuple[np.ndarray, np.ndarray]:
    low = G.downscale_long_side(full, 512)
    return low, transform(_f(low)).astype(np.float32)


def _slice_reference(grid: np.ndarray, img: np.ndarray) -> np.ndarray:
    """Trilinear slicing with torch.grid_sample in float64 (the definition), in [0, 1]."""
    gh, gw, gd = grid.shape[:3]
    h, w, _ = img.shape
    t = torch.from_numpy(grid.astype(np.float64)).permute(3, 4, 2, 0, 1).reshape(1, 12, gd, gh, gw)
    x = torch.from_numpy(_f(img))
    luma = x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114
    u = (torch.arange(w, dtype=torch.float64) + 0.5) / w * 2 - 1
    v = (torch.arange(h, dtype=torch.float64) + 0.5) / h * 2 - 1
    coords = torch.stack([u[None].expand(h, w), v[:, None].expand(h, w), luma * 2 - 1], -1)
    c = F.grid_sample(t, coords[None, None], mode="bilinear", align_corners=True)[0, :, 0]
    p = torch.cat([x.permute(2, 0, 1), torch.ones(1, h, w, dtype=torch.float64)])
    return (c.reshape(3, 4, h, w) * p[None]).sum(1).permute(1, 2, 0).clamp(0, 1).numpy()


AFFINE = np.array([[0.85, 0.10, 0.02, 0.03], [0.05, 0.80, 0.08, 0.05], [0.02, -0.06, 0.90, 0.08]])


def _affine(x: np.ndarray) -> np.ndarray:
    return np.clip(x @ AFFINE[:, :3].T + AFFINE[:, 3], 0, 1)


def _curve(x: np.ndarray) -> np.ndarray:  # a smooth S-ish tone curve, no gamma
    return np.clip(x + 0.25 * x * (1 - x) * (x - 0.3), 0, 1)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return generated_photo((1200, 1600), seed=3)


# --------------------------------------------------------------------------------------------
# fidelity
# --------------------------------------------------------------------------------------------


def test_global_affine_is_reproduced_at_full_resolution(photo):
    low, low_out = _pair(photo, _affine)
    grid = G.fit_bilateral_grid(low, low_out)
    assert grid.shape == (*G.auto_grid_size(*low.shape[:2]), 3, 4) and grid.dtype == np.float32
    out = G.guided_upsample(photo, low, low_out)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert _psnr(out, _affine(_f(photo)) * 255) > 50


def test_affine_plus_curve_is_reproduced_closely(photo):
    def transform(x):
        return _curve(_affine(x))

    low, low_out = _pair(photo, transform)
    out = G.guided_upsample(photo, low, low_out)
    assert _psnr(out, transform(_f(photo)) * 255) > 45


def test_smooth_exposure_ramp_is_reproduced_closely(photo):
    def ramp(x):
        h, w, _ = x.shape
        gain = 0.7 + 0.6 * (np.arange(w) + 0.5) / w
        return _curve(np.clip(x * gain[None, :, None], 0, 1))

    low, low_out = _pair(photo, ramp)
    out = G.guided_upsample(photo, low, low_out)
    assert _psnr(out, ramp(_f(photo)) * 255) > 40


def test_fidelity_at_low_resolution(photo):
    low, low_out = _pair(photo, lambda x: _curve(_affine(x)))
    out = G.guided_upsample(photo, low, low_out)
    assert _psnr(_f(G.downscale_long_side(out, 512)), low_out, 1.0) > 40


def test_colour_missing_at_low_resolution_does_not_explode(photo):
    rng = np.random.default_rng(0)

    def add_dots(img: np.ndarray, count: int) -> np.ndarray:
        mask = np.zeros(img.shape[:2], bool)
        for y, x in rng.integers(0, [img.shape[0] - 2, img.shape[1] - 2], (count, 2)):
            img[y:y + 2, x:x + 2] = rng.integers(0, 256, 3)  # averaged away in the 512 px copy
            mask[y:y + 2, x:x + 2] = True
        return mask

    # a global transform is reproduced even on colours the fit never saw
    full = photo.copy()
    mask = add_dots(full, 300)
    low, low_out = _pair(full, _affine)
    err = np.abs(G.guided_upsample(full, low, low_out) - _affine(_f(full)) * 255)
    assert err[mask].max() < 3
    # a flat grey photo: every node sees one colour, the regularisation decides the rest
    flat = np.full((900, 1200, 3), (120, 110, 100), np.uint8) + rng.integers(0, 2, (900, 1200, 3), np.uint8)
    mask = add_dots(flat, 200)
    low, low_out = _pair(flat, _affine)
    out = G.guided_upsample(flat, low, low_out)
    truth = _affine(_f(flat)) * 255
    assert np.abs(out - truth)[mask].max() < 32
    assert np.abs(out.astype(int) - flat).max() <= np.abs(truth - flat).max() + 1


def test_slicing_matches_trilinear_reference():
    img = generated_photo((150, 210), seed=4)
    grid = np.random.default_rng(1).normal(0, 0.05, (6, 7, 5, 3, 4)).astype(np.float32)
    grid[..., :3] += np.eye(3, dtype=np.float32)
    out = G.apply_bilateral_grid(img, grid)
    ref = _slice_reference(grid, img) * 255
    assert _psnr(out, ref) > 50
    assert np.abs(out - ref).max() < 3


# --------------------------------------------------------------------------------------------
# shapes, dtypes, strips
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1, 1), (37, 53), (53, 37), (2, 3), (100, 10000), (10000, 100), (3, 40000)])
@pytest.mark.parametrize("method", [G.guided_upsample, G.residual_upsample])
def test_output_size_equals_input_size(size, method):
    full = generated_photo(size, seed=1)
    low, low_out = _pair(full, _affine)
    out = method(full, low, low_out)
    assert out.shape == full.shape and out.dtype == np.uint8
    if min(size) > 2:  # sanity: the residual method is the weaker one on extreme aspect ratios
        assert _psnr(out, _affine(_f(full)) * 255) > (38 if method is G.guided_upsample else 30)


def test_identity_grid_returns_the_input_exactly():
    full = generated_photo((61, 47), seed=2)
    grid = np.zeros((3, 4, 5, 3, 4), np.float32)
    grid[..., :3] = np.eye(3)
    assert np.array_equal(G.apply_bilateral_grid(full, grid), full)
    full16 = full.astype(np.uint16) * 257 + 3
    assert np.array_equal(G.apply_bilateral_grid(full16, grid), full16)
    low = G.downscale_long_side(full, 16)
    assert np.array_equal(G.residual_upsample(full, low, low), full)


def test_uint16_in_uint16_out(photo):
    full16 = photo.astype(np.uint16) * 257
    low16, low_out = _pair(full16, _affine)
    for method in (G.guided_upsample, G.residual_upsample):
        out16 = method(full16, low16, low_out)
        assert out16.dtype == np.uint16 and out16.shape == photo.shape
        out8 = method(photo, G.downscale_long_side(photo, 512), low_out)
        assert np.abs(out16 / 257.0 - out8).mean() < 0.5


@pytest.mark.parametrize("method", ["guided", "residual"])
def test_strips_equal_single_pass(method):
    full = generated_photo((203, 157), seed=5)
    low, low_out = _pair(full, lambda x: _curve(_affine(x)))
    grid = G.fit_bilateral_grid(low, low_out, grid=(5, 4, 6))

    def run(**kw):
        if method == "guided":
            return G.apply_bilateral_grid(full, grid, **kw)
        return G.residual_upsample(full, low, low_out, **kw)

    whole = run(strip_rows=1000, threads=1)
    for strip_rows, threads in [(1, 1), (7, 1), (16, 2), (32, 3), (50, 4)]:
        assert np.array_equal(run(strip_rows=strip_rows, threads=threads), whole)


def test_wider_than_opencv_remap_limit_equals_narrow_pieces(monkeypatch):
    full = generated_photo((20, 700), seed=6)
    low = G.downscale_long_side(full, 200)
    low_out = _curve(_affine(_f(low))).astype(np.float32)
    grid = G.fit_bilateral_grid(low, low_out)
    whole = G.apply_bilateral_grid(full, grid)
    residual = G.residual_upsample(full, low, low_out)
    monkeypatch.setattr(strips, "REMAP_MAX", 256)  # 700 px -> three column tiles
    assert np.array_equal(G.apply_bilateral_grid(full, grid, threads=2), whole)
    assert np.array_equal(G.residual_upsample(full, low, low_out), residual)


def test_out_argument_and_in_place(photo):
    low, low_out = _pair(photo, _affine)
    grid = G.fit_bilateral_grid(low, low_out)
    expected = G.apply_bilateral_grid(photo, grid)
    out = np.zeros_like(photo)
    assert G.apply_bilateral_grid(photo, grid, out=out) is out
    assert np.array_equal(out, expected)
    work = photo.copy()
    G.apply_bilateral_grid(work, grid, out=work, threads=2)
    assert np.array_equal(work, expected)


def test_non_contiguous_input(photo):
    view = photo[::2, ::-1]
    low, low_out = _pair(np.ascontiguousarray(view), _affine)
    grid = G.fit_bilateral_grid(low, low_out)
    assert np.array_equal(G.apply_bilateral_grid(view, grid),
                          G.apply_bilateral_grid(np.ascontiguousarray(view), grid))


def test_strength_blends_with_the_identity(photo):
    low, low_out = _pair(photo, _affine)
    assert np.array_equal(G.guided_upsample(photo, low, low_out, strength=0.0), photo)
    assert np.array_equal(G.residual_upsample(photo, low, low_out, strength=0.0), photo)
    half = G.guided_upsample(photo, low, low_out, strength=0.5)
    target = 0.5 * (_f(photo) + _affine(_f(photo))) * 255
    assert _psnr(half, target) > 48


def test_tensor_and_array_inputs_agree(photo):
    low, low_out = _pair(photo, _affine)
    t_in = torch.from_numpy(low).permute(2, 0, 1)[None].float() / 255
    t_out = torch.from_numpy(low_out).permute(2, 0, 1)
    np.testing.assert_allclose(G.fit_bilateral_grid(t_in, t_out), G.fit_bilateral_grid(low, low_out),
                               atol=1e-5)


def test_residual_matches_the_float_tensor_method(photo):
    low, low_out = _pair(photo, _curve)
    out = G.residual_upsample(photo, low, low_out)
    x = torch.from_numpy(photo).permute(2, 0, 1).double() / 255
    res = torch.from_numpy(low_out - _f(low)).permute(2, 0, 1)
    ref = (x + resize_to(res, photo.shape[:2])).clamp(0, 1).permute(1, 2, 0).numpy() * 255
    assert np.abs(out - ref).max() <= 1.0


@pytest.mark.parametrize("size", [(3000, 4000), (4000, 3000), (1025, 1000), (10000, 100), (600, 512), (7, 9)])
def test_downscale_matches_resize_long_side_size(size):
    h, w = size
    full = np.zeros((h, w, 3), np.uint8)
    low = G.downscale_long_side(full, 512)
    assert low.shape[:2] == tuple(resize_long_side(torch.zeros(3, h, w), 512).shape[-2:])
    assert low.dtype == np.uint8


# --------------------------------------------------------------------------------------------
# bad inputs
# --------------------------------------------------------------------------------------------


def _grid() -> np.ndarray:
    g = np.zeros((3, 3, 3, 3, 4), np.float32)
    g[..., :3] = np.eye(3)
    return g


@pytest.mark.parametrize(
    "full",
    [
        np.zeros((8, 8, 3), np.float32),
        np.zeros((8, 8, 3), np.int32),
        np.zeros((8, 8), np.uint8),
        np.zeros((8, 8, 4), np.uint8),
        np.zeros((0, 8, 3), np.uint8),
        [[[0, 0, 0]]],
    ],
)
def test_bad_full_input_raises(full):
    with pytest.raises(ValueError):
        G.apply_bilateral_grid(full, _grid())
    with pytest.raises(ValueError):
        G.residual_upsample(full, np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 3), np.float32))


@pytest.mark.parametrize(
    "grid",
    [np.zeros((3, 3, 3, 4, 3), np.float32), np.zeros((1, 3, 3, 3, 4), np.float32),
     np.zeros((3, 3, 3, 3, 4), np.int32), np.full((2, 2, 2, 3, 4), np.nan, np.float32)],
)
def test_bad_grid_raises(grid):
    with pytest.raises(ValueError):
        G.apply_bilateral_grid(np.zeros((4, 4, 3), np.uint8), grid)


@pytest.mark.parametrize(
    "kwargs",
    [dict(strip_rows=0), dict(strip_rows=True), dict(strip_rows=2.5), dict(threads=0),
     dict(out=np.zeros((4, 5, 3), np.uint8)), dict(out=np.zeros((4, 4, 3), np.uint16)),
     dict(out=np.zeros((4, 8, 3), np.uint8)[:, ::2])],
)
def test_bad_options_raise(kwargs):
    with pytest.raises(ValueError):
        G.apply_bilateral_grid(np.zeros((4, 4, 3), np.uint8), _grid(), **kwargs)


def test_bad_low_resolution_pair_raises():
    full = np.zeros((8, 8, 3), np.uint8)
    a = np.zeros((4, 4, 3), np.float32)
    bad = [
        (a, np.zeros((4, 5, 3), np.float32)),  # sizes differ
        (a, np.full((4, 4, 3), np.nan, np.float32)),
        (np.zeros((4, 4), np.float32), np.zeros((4, 4), np.float32)),
        (np.zeros((4, 4, 3), np.int64), a),
        (torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)),
        ("image", a),
    ]
    for low_in, low_out in bad:
        for fn in (G.guided_upsample, G.residual_upsample):
            with pytest.raises(ValueError):
                fn(full, low_in, low_out)
    for kw in (dict(grid=(1, 4, 4)), dict(grid=(4, 4)), dict(lam=0.0), dict(lam=float("nan"))):
        with pytest.raises(ValueError):
            G.fit_bilateral_grid(a, a, **kw)
    for strength in (-0.1, 1.5, float("nan"), "x"):
        with pytest.raises(ValueError):
            G.guided_upsample(full, a, a, strength=strength)
