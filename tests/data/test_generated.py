"""generated_photo / write_generated_folder: determinism, photo-likeness, cost, files."""

from __future__ import annotations


import numpy as np
import pytest
from PIL import Image

from dpe_hf.data.generated import generated_photo, write_generated_folder


def test_shape_dtype_and_determinism():
    a = generated_photo((64, 96), seed=7)
    assert a.shape == (64, 96, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, generated_photo((64, 96), seed=7))
    assert np.abs(a.astype(int) - generated_photo((64, 96), seed=8).astype(int)).mean() > 5


@pytest.mark.parametrize("size", [(1, 1), (1, 300), (300, 1), (7, 5)])
def test_degenerate_sizes(size):
    assert generated_photo(size, seed=0).shape == (*size, 3)


def test_photo_like_statistics():
    imgs = np.stack([generated_photo((128, 128), seed=s) for s in range(8)])
    imgs = imgs.astype(np.float32) / 255
    for img in imgs:
        # Neither blank nor blown out: room to under- and over-expose.
        assert 0.15 < img.mean() < 0.8
        assert img.std() > 0.05
        assert (img >= 0.999).mean() < 0.05 and (img <= 0.001).mean() < 0.05
        # Coloured, not grey.
        assert np.abs(img - img.mean(axis=-1, keepdims=True)).mean() > 0.02
        # Sharp edges exist somewhere (a hard shape or the horizon) ...
        grad = np.abs(np.diff(img.mean(axis=-1), axis=1))
        assert grad.max() > 0.1
        # ... but most of the image is smooth (not pure noise).
        assert np.median(grad) < 0.05



@pytest.mark.parametrize("size", [(0, 5), (5, -1), (5,), (2.5, 4), None])
def test_bad_size(size):
    with pytest.raises(ValueError):
        generated_photo(size, seed=0)


def test_write_generated_folder(tmp_path):
    paths = write_generated_folder(tmp_path / "a" / "b", n=3, size=(32, 48), seed=1)
    assert [p.name for p in paths] == ["gen_0000.png", "gen_0001.png", "gen_0002.png"]
    arrays = []
    for p in paths:
        with Image.open(p) as im:
            assert im.mode == "RGB" and im.size == (48, 32)
            arrays.append(np.asarray(im))
    assert not np.array_equal(arrays[0], arrays[1])
    # Deterministic, and PNG is lossless.
    again = write_generated_folder(tmp_path / "c", n=3, size=(32, 48), seed=1)
    for p, q in zip(paths, again):
        assert p.read_bytes() == q.read_bytes()
    # Another seed gives another set (no shared images as with seed + i).
    other = write_generated_folder(tmp_path / "d", n=3, size=(32, 48), seed=2)
    for p in other:
        with Image.open(p) as im:
            assert not any(np.array_equal(np.asarray(im), a) for a in arrays)


def test_write_generated_folder_jpg_and_empty(tmp_path):
    paths = write_generated_folder(tmp_path, n=2, size=(16, 16), seed=0, fmt="jpg")
    assert [p.name for p in paths] == ["gen_0000.jpg", "gen_0001.jpg"]
    with Image.open(paths[0]) as im:
        assert im.format == "JPEG"
    assert write_generated_folder(tmp_path / "empty", n=0, size=(16, 16), seed=0) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": -1},
        {"n": 1.5},
        {"fmt": "gif"},
        {"seed": -1},
        {"size": (0, 4)},
    ],
)
def test_write_generated_folder_bad_args(tmp_path, kwargs):
    args = {"n": 1, "size": (8, 8), "seed": 0, "fmt": "png"} | kwargs
    with pytest.raises(ValueError):
        write_generated_folder(tmp_path, **args)
