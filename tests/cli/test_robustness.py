"""Robustness (issue 8): unusual but valid inputs, bad inputs, specific exceptions, fuzzing.

Every image is generated here (no binary fixtures) and run through `dpe enhance` in-process
(`main([...])`) with a tiny random model (tests/conftest.py).  The two fuzzers at the end
run 50 examples each here; `benchmarks/fuzz.py` runs the same ones with thousands.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageOps

from dpe_hf.cli import main
from dpe_hf.imageio import read_image, write_image
from dpe_hf.errors import DPEError, ImageReadError, ImageTooLargeError, ImageWriteError
from helpers import adobe_rgb_like_icc, error_lines, photo, save

# --------------------------------------------------------------------------------------------
# helpers (also used by benchmarks/fuzz.py)
# --------------------------------------------------------------------------------------------


def png_chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data) & 0xFFFFFFFF)


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny PNG whose IHDR declares width x height 8-bit RGB (the IDAT holds one row only)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\x00" * 3 * 16)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def valid_png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(photo(12, 16, seed=7)).save(buf, format="PNG")
    return buf.getvalue()


def valid_jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(photo(12, 16, seed=8)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def check_read(path: Path, max_pixels: int = 1_000_000) -> str:
    """The fuzz property: read_image returns H x W x 3 uint8/uint16 or raises ImageReadError.
    Returns "ok" or "refused"; anything else propagates."""
    try:
        arr, meta = read_image(path, max_pixels=max_pixels)
    except ImageReadError:
        return "refused"
    assert arr.ndim == 3 and arr.shape[2] == 3 and arr.shape[0] >= 1 and arr.shape[1] >= 1, arr.shape
    assert arr.dtype in (np.uint8, np.uint16), arr.dtype
    assert meta.size == (arr.shape[1], arr.shape[0])
    return "ok"


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    buf = bytearray(data)
    for pos, value in edits:
        buf[pos % len(buf)] = value
    return bytes(buf[:cut] if cut is not None else buf)


def cli_vocabulary(tmp: Path, model_dir: Path, good: Path) -> list[str]:
    return [
        "enhance", "eval", "export", "onnx", "lut", "apply-lut", "bogus",
        "-o", "--output", str(tmp / "out"), str(tmp / "out2" / "deep"),
        "--model", str(model_dir), str(tmp / "no-model"), str(good), str(tmp / "missing.jpg"), str(tmp),
        str(tmp / "*.png"), str(tmp / "*.nothing"),
        "--strength", "0", "0.5", "1", "-1", "2", "nan", "abc",
        "--suffix", "--suffix=", "--suffix=-x", "_e",
        "--ext", "png", "jpg", ".webp", "tif", "bmp", "",
        "--quality", "0", "50", "101", "--max-side", "1", "8", "--max-pixels", "10", "100",
        "--method", "guided", "residual", "--device", "cpu", "cuda", "cuda:7", "tpu", "auto",
        "--overwrite", "--skip-existing", "--recursive", "--json", "--save-lut", "--auto-exposure",
        "--pred", "--ref", "--input", "--size", "2", "--interp", "tetrahedral", "--opset", "17",
        "--title", "--images", "--help", "--version", "-h", "--", "-", "--unknown", "\x00", "é",
    ]


SUBCOMMANDS = ["enhance", "eval", "export onnx", "lut", "apply-lut"]
OPTION_VALUES = {
    "--strength": ["0", "0.5", "1", "-1", "2", "nan", "abc"],
    "--suffix": ["", "_e", "-x"],
    "--ext": ["png", "jpg", ".webp", "tif", "bmp", "", "PNG"],
    "--quality": ["0", "1", "50", "101", "x"],
    "--max-side": ["1", "8", "0", "-3"],
    "--max-pixels": ["0", "10", "100", "1000000"],
    "--method": ["guided", "residual", "nearest"],
    "--device": ["cpu", "auto", "cuda", "cuda:7", "tpu", "mps"],
    "--size": ["2", "1", "300"],
    "--interp": ["trilinear", "tetrahedral", "cubic"],
}
FLAGS = ["--overwrite", "--skip-existing", "--recursive", "--json", "--save-lut", "--auto-exposure", "--help"]


def cli_argv(vocab: list[str], tmp: Path | None = None, model_dir: Path | None = None,
             good: Path | None = None):
    """Argument lists: a well-formed command (when tmp/model_dir/good are given) with random
    options and words added, a real subcommand followed by random words, or random words only."""
    words = st.lists(st.sampled_from(vocab), max_size=10)
    led = st.builds(lambda sub, rest: sub.split() + rest, st.sampled_from(SUBCOMMANDS), words)
    if tmp is None:
        return led | words
    cube = str(tmp / "look.cube")
    bases = [
        ["enhance", str(good), "-o", str(tmp / "out"), "--model", str(model_dir)],
        ["enhance", str(tmp), "-o", str(tmp / "out"), "--model", str(model_dir)],
        ["lut", "--model", str(model_dir), "--images", str(good), "-o", cube, "--size", "3"],
        ["apply-lut", cube, str(good), "-o", str(tmp / "graded")],
        ["eval", "--pred", str(tmp / "out"), "--ref", str(tmp), "--suffix", "_enhanced"],
        ["eval", "--model", str(model_dir), "--input", str(tmp), "--ref", str(tmp)],
    ]
    option = st.sampled_from(sorted(OPTION_VALUES)).flatmap(
        lambda k: st.sampled_from(OPTION_VALUES[k]).map(lambda v: [f"{k}={v}"] if v.startswith("-") or not v
                                                         else [k, v]))
    extra = st.lists(option | st.sampled_from(FLAGS).map(lambda f: [f])
                     | st.sampled_from(vocab).map(lambda w: [w]), max_size=4)
    formed = st.builds(lambda base, more: base + [w for group in more for w in group],
                       st.sampled_from(bases), extra)
    return formed | formed | led | words


def run_cli(argv: list[str]) -> int:
    """main(argv) with stdout/stderr swallowed; returns its code (or argparse's SystemExit code).
    Anything but 0/1/2 (and 0/2 for SystemExit) is an AssertionError; other exceptions propagate."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        try:
            code = main(argv)
        except SystemExit as exc:
            assert exc.code in (0, 2), (argv, exc.code)
            return exc.code
    assert code in (0, 1, 2), (argv, code, sink.getvalue()[-500:])
    return code


# --------------------------------------------------------------------------------------------
# unusual but valid inputs
# --------------------------------------------------------------------------------------------


def enhance_one(tmp_path: Path, model_dir: Path, src: Path, *extra: str) -> Path:
    out = tmp_path / "out"
    code = main(["enhance", str(src), "-o", str(out), "--model", str(model_dir), *extra])
    assert code == 0
    (result,) = [p for p in out.iterdir()]
    return result


def oriented_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).size


