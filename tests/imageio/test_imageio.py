"""Tests for dpe_hf.imageio: every test image is generated here, under tmp_path."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageOps

from dpe_hf import imageio as dio
from dpe_hf.imageio import (
    DEFAULT_MAX_PIXELS,
    SUPPORTED_SUFFIXES,
    ImageMeta,
    from_float,
    read_image,
    to_float32,
    write_image,
)
from dpe_hf.errors import ImageReadError, ImageTooLargeError, ImageWriteError

H, W = 48, 64  # deliberately not square, so rotations change the shape


# ------------------------------------------------------------------------------------ helpers


def smooth_rgb(h: int = H, w: int = W, dtype=np.uint8) -> np.ndarray:
    """A smooth, asymmetric colour image (lossy codecs reproduce it well)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = x / (w - 1)
    g = y / (h - 1)
    b = 0.5 + 0.4 * np.sin(x / 9.0) * np.cos(y / 7.0)
    img = np.stack([r, g, b], axis=2)
    maxval = np.iinfo(dtype).max
    return np.rint(img * maxval).astype(dtype)


def asym_rgb(h: int = H, w: int = W) -> np.ndarray:
    """Every pixel different and no symmetry: any flip/rotation is detected exactly."""
    n = np.arange(h * w * 3, dtype=np.int64).reshape(h, w, 3)
    return ((n * 7919) % 251).astype(np.uint8)


def wide16(h: int = H, w: int = W) -> np.ndarray:
    """uint16 values that do not survive a trip through 8 bits."""
    n = np.arange(h * w * 3, dtype=np.int64).reshape(h, w, 3)
    return ((n * 40503 + 12345) % 65536).astype(np.uint16)


def psnr(a: np.ndarray, b: np.ndarray, maxval: float = 255.0) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(maxval**2 / mse)


def png_chunk(ctype: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(ctype)) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", crc)


def png_insert_after_ihdr(png: bytes, chunk: bytes) -> bytes:
    return png[:33] + chunk + png[33:]


def exif_bytes(**tags: int | str) -> bytes:
    ex = Image.Exif()
    names = {"orientation": 0x0112, "make": 0x010F, "model": 0x0110}
    for k, v in tags.items():
        ex[names[k]] = v
    return ex.tobytes()


def exif_tags(meta_exif: bytes | None) -> Image.Exif:
    assert meta_exif is not None
    ex = Image.Exif()
    ex.load(meta_exif)
    return ex


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def assert_read_error(path: Path, fragment: str, cls=ImageReadError) -> ImageReadError:
    with pytest.raises(cls) as info:
        read_image(path)
    msg = str(info.value)
    assert fragment in msg, msg
    assert str(path) in msg, msg
    assert "\n" not in msg
    assert msg.startswith(f"{path}: ")
    return info.value


# ------------------------------------------------------------------------------ module shape


def test_constants():
    assert DEFAULT_MAX_PIXELS == 100_000_000
    for s in (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"):
        assert s in SUPPORTED_SUFFIXES


def test_module_does_not_import_torch():
    code = "import sys, dpe_hf.imageio; sys.exit(1 if 'torch' in sys.modules else 0)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff", ".bmp"])
def test_roundtrip_8bit_lossless(tmp_path, suffix):
    img = asym_rgb()
    if suffix == ".bmp":  # BMP is read-only for us: write it with Pillow
        out = tmp_path / "a.bmp"
        Image.fromarray(img).save(out)
    else:
        out = write_image(tmp_path / f"a{suffix}", img)
    got, meta = read_image(out)
    assert got.dtype == np.uint8 and got.shape == (H, W, 3)
    np.testing.assert_array_equal(got, img)
    assert meta.bit_depth == 8
    assert meta.size == (W, H)
    assert meta.format == {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}[suffix]


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".webp"])
def test_roundtrip_8bit_lossy(tmp_path, suffix):
    img = smooth_rgb()
    out = write_image(tmp_path / f"a{suffix}", img, quality=95)
    got, meta = read_image(out)
    assert got.dtype == np.uint8 and got.shape == img.shape
    assert psnr(got, img) > 35
    assert meta.format == ("WEBP" if suffix == ".webp" else "JPEG")


