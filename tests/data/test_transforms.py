"""dpe_hf.data.transforms: dihedral group, paired crops with mirror padding, PIL conversion."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from dpe_hf.data.transforms import (
    augment_pair,
    dihedral,
    dihedral_inverse,
    pad_to,
    pil_to_tensor,
    random_crop,
    undo_dihedral,
)


def _asym(h=4, w=4, c=3, lead=()):
    return torch.arange(int(np.prod(lead)) * c * h * w, dtype=torch.float32).reshape(*lead, c, h, w)


# --------------------------------------------------------------------------------------------
# dihedral
# --------------------------------------------------------------------------------------------


def test_dihedral_gives_eight_distinct_results():
    x = _asym()
    outs = [dihedral(x, k) for k in range(8)]
    for i in range(8):
        for j in range(i + 1, 8):
            assert not torch.equal(outs[i], outs[j]), (i, j)
    assert dihedral(x, 0) is x


def test_dihedral_definition():
    x = _asym(3, 5)
    assert torch.equal(dihedral(x, 1), torch.rot90(x, 1, dims=(-2, -1)))
    assert torch.equal(dihedral(x, 4), torch.flip(x, dims=(-1,)))
    assert torch.equal(dihedral(x, 6), torch.flip(torch.rot90(x, 2, dims=(-2, -1)), dims=(-1,)))
    for k in range(8):
        hw = tuple(dihedral(x, k).shape[-2:])
        assert hw == ((5, 3) if k % 2 else (3, 5))


@pytest.mark.parametrize("k", range(8))
def test_dihedral_inverse(k):
    x = _asym(3, 5, lead=(2,))
    y = dihedral(x, k)
    assert torch.equal(undo_dihedral(y, k), x)
    assert torch.equal(dihedral(y, dihedral_inverse(k)), x)
    assert torch.equal(dihedral(undo_dihedral(x, k), k), x)


def test_dihedral_group_closed():
    x = _asym()
    elems = [dihedral(x, k) for k in range(8)]
    for a in range(8):
        for b in range(8):
            z = dihedral(dihedral(x, a), b)
            assert sum(torch.equal(z, e) for e in elems) == 1


@pytest.mark.parametrize("k", [-1, 8, 1.5, "2"])
def test_dihedral_rejects_bad_k(k):
    with pytest.raises(ValueError):
        dihedral(_asym(), k)


# --------------------------------------------------------------------------------------------
# padding / cropping
# --------------------------------------------------------------------------------------------


def _locate(big: torch.Tensor, small: torch.Tensor) -> list[tuple[int, int]]:
    h, w = small.shape[-2:]
    H, W = big.shape[-2:]
    return [
        (t, l) for t in range(H - h + 1) for l in range(W - w + 1)
        if torch.equal(big[..., t : t + h, l : l + w], small)
    ]


def test_random_crop_same_window_for_pair():
    x = torch.rand(3, 20, 30)
    y = x * 2 + 1
    for seed in range(5):
        cx, cy = random_crop(x, y, size=8, rng=np.random.default_rng(seed))
        assert cx.shape == cy.shape == (3, 8, 8)
        assert torch.equal(cy, cx * 2 + 1)
        assert len(_locate(x, cx)) == 1


def test_random_crop_windows_vary_and_are_reproducible():
    x = torch.rand(1, 20, 30)
    a = [random_crop(x, size=(5, 7), rng=np.random.default_rng(s)) for s in range(6)]
    b = [random_crop(x, size=(5, 7), rng=np.random.default_rng(s)) for s in range(6)]
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert len({_locate(x, c)[0] for c in a}) > 1
    assert isinstance(a[0], torch.Tensor) and a[0].shape == (1, 5, 7)


def test_random_crop_other_size_gets_own_window():
    x = torch.rand(3, 20, 30)
    y = x.clone()
    z = torch.rand(3, 12, 12)
    cx, cz, cy = random_crop(x, z, y, size=6, rng=np.random.default_rng(0))
    assert torch.equal(cx, cy) and cz.shape == (3, 6, 6)
    assert len(_locate(z, cz)) == 1


def test_random_crop_full_size_is_identity():
    x = torch.rand(2, 3, 9, 11)
    assert torch.equal(random_crop(x, size=(9, 11), rng=np.random.default_rng(0)), x)


def test_pad_to_reflects_like_f_pad():
    x = torch.rand(3, 5, 7)
    out = pad_to(x, (9, 12))  # pads 2+2 rows, 2+3 cols: all < dim -> reflect
    ref = F.pad(x[None], (2, 3, 2, 2), mode="reflect")[0]
    assert torch.equal(out, ref)
    assert pad_to(x, 4) is x


def test_pad_to_replicates_when_too_small():
    x = torch.tensor([[[0.25]]])  # 1x1
    out = pad_to(x, 5)
    assert out.shape == (1, 5, 5) and torch.all(out == 0.25)
    y = torch.arange(2.0).reshape(1, 1, 2)  # width 2, needs 6 more: replicate
    out = pad_to(y, (1, 8))
    assert out.tolist() == [[[0, 0, 0, 0, 1, 1, 1, 1]]]


def test_random_crop_pads_small_images_any_dtype():
    x = (torch.rand(3, 6, 40) * 255).to(torch.uint8)
    y = x.clone()
    cx, cy = random_crop(x, y, size=16, rng=np.random.default_rng(1))
    assert cx.shape == (3, 16, 16) and cx.dtype == torch.uint8
    assert torch.equal(cx, cy)
    # every crop row is one of the (reflected) source rows
    rows = {tuple(r.tolist()) for r in x[0]}
    windows = {s[i : i + 16] for s in rows for i in range(40 - 16 + 1)}
    assert all(tuple(r.tolist()) in windows for r in cx[0])


def test_augment_pair_applies_same_transform():
    x = torch.rand(3, 24, 32)
    y = 1.0 - x
    seen = set()
    for seed in range(12):
        cx, cy = augment_pair(x, y, 10, np.random.default_rng(seed))
        assert cx.shape == cy.shape == (3, 10, 10)
        assert torch.equal(cy, 1.0 - cx)
        # cx is a dihedral transform of a window of x
        ks = [k for k in range(8) if _locate(x, undo_dihedral(cx, k))]
        assert ks
        seen.update(ks)
    assert len(seen) > 2


def test_augment_pair_without_dihedral_is_plain_crop():
    x = torch.rand(3, 24, 32)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    cx, cy = augment_pair(x, x, 10, rng_a, dihedral=False)
    assert torch.equal(cx, random_crop(x, size=10, rng=rng_b))
    assert rng_a.integers(1 << 30) == rng_b.integers(1 << 30)  # no extra draw


# --------------------------------------------------------------------------------------------
# pil_to_tensor
# --------------------------------------------------------------------------------------------


def _rgb_array(h=6, w=10):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_pil_to_tensor_rgb():
    arr = _rgb_array()
    t = pil_to_tensor(Image.fromarray(arr))
    assert t.dtype == torch.float32 and t.shape == (3, 6, 10)
    assert torch.allclose(t, torch.from_numpy(arr).permute(2, 0, 1).float() / 255)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "1", "CMYK", "I;16", "I", "F"])
def test_pil_to_tensor_modes(mode):
    arr = _rgb_array()
    img = Image.fromarray(arr)
    if mode == "I;16":
        img = Image.fromarray(arr[:, :, 0].astype(np.uint16) * 257)
    elif mode == "I":
        img = Image.fromarray(arr[:, :, 0].astype(np.int32) * 257)
    elif mode == "F":
        img = Image.fromarray(arr[:, :, 0].astype(np.float32) / 255.0)
    else:
        img = img.convert(mode)
    assert img.mode == mode
    t = pil_to_tensor(img)
    assert t.shape == (3, 6, 10) and t.dtype == torch.float32
    assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0
    if mode in ("I;16", "I", "F"):
        expect = torch.from_numpy(arr[:, :, 0]).float() / 255
        assert torch.allclose(t, expect.expand(3, -1, -1), atol=1e-6)
    if mode in ("L", "LA", "I;16", "I", "F", "1"):
        assert torch.equal(t[0], t[1]) and torch.equal(t[1], t[2])


def test_pil_to_tensor_applies_exif_orientation():
    arr = _rgb_array(6, 10)
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    buf = io.BytesIO()
    img.save(buf, "PNG", exif=exif.tobytes())
    buf.seek(0)
    t = pil_to_tensor(Image.open(buf))
    assert t.shape == (3, 10, 6)
    expect = torch.from_numpy(np.rot90(arr, -1).copy()).permute(2, 0, 1).float() / 255
    assert torch.allclose(t, expect)


def test_pil_to_tensor_rejects_non_images():
    with pytest.raises(TypeError):
        pil_to_tensor(np.zeros((2, 2, 3)))