@pytest.mark.parametrize("h,w", [(1, 1), (1, 10000), (10000, 1)])
def test_extreme_shapes(tmp_path, model, h, w):
    src = save(tmp_path / "thin.png", photo(h, w))
    result = enhance_one(tmp_path, model, src)
    with Image.open(result) as im:
        assert im.size == (w, h)


def test_cmyk_jpeg(tmp_path, model):
    src = tmp_path / "cmyk.jpg"
    Image.fromarray(photo()).convert("CMYK").save(src, quality=95)
    result = enhance_one(tmp_path, model, src)
    with Image.open(result) as im:
        assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (56, 40))


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_grayscale_is_read_as_rgb_and_written_as_rgb(tmp_path, model, suffix):
    """A grayscale (mode L) photo is read as RGB with three equal channels, enhanced like any
    colour photo (the model may tint it) and written as an RGB file of the same format."""
    gray = photo()[:, :, 1]
    src = save(tmp_path / f"gray{suffix}", gray)
    arr, meta = read_image(src)
    assert arr.shape == (40, 56, 3) and meta.mode == "L"
    assert np.array_equal(arr[:, :, 0], arr[:, :, 1]) and np.array_equal(arr[:, :, 1], arr[:, :, 2])
    result = enhance_one(tmp_path, model, src)
    with Image.open(result) as im:
        assert (im.mode, im.size) == ("RGB", (56, 40))