def test_jpeg_quality_and_subsampling(tmp_path):
    img = smooth_rgb()
    hi = write_image(tmp_path / "hi.jpg", img, quality=95)
    lo = write_image(tmp_path / "lo.jpg", img, quality=60)
    with Image.open(hi) as im:
        assert im.layer[0][1:3] == (1, 1) and im.layer[1][1:3] == (1, 1)  # 4:4:4
    assert lo.stat().st_size < hi.stat().st_size


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_roundtrip_16bit_exact(tmp_path, suffix):
    img = wide16()
    assert (img % 257 != 0).any() and img.max() > 255
    out = write_image(tmp_path / f"a{suffix}", img)
    got, meta = read_image(out)
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, img)
    assert meta.bit_depth == 16
    assert meta.mode == "RGB;16"


def png16_by_hand(rgb: np.ndarray) -> bytes:
    """A 16-bit RGB PNG written without any image library (filter 0, big-endian samples)."""
    h, w, _ = rgb.shape
    rows = b"".join(b"\x00" + rgb[y].astype(">u2").tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def test_16bit_png_channel_order_independent_of_our_writer(tmp_path):
    img = wide16()
    path = tmp_path / "hand16.png"
    path.write_bytes(png16_by_hand(img))
    got, meta = read_image(path)
    assert got.dtype == np.uint16 and meta.mode == "RGB;16"
    np.testing.assert_array_equal(got, img)
    # and what we write decodes, in another decoder, to the same colours
    out = write_image(tmp_path / "ours16.png", img)
    with Image.open(out) as im:  # Pillow reduces 16-bit RGB PNG to its high bytes
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), (img >> 8).astype(np.uint8))


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_roundtrip_16bit_with_alpha(tmp_path, suffix):
    img = wide16()
    alpha = np.linspace(0, 65535, H * W).reshape(H, W).astype(np.uint16)
    meta = ImageMeta(format="PNG", bit_depth=16, mode="RGBA;16", alpha=alpha, size=(W, H))
    out = write_image(tmp_path / f"a{suffix}", img, meta)
    got, meta2 = read_image(out)
    np.testing.assert_array_equal(got, img)
    assert meta2.alpha is not None and meta2.alpha.dtype == np.uint16
    np.testing.assert_array_equal(meta2.alpha, alpha)


@pytest.mark.parametrize("suffix", [".png", ".webp", ".tif"])
def test_alpha_written_8bit(tmp_path, suffix):
    img = asym_rgb()
    alpha = (np.arange(H * W) % 256).reshape(H, W).astype(np.uint8)
    meta = ImageMeta(format="PNG", bit_depth=8, mode="RGBA", alpha=alpha, size=(W, H))
    out = write_image(tmp_path / f"a{suffix}", img, meta, quality=100)
    _, meta2 = read_image(out)
    assert meta2.alpha is not None
    if suffix == ".webp":
        assert np.abs(meta2.alpha.astype(int) - alpha).max() <= 2
    else:
        np.testing.assert_array_equal(meta2.alpha, alpha)


def test_alpha_dropped_for_jpeg(tmp_path):
    rgba = np.dstack([smooth_rgb(), np.full((H, W), 128, np.uint8)])
    out = write_image(tmp_path / "a.jpg", rgba)
    got, meta = read_image(out)
    assert got.shape == (H, W, 3) and meta.alpha is None


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_uint16_to_8bit_formats_rounds(tmp_path, suffix):
    vals = np.array([0, 128, 129, 385, 386, 32896, 65535], np.uint16)  # round(v/257) edges
    expected = np.rint(vals / 257.0).astype(int)
    img = np.repeat(np.repeat(vals[None, :, None], 16, axis=1).reshape(1, -1, 1), 16, axis=0)
    img = np.repeat(img, 3, axis=2).astype(np.uint16)
    out = write_image(tmp_path / f"a{suffix}", img, quality=100)
    got, meta = read_image(out)
    assert got.dtype == np.uint8 and meta.bit_depth == 8
    cols = got[8, 8::16, 0].astype(int)
    assert np.abs(cols - expected).max() <= 2


