"""resize_long_side / resize_to: shapes, no-upscale default, validation, PIL-like antialiasing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dpe_hf.ops.resize import resize_long_side, resize_to


@pytest.mark.parametrize(
    ("shape", "long_side", "expected"),
    [
        ((3, 1000, 500), 512, (3, 512, 256)),
        ((3, 500, 1000), 512, (3, 256, 512)),
        ((2, 3, 600, 800), 400, (2, 3, 300, 400)),
        ((3, 1, 10000), 512, (3, 1, 512)),  # short side would round to 0: kept at 1
        ((3, 10000, 1), 512, (3, 512, 1)),
        ((3, 1025, 1000), 512, (3, 512, 500)),  # 1000 * 512 / 1025 = 499.5 -> 500 (half up)
        ((1, 3, 3), 1, (1, 1, 1)),
    ],
)
def test_resize_long_side_shapes(shape, long_side, expected):
    out = resize_long_side(torch.rand(shape), long_side)
    assert tuple(out.shape) == expected


def test_no_upscale_by_default_returns_input():
    x = torch.rand(3, 100, 50)
    assert resize_long_side(x, 512) is x
    assert resize_long_side(x, 100) is x
    tiny = torch.rand(1, 3, 1, 1)
    assert resize_long_side(tiny, 512) is tiny


def test_allow_upscale():
    out = resize_long_side(torch.rand(3, 100, 50), 512, allow_upscale=True)
    assert tuple(out.shape) == (3, 512, 256)
    assert tuple(resize_long_side(torch.rand(3, 1, 1), 7, allow_upscale=True).shape) == (3, 7, 7)


def test_constant_image_stays_constant_and_dtype_device_kept():
    x = torch.full((2, 3, 64, 48), 0.25, dtype=torch.float64)
    out = resize_long_side(x, 20)
    assert out.dtype == torch.float64 and out.device == x.device
    torch.testing.assert_close(out, torch.full_like(out, 0.25))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.uint8])
def test_other_dtypes(dtype):
    x = (torch.rand(3, 40, 30) * (255 if dtype == torch.uint8 else 1)).to(dtype)
    assert resize_long_side(x, 20).dtype == dtype
    assert resize_to(x, (50, 10)).dtype == dtype


def test_batch_equals_single():
    x = torch.rand(3, 3, 37, 53)
    batched = resize_long_side(x, 16)
    for i in range(3):
        torch.testing.assert_close(batched[i], resize_long_side(x[i], 16))


def _pil_bilinear(img: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """(H, W, C) float32 -> resized with PIL's (antialiased) bilinear, per channel in mode F."""
    chans = [
        np.asarray(Image.fromarray(img[..., c], mode="F").resize(size_hw[::-1], Image.BILINEAR))
        for c in range(img.shape[-1])
    ]
    return np.stack(chans, axis=-1)


def test_antialias_matches_pil():
    from dpe_hf.data.generated import generated_photo

    img = generated_photo((200, 300), seed=3).astype(np.float32) / 255.0
    # Fine stripes (period 3, shrunk by 4): they alias into a beat pattern without a low-pass.
    img[:100, :, :] = (np.arange(300) % 3 == 0).astype(np.float32)[None, :, None]
    ref = _pil_bilinear(img, (50, 75))
    out = resize_long_side(torch.from_numpy(img).permute(2, 0, 1), 75).permute(1, 2, 0).numpy()
    assert out.shape == ref.shape
    assert np.abs(out - ref).mean() < 2e-3
    assert np.abs(out - ref).max() < 2e-2
    # Without antialias the stripes alias: far from PIL. Shows the test can fail.
    aliased = resize_long_side(torch.from_numpy(img).permute(2, 0, 1), 75, antialias=False)
    assert np.abs(aliased.permute(1, 2, 0).numpy()[:25] - ref[:25]).mean() > 0.1


def test_resize_to():
    x = torch.rand(2, 3, 40, 60)
    assert tuple(resize_to(x, (20, 90)).shape) == (2, 3, 20, 90)
    assert tuple(resize_to(x[0], (1, 1)).shape) == (3, 1, 1)
    assert resize_to(x, (40, 60)) is x
    # Shrinking is antialiased: away from the borders, the stripes average to their mean, 0.5.
    stripes = (torch.arange(60) % 2).float().expand(1, 1, 40, 60)
    inner = resize_to(stripes, (40, 15))[..., 1:-1]
    torch.testing.assert_close(inner, torch.full_like(inner, 0.5), atol=0.02, rtol=0)


@pytest.mark.parametrize(
    ("x", "long_side", "exc"),
    [
        ("not a tensor", 10, TypeError),
        (torch.rand(10, 10), 10, ValueError),  # no channel axis
        (torch.rand(1, 1, 3, 10, 10), 10, ValueError),
        (torch.rand(3, 0, 10), 10, ValueError),
        (torch.zeros(3, 10, 10, dtype=torch.int64), 5, ValueError),
        (torch.rand(3, 10, 10), 0, ValueError),
        (torch.rand(3, 10, 10), -5, ValueError),
        (torch.rand(3, 10, 10), 5.5, ValueError),
        (torch.rand(3, 10, 10), True, ValueError),
    ],
)
def test_resize_long_side_bad_inputs(x, long_side, exc):
    with pytest.raises(exc):
        resize_long_side(x, long_side)


@pytest.mark.parametrize("size", [(0, 5), (5, -1), (5,), (5, 5, 5), "ab", (2.5, 3), None])
def test_resize_to_bad_sizes(size):
    with pytest.raises(ValueError):
        resize_to(torch.rand(3, 10, 10), size)