def test_palette_png(tmp_path, model):
    src = tmp_path / "pal.png"
    Image.fromarray(photo()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(src)
    result = enhance_one(tmp_path, model, src)
    with Image.open(result) as im:
        assert (im.mode, im.size) == ("RGB", (56, 40))


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_transparency_is_preserved(tmp_path, model, mode):
    rgb = photo()
    alpha = np.zeros((40, 56), np.uint8)
    alpha[:, 20:] = 255
    alpha[10:20, :] = 128
    if mode == "LA":
        arr = np.stack([rgb[:, :, 0], alpha], axis=2)
    else:
        arr = np.concatenate([rgb, alpha[:, :, None]], axis=2)
    src = tmp_path / f"{mode}.png"
    Image.fromarray(arr, mode).save(src)
    result = enhance_one(tmp_path, model, src)
    with Image.open(result) as im:
        assert im.size == (56, 40) and im.mode == "RGBA"
        assert np.array_equal(np.asarray(im)[:, :, 3], alpha)


def test_sixteen_bit_grayscale_png(tmp_path, model):
    cv2 = pytest.importorskip("cv2")
    gray = photo(dtype=np.uint16)[:, :, 0]
    src = tmp_path / "gray16.png"
    assert cv2.imwrite(str(src), gray)
    arr, meta = read_image(src)
    assert arr.dtype == np.uint16 and arr.shape == (40, 56, 3) and meta.mode == "L;16"
    result = enhance_one(tmp_path, model, src)
    out = cv2.imread(str(result), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (40, 56, 3)  # written as 16-bit RGB


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_output_is_upright(tmp_path, model, orientation):
    src = tmp_path / f"o{orientation}.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(photo(40, 56)).save(src, quality=95, exif=exif.tobytes())
    upright = oriented_size(src)
    assert upright == ((40, 56) if orientation >= 5 else (56, 40))
    result = enhance_one(tmp_path, model, src, "--strength", "0")
    with Image.open(result) as im:
        assert im.size == upright
        assert im.getexif().get(0x0112, 1) == 1
        # with strength 0 the output is the input turned upright (up to JPEG loss)
        expected = np.asarray(ImageOps.exif_transpose(Image.open(src)), dtype=float)
        assert np.abs(np.asarray(im, dtype=float) - expected).mean() < 3


def test_non_srgb_icc_profile_is_carried(tmp_path, model):
    icc = adobe_rgb_like_icc()
    prof = ImageCms.ImageCmsProfile(io.BytesIO(icc))  # a valid profile for LittleCMS
    assert prof.profile.xcolor_space.strip() == "RGB"
    assert icc != ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for name, kwargs in (("adobe.jpg", {"quality": 95}), ("adobe.png", {})):
        src = save(tmp_path / name, photo(), icc_profile=icc, **kwargs)
        out = tmp_path / f"out_{name}"
        assert main(["enhance", str(src), "-o", str(out), "--model", str(model)]) == 0
        (result,) = out.iterdir()
        with Image.open(result) as im:
            assert im.info.get("icc_profile") == icc and im.size == (56, 40)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animated_input_uses_the_first_frame(tmp_path, model, fmt):
    red = np.zeros((40, 56, 3), np.uint8)
    red[..., 0] = 220
    blue = np.zeros((40, 56, 3), np.uint8)
    blue[..., 2] = 220
    frames = [Image.fromarray(red), Image.fromarray(blue), Image.fromarray(red)]
    src = tmp_path / f"anim.{fmt.lower()}"
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=100, loop=0, **kwargs)
    with Image.open(src) as im:
        assert getattr(im, "n_frames", 1) == 3
    result = enhance_one(tmp_path, model, src, "--strength", "0")
    assert result.suffix == (".png" if fmt == "GIF" else ".webp")  # GIF cannot be written: PNG
    with Image.open(result) as im:
        assert im.size == (56, 40) and getattr(im, "n_frames", 1) == 1
        out = np.asarray(im.convert("RGB"), dtype=float)
    assert np.abs(out - red).mean() < 4 and np.abs(out - blue).mean() > 100  # the first frame


# --------------------------------------------------------------------------------------------
# bad inputs
# --------------------------------------------------------------------------------------------


def bad_inputs(folder: Path) -> dict[str, Path]:
    """Each bad file, by the phrase its error line must hold."""
    folder.mkdir(parents=True, exist_ok=True)
    jpeg = valid_jpeg_bytes()
    png = valid_png_bytes()
    bad_crc = bytearray(png)
    bad_crc[png.index(b"IDAT") + 8] ^= 0xFF  # a pixel byte inside the IDAT chunk: its CRC no longer matches
    files = {
        "bad CRC": (folder / "crc.png", bytes(bad_crc)),
        "empty": (folder / "zero.jpg", b""),
        "truncated": (folder / "cut.jpg", jpeg[: len(jpeg) // 2]),
        "not a recognised image format": (folder / "notes.jpg", b"these are not pixels\n"),
        "over the limit": (folder / "bomb.png", bomb_png()),
    }
    for path, data in files.values():
        path.write_bytes(data)
    return {reason: path for reason, (path, _) in files.items()}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_bad_inputs_in_one_batch_are_refused_one_line_each(tmp_path, model, capsys):
    inputs = tmp_path / "in"
    bad = bad_inputs(inputs)
    good = save(inputs / "good.png", photo())
    before = snapshot(inputs)
    out = tmp_path / "out"
    argv = ["enhance", *map(str, bad.values()), str(good), "-o", str(out), "--model", str(model)]
    assert main(argv) == 1
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == len(bad)
    for reason, path in bad.items():
        (line,) = [e for e in errors if str(path) in e]
        assert reason.lower() in line.lower(), line
    assert os.listdir(out) == ["good_enhanced.png"]  # nothing partial, no temporary file
    assert snapshot(inputs) == before


def test_output_folder_under_a_file_is_refused(tmp_path, model, capsys):
    good = save(tmp_path / "good.png", photo())
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    before = snapshot(tmp_path)
    out = blocker / "out"
    assert main(["enhance", str(good), "-o", str(out), "--model", str(model)]) == 2  # usage error
    (line,) = error_lines(capsys.readouterr().err)
    assert str(out) in line and "cannot create the output folder" in line
    assert snapshot(tmp_path) == before and sorted(os.listdir(tmp_path)) == ["file.txt", "good.png"]


def test_output_equal_to_input_is_refused(tmp_path, model, capsys):
    good = save(tmp_path / "good.png", photo())
    before = snapshot(tmp_path)
    assert main(["enhance", str(good), "-o", str(tmp_path), "--suffix=", "--model", str(model)]) == 1
    (line,) = error_lines(capsys.readouterr().err)
    assert str(good) in line and "overwrite the input" in line
    assert snapshot(tmp_path) == before and os.listdir(tmp_path) == ["good.png"]


# --------------------------------------------------------------------------------------------
# the Python API raises specific exceptions
# --------------------------------------------------------------------------------------------


def test_api_exceptions_are_specific_dpe_errors(tmp_path):
    bad = bad_inputs(tmp_path / "in")
    for reason, path in bad.items():
        expected = ImageTooLargeError if reason == "over the limit" else ImageReadError
        with pytest.raises(expected) as info:
            read_image(path)
        assert isinstance(info.value, DPEError) and info.value.path == str(path)
        assert "\n" not in str(info.value)
    with pytest.raises(ImageReadError, match="missing.png"):
        read_image(tmp_path / "missing.png")
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(ImageWriteError) as info:
        write_image(blocker / "out.png", photo())
    assert isinstance(info.value, DPEError) and "not a folder" in str(info.value)
    assert blocker.read_text() == "x"
    assert issubclass(ImageTooLargeError, ImageReadError)
    assert all(issubclass(e, DPEError) for e in (ImageReadError, ImageTooLargeError, ImageWriteError))


# --------------------------------------------------------------------------------------------
# fuzzing
# --------------------------------------------------------------------------------------------

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_VALID = {"png": valid_png_bytes(), "jpg": valid_jpeg_bytes()}


def file_bytes():
    """Random bytes, or a valid PNG/JPEG with random byte edits and an optional cut."""
    mutated = st.builds(
        lambda kind, edits, cut: mutate(_VALID[kind], edits, cut),
        st.sampled_from(sorted(_VALID)),
        st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
        st.none() | st.integers(0, 2_000),
    )
    return st.binary(max_size=512) | mutated


@FUZZ
@given(data=file_bytes(), suffix=st.sampled_from([".png", ".jpg", ".bin"]))
def test_fuzz_read_image(tmp_path, data, suffix):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    check_read(path)


@FUZZ
@given(data=st.data())
def test_fuzz_cli_arguments(tmp_path, model, data):
    good = tmp_path / "good.png"
    if not good.exists():
        save(good, photo(16, 20))
    vocab = cli_vocabulary(tmp_path, model, good)
    argv = data.draw(cli_argv(vocab, tmp_path, model, good), label="argv")
    run_cli(argv)