def test_format_argument_overrides_suffix(tmp_path):
    out = write_image(tmp_path / "noext", asym_rgb(), format="png")
    assert out == tmp_path / "noext"
    got, meta = read_image(out)
    assert meta.format == "PNG"
    np.testing.assert_array_equal(got, asym_rgb())


# ------------------------------------------------------------------------------ orientation


def _inverse_orient(upright: np.ndarray, o: int) -> np.ndarray:
    """The stored pixels that a viewer shows as `upright` for EXIF orientation o (by hand)."""
    return {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, 1),  # viewer rotates 90 degrees clockwise
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: np.rot90(a, -1),  # viewer rotates 90 degrees counter-clockwise
    }[o](upright)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_png(tmp_path, orientation):
    upright = asym_rgb()
    stored = np.ascontiguousarray(_inverse_orient(upright, orientation))
    path = tmp_path / "o.png"
    Image.fromarray(stored).save(path, exif=exif_bytes(orientation=orientation, make="ACME"))
    with Image.open(path) as im:  # Pillow's own reading of the orientation: the reference
        reference = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(reference, upright)
    got, meta = read_image(path)
    np.testing.assert_array_equal(got, upright)
    assert meta.size == (W, H)
    tags = exif_tags(meta.exif)
    assert tags[0x0112] == 1
    assert tags[0x010F] == "ACME"


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_jpeg_matches_pillow(tmp_path, orientation):
    path = tmp_path / "o.jpg"
    Image.fromarray(smooth_rgb()).save(path, quality=95, exif=exif_bytes(orientation=orientation))
    with Image.open(path) as im:
        reference = np.asarray(ImageOps.exif_transpose(im))
    got, meta = read_image(path)
    np.testing.assert_array_equal(got, reference)
    assert exif_tags(meta.exif)[0x0112] == 1
    # written back upright, with orientation 1: a viewer shows the same picture
    out = write_image(tmp_path / "back.jpg", got, meta)
    with Image.open(out) as im:
        assert im.getexif()[0x0112] == 1


def test_exif_orientation_16bit_png(tmp_path):
    cv2 = pytest.importorskip("cv2")
    upright = wide16()
    stored = np.ascontiguousarray(_inverse_orient(upright, 6))
    ok, buf = cv2.imencode(".png", stored[:, :, ::-1])
    assert ok
    raw_exif = exif_bytes(orientation=6, make="ACME")[6:]  # eXIf holds no "Exif\0\0"
    path = tmp_path / "o16.png"
    path.write_bytes(png_insert_after_ihdr(buf.tobytes(), png_chunk(b"eXIf", raw_exif)))
    got, meta = read_image(path)
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, upright)
    assert exif_tags(meta.exif)[0x0112] == 1 and exif_tags(meta.exif)[0x010F] == "ACME"


@pytest.mark.parametrize("orientation", [2, 5, 6, 7, 8])
@pytest.mark.parametrize("compression", [None, "tiff_adobe_deflate"])
def test_exif_orientation_8bit_tiff(tmp_path, orientation, compression):
    upright = asym_rgb()
    stored = np.ascontiguousarray(_inverse_orient(upright, orientation))
    path = tmp_path / "o.tif"
    ex = Image.Exif()
    ex[0x0112] = orientation
    ex[0x010F] = "ACME"
    Image.fromarray(stored).save(path, compression=compression, exif=ex)
    got, meta = read_image(path)
    np.testing.assert_array_equal(got, upright)
    tags = exif_tags(meta.exif)
    assert tags.get(0x0112, 1) == 1 and tags[0x010F] == "ACME"
    assert 273 not in tags and 256 not in tags  # TIFF layout tags are not carried as EXIF


