"""JPEGs through OpenCV (dpe_hf.imageio.jpeg): the same pixels and bytes as Pillow, the same
metadata, the same errors, and Pillow still deciding everything outside the plain case.

Pixels are compared exactly: Pillow's and OpenCV's wheels both bundle libjpeg-turbo, decoding with
the ISLOW DCT and fancy upsampling and encoding with `jpeg_set_quality` and the standard Huffman
tables, so the integer arithmetic is the same on both sides.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import photo
from PIL import Image, ImageCms, ImageOps

from dpe_hf.errors import ImageReadError, ImageWriteError
from dpe_hf.imageio import ImageMeta, read_image, write_image
from dpe_hf.imageio import jpeg as dj
from dpe_hf.imageio import readers

ORIENTATION = 0x0112


def textured(h: int = 75, w: int = 101) -> np.ndarray:
    """Odd sizes (partial MCUs at both edges) and colour detail that chroma subsampling changes."""
    return photo(h, w, seed=3)


def pillow_jpeg(path: Path, array: np.ndarray, **kwargs) -> Path:
    Image.fromarray(array).save(path, "JPEG", **kwargs)
    return path


def pillow_pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


@pytest.fixture
def decodes(monkeypatch) -> list[bool]:
    """Record each call of the OpenCV decoder by read_image: True when it returned pixels."""
    calls: list[bool] = []
    real = readers.decode_rgb_jpeg

    def spy(f, size):
        out = real(f, size)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(readers, "decode_rgb_jpeg", spy)
    return calls


def exif_with(**tags) -> bytes:
    ex = Image.Exif()
    names = {"orientation": ORIENTATION, "make": 0x010F, "model": 0x0110}
    for name, value in tags.items():
        ex[names[name]] = value
    return ex.tobytes()


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


# ------------------------------------------------------------------------------------- reading


@pytest.mark.parametrize(
    "options",
    [{"subsampling": 2}, {"subsampling": 0}, {"subsampling": 1},
     {"subsampling": 2, "progressive": True}, {"subsampling": 0, "progressive": True}],
    ids=["420", "444", "422", "progressive-420", "progressive-444"],
)
def test_opencv_pixels_equal_pillows(tmp_path, decodes, options):
    path = pillow_jpeg(tmp_path / "p.jpg", textured(), quality=85, **options)
    rgb, meta = read_image(path)
    assert decodes == [True]
    assert rgb.dtype == np.uint8 and rgb.flags.writeable and rgb.flags.c_contiguous
    np.testing.assert_array_equal(rgb, pillow_pixels(path))
    assert (meta.format, meta.mode, meta.bit_depth, meta.size) == ("JPEG", "RGB", 8, (101, 75))


def test_data_bytes_take_the_opencv_path(tmp_path, decodes):
    path = pillow_jpeg(tmp_path / "p.jpg", textured(), quality=90)
    rgb, _ = read_image("named.jpg", data=path.read_bytes())
    assert decodes == [True]
    np.testing.assert_array_equal(rgb, pillow_pixels(path))


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_applied_once(tmp_path, decodes, orientation):
    path = pillow_jpeg(tmp_path / "o.jpg", textured(), quality=92,
                       exif=exif_with(orientation=orientation, make="ACME"))
    rgb, meta = read_image(path)
    assert decodes == [True]
    np.testing.assert_array_equal(rgb, pillow_pixels(path))
    ex = Image.Exif()
    ex.load(meta.exif)
    assert ex[ORIENTATION] == 1 and ex[0x010F] == "ACME"


def test_icc_and_exif_read_with_opencv_pixels(tmp_path, decodes):
    icc = srgb_icc()
    path = pillow_jpeg(tmp_path / "m.jpg", textured(), icc_profile=icc, exif=exif_with(model="M"))
    _, meta = read_image(path)
    assert decodes == [True]
    assert meta.icc_profile == icc
    ex = Image.Exif()
    ex.load(meta.exif)
    assert ex[0x0110] == "M"


def test_grey_and_cmyk_and_draft_stay_with_pillow(tmp_path, decodes):
    grey = pillow_jpeg(tmp_path / "g.jpg", textured()[:, :, 0])
    rgb, meta = read_image(grey)
    assert meta.mode == "L" and np.array_equal(rgb[:, :, 0], rgb[:, :, 2])
    cmyk = tmp_path / "c.jpg"
    Image.fromarray(textured()).convert("CMYK").save(cmyk, "JPEG")
    assert read_image(cmyk)[1].mode == "CMYK"
    big = pillow_jpeg(tmp_path / "big.jpg", photo(400, 640))
    assert read_image(big, jpeg_draft_side=64)[0].shape[1] < 640  # decoded at a reduced scale
    assert decodes == []


def test_trailer_after_eoi_stays_with_pillow(tmp_path, decodes):
    path = pillow_jpeg(tmp_path / "t.jpg", textured())
    reference = pillow_pixels(path)
    path.write_bytes(path.read_bytes() + b"TRAILER" * 10)
    rgb, _ = read_image(path)
    assert decodes == [False]
    np.testing.assert_array_equal(rgb, reference)


@pytest.mark.parametrize("answer", [None, np.zeros((74, 101, 3), np.uint8)], ids=["none", "wrong-size"])
def test_opencv_refusal_falls_back_to_pillow(tmp_path, monkeypatch, decodes, answer):
    path = pillow_jpeg(tmp_path / "r.jpg", textured())
    monkeypatch.setattr(cv2, "imdecode", lambda *args: answer)
    rgb, _ = read_image(path)
    assert decodes == [False]
    np.testing.assert_array_equal(rgb, pillow_pixels(path))


def _one_line_error(path: Path) -> str:
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: truncated or corrupt image data (") and "\n" not in msg
    return msg


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated_jpeg_keeps_pillows_error(tmp_path, progressive, keep):
    data = pillow_jpeg(tmp_path / "full.jpg", textured(), progressive=progressive).read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: int(len(data) * keep)])
    assert "image file is truncated" in _one_line_error(cut)


def test_broken_huffman_table_keeps_pillows_error(tmp_path):
    data = bytearray(pillow_jpeg(tmp_path / "full.jpg", textured()).read_bytes())
    dht = data.index(b"\xff\xc4")
    data[dht + 5 : dht + 21] = b"\xff" * 16  # code counts that overflow the table
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(bytes(data))
    assert "broken data stream" in _one_line_error(bad)


def test_corrupt_scan_decodes_like_pillow(tmp_path):
    """Damaged entropy-coded data is a libjpeg warning, not an error: both fill in the same way."""
    data = bytearray(pillow_jpeg(tmp_path / "full.jpg", textured(), quality=90).read_bytes())
    middle = len(data) // 2
    data[middle : middle + 40] = b"\x00" * 40
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(bytes(data))
    np.testing.assert_array_equal(read_image(bad)[0], pillow_pixels(bad))


def test_frame_marker():
    buf = io.BytesIO()
    Image.fromarray(textured()).save(buf, "JPEG", progressive=True)
    assert dj._frame_marker(buf.getvalue()) == 0xC2
    assert dj._frame_marker(b"\xff\xd8\xff\xda\x00\x02") is None  # scan before any frame
    assert dj._frame_marker(b"\xff\xd8garbage") is None


# ------------------------------------------------------------------------------------- writing


def big_icc() -> bytes:
    """A profile over two APP2 chunks long (the reader does not parse it: it keeps the bytes)."""
    base = srgb_icc()
    filler = np.random.default_rng(5).integers(0, 256, 2 * dj.ICC_CHUNK + 1234, dtype=np.uint8)
    return base + filler.tobytes()


@pytest.mark.parametrize("quality", [95, 90, 89, 60])
@pytest.mark.parametrize("icc_kind", ["none", "srgb", "three-chunks"])
def test_written_bytes_are_pillows(tmp_path, quality, icc_kind):
    icc = {"none": None, "srgb": srgb_icc(), "three-chunks": big_icc()}[icc_kind]
    exif = exif_with(make="ACME", model="X")  # Exif.tobytes() starts with b"Exif\0\0"
    meta = ImageMeta(format="JPEG", bit_depth=8, mode="RGB", exif=exif, icc_profile=icc)
    ours = write_image(tmp_path / "ours.jpg", textured(), meta, quality=quality).read_bytes()
    options = {"subsampling": 0} if quality >= 90 else {}
    theirs = pillow_jpeg(tmp_path / "pil.jpg", textured(), quality=quality, exif=exif,
                         **({"icc_profile": icc} if icc else {}), **options).read_bytes()
    assert ours == theirs
    with Image.open(tmp_path / "ours.jpg") as im:
        assert im.info.get("icc_profile") == icc
        assert im.getexif()[0x010F] == "ACME" and im.getexif()[0x0110] == "X"


def test_three_icc_chunks_are_numbered(tmp_path):
    icc = big_icc()
    meta = ImageMeta(format="JPEG", bit_depth=8, mode="RGB", icc_profile=icc)
    data = write_image(tmp_path / "o.jpg", textured(), meta).read_bytes()
    starts = [i for i in range(len(data)) if data.startswith(b"\xff\xe2", i)
              and data.startswith(b"ICC_PROFILE\x00", i + 4)]
    assert [data[i + 16 : i + 18] for i in starts] == [b"\x01\x03", b"\x02\x03", b"\x03\x03"]
    assert data[starts[0] + 2 : starts[0] + 4] == b"\xff\xff"  # a full chunk: 65519 + 16 bytes
    assert read_image(tmp_path / "o.jpg")[1].icc_profile == icc


def test_too_long_exif_is_dropped(tmp_path):
    ex = Image.Exif()
    ex[0x010E] = "x" * 70000  # ImageDescription
    meta = ImageMeta(format="JPEG", bit_depth=8, mode="RGB", exif=ex.tobytes())
    path = write_image(tmp_path / "o.jpg", textured(), meta)
    assert read_image(path)[1].exif is None


def test_sixteen_bit_and_rgba_views_are_written_as_8bit_rgb(tmp_path):
    sixteen = photo(40, 56, dtype=np.uint16)
    rgba = np.concatenate([textured(), np.full((75, 101, 1), 7, np.uint8)], axis=2)
    a = write_image(tmp_path / "a.jpg", sixteen).read_bytes()
    b = pillow_jpeg(tmp_path / "b.jpg", ((sixteen.astype(np.uint32) + 128) // 257).astype(np.uint8),
                    quality=95, subsampling=0).read_bytes()
    assert a == b
    c = write_image(tmp_path / "c.jpg", rgba).read_bytes()
    assert c == pillow_jpeg(tmp_path / "d.jpg", textured(), quality=95, subsampling=0).read_bytes()


def test_opencv_encoder_error_falls_back_to_pillow(tmp_path, monkeypatch):
    expected = pillow_jpeg(tmp_path / "pil.jpg", textured(), quality=95, subsampling=0).read_bytes()

    def refuse(*args):
        raise cv2.error("simulated")

    monkeypatch.setattr(cv2, "imencode", refuse)
    assert write_image(tmp_path / "o.jpg", textured()).read_bytes() == expected


def test_opencv_encoder_crash_leaves_nothing(tmp_path, monkeypatch):
    def crash(*args):
        raise RuntimeError("simulated encoder crash")

    monkeypatch.setattr(cv2, "imencode", crash)
    with pytest.raises(ImageWriteError, match="simulated encoder crash"):
        write_image(tmp_path / "o.jpg", textured())
    assert list(tmp_path.iterdir()) == []


def test_insert_after_jfif():
    segment = b"\xff\xe1\x00\x04ab"
    jfif = b"\xff\xd8\xff\xe0\x00\x06JFIF\xff\xdb..."
    assert dj.insert_after_jfif(jfif, segment) == b"\xff\xd8\xff\xe0\x00\x06JFIF" + segment + b"\xff\xdb..."
    assert dj.insert_after_jfif(b"\xff\xd8\xff\xdb...", segment) == b"\xff\xd8" + segment + b"\xff\xdb..."
    with pytest.raises(ValueError, match="no SOI"):
        dj.insert_after_jfif(b"\x89PNG", segment)