def test_exif_orientation_16bit_tiff(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    upright = wide16()
    path = tmp_path / "o16.tif"
    tifffile.imwrite(
        path, np.ascontiguousarray(_inverse_orient(upright, 8)), photometric="rgb",
        extratags=[(274, "H", 1, 8, True)],
    )
    got, meta = read_image(path)
    np.testing.assert_array_equal(got, upright)
    assert meta.bit_depth == 16 and meta.size == (W, H)


# ------------------------------------------------------------------------------ metadata


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif", "png16", "tif16"])
def test_icc_profile_carried(tmp_path, suffix):
    icc = srgb_icc()
    sixteen = suffix.endswith("16")
    ext = "." + suffix[:3] if sixteen else suffix
    img = wide16() if sixteen else smooth_rgb()
    meta = ImageMeta(format="", bit_depth=16 if sixteen else 8, mode="RGB", icc_profile=icc)
    first = write_image(tmp_path / f"a{ext}", img, meta)
    _, meta1 = read_image(first)
    assert meta1.icc_profile == icc
    second = write_image(tmp_path / f"b{ext}", img, meta1)  # read -> write keeps it
    _, meta2 = read_image(second)
    assert meta2.icc_profile == icc


def test_icc_read_from_pillow_file(tmp_path):
    icc = srgb_icc()
    path = tmp_path / "icc.jpg"
    Image.fromarray(smooth_rgb()).save(path, icc_profile=icc)
    _, meta = read_image(path)
    assert meta.icc_profile == icc


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif", "png16"])
def test_exif_make_model_carried(tmp_path, suffix):
    src = tmp_path / "src.jpg"
    Image.fromarray(smooth_rgb()).save(src, exif=exif_bytes(make="ACME", model="Model X"))
    img, meta = read_image(src)
    if suffix == "png16":
        img, suffix = img.astype(np.uint16) * 257, ".png"
    out = write_image(tmp_path / f"out{suffix}", img, meta)
    _, meta2 = read_image(out)
    tags = exif_tags(meta2.exif)
    assert tags[0x010F] == "ACME" and tags[0x0110] == "Model X"


def test_no_exif_no_icc_gives_none(tmp_path):
    out = write_image(tmp_path / "plain.png", asym_rgb())
    _, meta = read_image(out)
    assert meta.exif is None and meta.icc_profile is None and meta.alpha is None


# ------------------------------------------------------------------------------ colour modes


def test_grayscale_png(tmp_path):
    gray = (np.arange(H * W) % 256).reshape(H, W).astype(np.uint8)
    path = tmp_path / "g.png"
    Image.fromarray(gray, "L").save(path)
    got, meta = read_image(path)
    assert got.shape == (H, W, 3) and got.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(got[:, :, c], gray)
    assert meta.mode == "L" and meta.bit_depth == 8


def test_palette_png(tmp_path):
    img = asym_rgb()
    pal = Image.fromarray(img).quantize(colors=16)
    path = tmp_path / "p.png"
    pal.save(path)
    got, meta = read_image(path)
    np.testing.assert_array_equal(got, np.asarray(pal.convert("RGB")))
    assert meta.mode == "P" and meta.alpha is None


def test_palette_with_transparency_gives_alpha(tmp_path):
    pal = Image.fromarray(asym_rgb()).quantize(colors=8)
    path = tmp_path / "pt.png"
    pal.save(path, transparency=0)
    got, meta = read_image(path)
    assert meta.alpha is not None
    idx = np.asarray(pal)
    np.testing.assert_array_equal(meta.alpha == 0, idx == 0)


def test_rgba_png_keeps_alpha(tmp_path):
    img = asym_rgb()
    alpha = ((np.arange(H * W) * 3) % 256).reshape(H, W).astype(np.uint8)
    path = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([img, alpha]), "RGBA").save(path)
    got, meta = read_image(path)
    np.testing.assert_array_equal(got, img)
    np.testing.assert_array_equal(meta.alpha, alpha)
    assert meta.alpha.dtype == np.uint8 and meta.mode == "RGBA"


def test_la_png_keeps_alpha(tmp_path):
    gray = (np.arange(H * W) % 256).reshape(H, W).astype(np.uint8)
    alpha = gray[::-1, ::-1].copy()
    path = tmp_path / "la.png"
    Image.fromarray(np.dstack([gray, alpha]), "LA").save(path)
    got, meta = read_image(path)
    np.testing.assert_array_equal(got[:, :, 1], gray)
    np.testing.assert_array_equal(meta.alpha, alpha)


def test_cmyk_jpeg(tmp_path):
    rgb_im = Image.fromarray(smooth_rgb())
    cmyk = rgb_im.convert("CMYK")
    path = tmp_path / "cmyk.jpg"
    cmyk.save(path, quality=95)
    got, meta = read_image(path)
    assert got.shape == (H, W, 3) and got.dtype == np.uint8
    assert meta.mode == "CMYK"
    assert psnr(got, smooth_rgb()) > 30


def test_gray16_png(tmp_path):
    gray = ((np.arange(H * W) * 997) % 65536).reshape(H, W).astype(np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(gray).save(path)  # Pillow writes "I;16" as a 16-bit grayscale PNG
    got, meta = read_image(path)
    assert got.dtype == np.uint16 and got.shape == (H, W, 3)
    for c in range(3):
        np.testing.assert_array_equal(got[:, :, c], gray)
    assert meta.bit_depth == 16 and meta.mode == "L;16"


def test_gray16_tiff(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    gray = ((np.arange(H * W) * 997) % 65536).reshape(H, W).astype(np.uint16)
    path = tmp_path / "g16.tif"
    tifffile.imwrite(path, gray, photometric="minisblack")
    got, meta = read_image(path)
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got[:, :, 2], gray)


def test_animated_gif_first_frame(tmp_path):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (W, H), c) for c in colours]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    with Image.open(path) as im:
        assert im.n_frames == 3
    got, meta = read_image(path)
    assert meta.format == "GIF" and got.shape == (H, W, 3)
    assert tuple(got[H // 2, W // 2]) == (255, 0, 0)


# ------------------------------------------------------------------------------ read errors


def test_missing_file(tmp_path):
    assert_read_error(tmp_path / "nope.jpg", "file not found")


def test_directory(tmp_path):
    d = tmp_path / "folder.png"
    d.mkdir()
    assert_read_error(d, "directory")


def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    assert_read_error(p, "empty file (0 bytes)")


def test_text_file_named_jpg(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("this is not a picture\n" * 20)
    assert_read_error(p, "not a recognised image format")


def test_truncated_jpeg(tmp_path):
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, "JPEG", quality=95)
    p = tmp_path / "cut.jpg"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    assert_read_error(p, "truncated or corrupt image data")


def test_truncated_png(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(asym_rgb()).save(buf, "PNG")
    p = tmp_path / "cut.png"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    assert_read_error(p, "truncated or corrupt image data")


@pytest.mark.parametrize("where", ["IHDR", "IDAT"])
def test_png_bad_crc(tmp_path, where):
    buf = io.BytesIO()
    Image.fromarray(asym_rgb()).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    pos = data.index(where.encode()) + 4 + 2  # a byte inside the chunk's data
    data[pos] ^= 0xFF
    p = tmp_path / "crc.png"
    p.write_bytes(bytes(data))
    assert_read_error(p, f"bad CRC in the {where} chunk")


def _bomb_png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def test_png_bomb_rejected_from_header(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(_bomb_png(50000, 50000))
    t0 = time.perf_counter()
    err = assert_read_error(p, "image is 50000x50000 = 2500.0 MP", ImageTooLargeError)
    assert time.perf_counter() - t0 < 1.0
    assert "over the limit of 100.0 MP (--max-pixels)" in str(err)
    assert isinstance(err, ImageReadError)


def test_jpeg_bomb_rejected_from_header(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(smooth_rgb()).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 40000, 40000)  # height, width
    p = tmp_path / "bomb.jpg"
    p.write_bytes(bytes(data))
    t0 = time.perf_counter()
    assert_read_error(p, "image is 40000x40000 = 1600.0 MP", ImageTooLargeError)
    assert time.perf_counter() - t0 < 1.0


def test_max_pixels_argument(tmp_path):
    out = write_image(tmp_path / "a.png", asym_rgb())
    with pytest.raises(ImageTooLargeError, match=r"64x48 = 0\.0 MP, over the limit of 0\.0 MP"):
        read_image(out, max_pixels=1000)
    read_image(out, max_pixels=H * W)  # exactly at the limit is fine
    read_image(out, max_pixels=None)


def test_pillow_limit_never_replaces_ours(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow alone would refuse 64x48
    out = write_image(tmp_path / "a.jpg", smooth_rgb())
    got, _ = read_image(out)  # our limit (100 MP) applies, not Pillow's
    assert got.shape == (H, W, 3)
    with pytest.raises(ImageTooLargeError, match="--max-pixels"):
        read_image(out, max_pixels=1000)
    assert Image.MAX_IMAGE_PIXELS == 100  # restored


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(tmp_path):
    p = write_image(tmp_path / "secret.png", asym_rgb())
    p.chmod(0)
    try:
        assert_read_error(p, "permission denied")
    finally:
        p.chmod(0o644)


def test_parent_is_a_file_on_read(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert_read_error(f / "img.png", "file not found")


# ------------------------------------------------------------------------------ writes


def test_write_parent_is_regular_file(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("I am a file")
    with pytest.raises(ImageWriteError) as info:
        write_image(blocker / "out.png", asym_rgb())
    assert str(blocker / "out.png") in str(info.value)
    assert "not a folder" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]
    assert blocker.read_text() == "I am a file"


def test_write_missing_folder(tmp_path):
    with pytest.raises(ImageWriteError, match="does not exist"):
        write_image(tmp_path / "no" / "such" / "out.png", asym_rgb())
    assert list(tmp_path.iterdir()) == []


def test_write_destination_is_directory(tmp_path):
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ImageWriteError, match="is a directory"):
        write_image(tmp_path / "d.png", asym_rgb())
    assert leftovers(tmp_path) == []


def test_write_unsupported_suffix_and_array(tmp_path):
    with pytest.raises(ImageWriteError, match="unsupported output format"):
        write_image(tmp_path / "a.xyz", asym_rgb())
    with pytest.raises(ImageWriteError, match="expected H x W x 3"):
        write_image(tmp_path / "a.png", asym_rgb().astype(np.float32))
    with pytest.raises(ImageWriteError, match="expected H x W x 3"):
        write_image(tmp_path / "a.png", asym_rgb()[:, :, 0])
    assert list(tmp_path.iterdir()) == []


def _failing_save(self, fp, *args, **kwargs):
    fp.write(b"partial data that must not survive")
    raise OSError("simulated encoder failure")


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_write_failure_leaves_nothing(tmp_path, monkeypatch, suffix):
    monkeypatch.setattr(Image.Image, "save", _failing_save)
    # JPEGs go to Pillow when OpenCV refuses them (test_imageio_jpeg covers OpenCV failing)
    monkeypatch.setattr("dpe_hf.imageio.writer.encode_rgb_jpeg", lambda *args: None)
    dest = tmp_path / f"out{suffix}"
    with pytest.raises(ImageWriteError, match="simulated encoder failure") as info:
        write_image(dest, asym_rgb())
    assert str(dest) in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_write_failure_16bit_leaves_nothing(tmp_path, monkeypatch):
    cv2 = pytest.importorskip("cv2")

    def boom(*a, **k):
        raise RuntimeError("simulated cv2 failure")

    monkeypatch.setattr(cv2, "imencode", boom)
    with pytest.raises(ImageWriteError, match="simulated cv2 failure"):
        write_image(tmp_path / "out.png", wide16())
    assert list(tmp_path.iterdir()) == []


def test_write_failure_keeps_existing_destination(tmp_path, monkeypatch):
    dest = write_image(tmp_path / "out.png", asym_rgb())
    before = dest.read_bytes()
    monkeypatch.setattr(Image.Image, "save", _failing_save)
    with pytest.raises(ImageWriteError):
        write_image(dest, smooth_rgb())
    assert dest.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_write_interrupt_cleans_up(tmp_path, monkeypatch):
    def interrupted(self, fp, *a, **k):
        fp.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_image(tmp_path / "out.png", asym_rgb())
    assert list(tmp_path.iterdir()) == []


def test_write_replaces_existing_atomically(tmp_path, monkeypatch):
    dest = tmp_path / "out.png"
    write_image(dest, asym_rgb())
    dest.chmod(0o640)
    seen: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append((os.fspath(src), os.fspath(dst)))
        # at this moment the old file is still complete and the new one is a sibling temp file
        assert dest.exists()
        np.testing.assert_array_equal(read_image(dest)[0], asym_rgb())
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    write_image(dest, smooth_rgb())
    assert len(seen) == 1
    tmp_name = Path(seen[0][0]).name
    assert Path(seen[0][0]).parent == tmp_path
    assert tmp_name.startswith(".") and tmp_name.endswith(".tmp")
    assert Path(seen[0][1]) == dest
    np.testing.assert_array_equal(read_image(dest)[0], smooth_rgb())
    assert leftovers(tmp_path) == [] and [p.name for p in tmp_path.iterdir()] == ["out.png"]
    assert (dest.stat().st_mode & 0o777) == 0o640  # the old file's permissions are kept


def test_new_file_is_not_private(tmp_path):
    dest = write_image(tmp_path / "out.png", asym_rgb())
    umask = os.umask(0)
    os.umask(umask)
    assert (dest.stat().st_mode & 0o777) == (0o666 & ~umask)


# ------------------------------------------------------------------------------ conversions


def test_to_float32():
    a8 = np.array([0, 1, 128, 255], np.uint8)
    a16 = np.array([0, 1, 32768, 65535], np.uint16)
    f8, f16 = to_float32(a8), to_float32(a16)
    assert f8.dtype == np.float32 and f16.dtype == np.float32
    np.testing.assert_allclose(f8, a8 / 255.0, rtol=1e-6)
    np.testing.assert_allclose(f16, a16 / 65535.0, rtol=1e-6)
    assert f8.max() == 1.0 and f16.max() == 1.0
    with pytest.raises(TypeError):
        to_float32(np.array([1], np.int32))


def test_from_float_clips_and_rounds():
    x = np.array([-0.5, 0.0, 0.5 / 255, 1.5 / 255, 1.0, 2.0, np.nan], np.float32)
    np.testing.assert_array_equal(from_float(x, np.uint8), [0, 0, 0, 2, 255, 255, 0])  # half even
    y = np.array([0.0, 1.0, 1.2, 0.5], np.float32)
    np.testing.assert_array_equal(from_float(y, np.uint16), [0, 65535, 65535, 32768])
    assert from_float(y, "uint16").dtype == np.uint16
    with pytest.raises(TypeError):
        from_float(y, np.int16)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 65535), min_size=1, max_size=50))
def test_float_roundtrip_exact(values):
    a16 = np.array(values, np.uint16)
    np.testing.assert_array_equal(from_float(to_float32(a16), np.uint16), a16)
    a8 = (a16 % 256).astype(np.uint8)
    np.testing.assert_array_equal(from_float(to_float32(a8), np.uint8), a8)


# ------------------------------------------------------- bytes in memory, reduced JPEG decode


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif"])
def test_read_from_bytes_equals_read_from_file(tmp_path, suffix):
    path = tmp_path / f"o{suffix}"
    img = wide16() if suffix == ".tif" else asym_rgb()
    meta = ImageMeta(format="", bit_depth=8, mode="RGB", exif=exif_bytes(orientation=6, make="Cam"))
    write_image(path, img, meta)
    from_file, meta_file = read_image(path)
    from_bytes, meta_bytes = read_image("anything" + suffix, data=path.read_bytes())
    np.testing.assert_array_equal(from_bytes, from_file)
    assert meta_bytes == meta_file


def test_bad_bytes_are_one_line_naming_the_given_name(tmp_path):
    with pytest.raises(ImageReadError) as info:
        read_image("shot.png", data=b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    assert str(info.value).startswith("shot.png: ") and "\n" not in str(info.value)
    with pytest.raises(ImageReadError, match="empty"):
        read_image("shot.png", data=b"")


def test_jpeg_draft_side_decodes_big_jpegs_smaller(tmp_path):
    path = tmp_path / "big.jpg"
    write_image(path, smooth_rgb(1200, 1600))
    full, _ = read_image(path)
    small, meta = read_image(path, jpeg_draft_side=100)
    assert full.shape == (1200, 1600, 3)
    assert 200 <= small.shape[1] < 400 and small.shape[0] * 4 == small.shape[1] * 3  # scale 1/8..1/4
    assert meta.size == (small.shape[1], small.shape[0])
    assert read_image(path, jpeg_draft_side=500)[0].shape == full.shape  # not 4x over: full size
    png = tmp_path / "big.png"
    write_image(png, smooth_rgb(1200, 1600))
    assert read_image(png, jpeg_draft_side=100)[0].shape == full.shape  # JPEG only


# ------------------------------------------------------------- optional extras: RAW and HEIF


HEIC_HEAD = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"  # an ISO-BMFF ftyp box


def test_raw_and_heif_are_supported_suffixes():
    for s in dio.RAW_SUFFIXES + dio.HEIF_SUFFIXES:
        assert s in SUPPORTED_SUFFIXES
    assert {".dng", ".cr2", ".nef", ".arw", ".raf", ".orf", ".rw2", ".heic", ".heif"} <= set(SUPPORTED_SUFFIXES)


@pytest.mark.parametrize("name,content,module,message", [
    ("photo.heic", HEIC_HEAD, "pillow_heif", 'HEIF needs the optional extra: pip install "dpe_hf[heif]"'),
    ("named.jpg", HEIC_HEAD, "pillow_heif", 'HEIF needs the optional extra: pip install "dpe_hf[heif]"'),
    ("photo.CR2", b"II*\x00" + b"\x00" * 60, "rawpy", 'camera RAW needs the optional extra: pip install "dpe_hf[raw]"'),
    ("photo.dng", b"II*\x00" + b"\x00" * 60, "rawpy", 'camera RAW needs the optional extra: pip install "dpe_hf[raw]"'),
])
def test_a_missing_extra_is_one_line_naming_it(tmp_path, monkeypatch, name, content, module, message):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails, installed or not
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert str(info.value) == f"{path}: {message}"


class _FakeRaw:
    """What dpe_hf uses of rawpy.RawPy, returning a fixed 16-bit picture."""

    def __init__(self, calls: dict):
        self.calls = calls
        self.sizes = type("Sizes", (), {"width": 6, "height": 4})()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def postprocess(self, **kwargs):
        self.calls.update(kwargs)
        return np.full((4, 6, 3), 40000, np.uint16)


def test_raw_is_developed_to_16_bit_srgb(tmp_path, monkeypatch):
    calls: dict = {}
    fake = type(sys)("rawpy")
    fake.imread = lambda f: _FakeRaw(calls)
    fake.LibRawError = RuntimeError
    fake.ColorSpace = type("ColorSpace", (), {"sRGB": "sRGB"})
    monkeypatch.setitem(sys.modules, "rawpy", fake)
    path = tmp_path / "x.nef"
    path.write_bytes(b"MM\x00*" + b"\x00" * 60)
    arr, meta = read_image(path)
    assert arr.shape == (4, 6, 3) and arr.dtype == np.uint16 and arr.flags.writeable
    assert (meta.format, meta.bit_depth, meta.size, meta.icc_profile) == ("RAW", 16, (6, 4), None)
    assert calls["output_bps"] == 16 and calls["output_color"] == "sRGB" and calls["gamma"] == (2.4, 12.92)
    with pytest.raises(ImageTooLargeError):
        read_image(path, max_pixels=20)
    fake.imread = lambda f: (_ for _ in ()).throw(RuntimeError("unsupported file format"))
    with pytest.raises(ImageReadError, match="camera RAW could not be developed: unsupported file format"):
        read_image(path)
