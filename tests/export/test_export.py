"""Export: ONNX models (parity with PyTorch at any size through onnxruntime) and 3D LUTs (.cube
files that ffmpeg loads, fitting, applying) and their CLI commands.

The ONNX tests need the [export] extra (onnx, onnxruntime) and are skipped without it; the
ffmpeg test is skipped without ffmpeg, unless CI=true (then it fails).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from dpe_hf.cli import main
from dpe_hf.data.generated import generated_photo
from dpe_hf.enhancer import Enhancer
from dpe_hf.imageio import read_image, write_image
from dpe_hf.export import lut as lutmod
from dpe_hf.export.lut import LutFitter, apply_lut, fit_lut, identity_lut, read_cube, write_cube
from dpe_hf.models.blocks import pad_to, padded_size
from dpe_hf.models.generator import DPEGenerator
from dpe_hf.ops.resize import resize_long_side

HAS_ONNX = importlib.util.find_spec("onnx") is not None and importlib.util.find_spec("onnxruntime") is not None
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason="needs the [export] extra (onnx, onnxruntime)")


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(peak ** 2 / mse)


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def generator() -> DPEGenerator:
    """Small, random, and not ~identity (PyTorch's default init, not the released 1e-3)."""
    torch.manual_seed(0)
    return DPEGenerator(width=0.25, init_scale=None).eval()


@pytest.fixture(scope="module")
def model_dir(generator, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    generator.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def onnx_path(generator, tmp_path_factory) -> Path:
    if not HAS_ONNX:
        pytest.skip("needs the [export] extra (onnx, onnxruntime)")
    from dpe_hf.export.onnx import export_onnx

    return export_onnx(generator, tmp_path_factory.mktemp("onnx") / "model.onnx")


# --------------------------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------------------------


@needs_onnx
@pytest.mark.parametrize("size", [(64, 64), (97, 131), (256, 384)])
def test_onnx_matches_pytorch_at_any_size(generator, onnx_path, size):
    from dpe_hf.export.onnx import OnnxGenerator

    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(sum(size)))
    with torch.inference_mode():
        expected = generator(x)
    assert (expected - x).abs().max() > 0.05  # the model changes the image
    got = OnnxGenerator(onnx_path)(x.numpy())
    assert isinstance(got, np.ndarray) and got.shape == tuple(x.shape)
    assert np.abs(got - expected.numpy()).max() <= 1e-4


@needs_onnx
def test_onnx_file_has_dynamic_shapes_and_opset_17(onnx_path):
    import onnx

    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    for value in (model.graph.input[0], model.graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        assert dims[1].dim_value == 3
        assert all(dims[i].dim_param and not dims[i].dim_value for i in (0, 2, 3)), dims


@needs_onnx
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_export_friendly_padding_and_pooling_match_in_onnxruntime(generator, tmp_path):
    """The two steps written anew for export (pad_to's mirror/edge rule, 8x8 adaptive average
    pooling) against PyTorch's own, at sizes on both sides of each rule, through onnxruntime."""
    import onnxruntime as ort

    from dpe_hf.export.onnx import ExportableGenerator
    from dpe_hf.models.generator import MIN_SIZE_WITH_GLOBAL, MULTIPLE

    steps = ExportableGenerator(generator)

    class Steps(torch.nn.Module):
        def forward(self, x):
            return steps._pad(x), steps._adaptive_pool(x)

    path = tmp_path / "steps.onnx"
    axes = {0: "b", 1: "c", 2: "h", 3: "w"}
    torch.onnx.export(Steps(), (torch.rand(1, 2, 37, 45),), str(path), dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["padded", "pooled"],
                      dynamic_axes={"x": axes, "padded": axes, "pooled": axes})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for h, w in [(1, 1), (3, 7), (8, 8), (13, 21), (40, 56), (41, 90), (79, 80), (97, 131), (160, 17)]:
        x = torch.rand(1, 2, h, w)
        padded, pooled = session.run(None, {"x": x.numpy()})
        ph, pw = (padded_size(s, MULTIPLE, MIN_SIZE_WITH_GLOBAL) for s in (h, w))
        np.testing.assert_array_equal(padded, pad_to(x, ph, pw).numpy())
        np.testing.assert_allclose(pooled, F.adaptive_avg_pool2d(x, 8).numpy(), atol=1e-6)


@needs_onnx
def test_enhance_takes_an_onnx_generator(generator, onnx_path):
    """dpe_hf.enhance runs an OnnxGenerator through the ONNX backend, and the generator itself
    takes and returns torch tensors too."""
    from dpe_hf.export.onnx import OnnxGenerator
    from dpe_hf.inference import enhance

    image = generated_photo((150, 200), seed=1)
    ours = enhance(OnnxGenerator(onnx_path), image, max_side=128)
    theirs = enhance(generator, image, max_side=128)
    assert ours.dtype == np.uint8 and ours.shape == image.shape
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    out = OnnxGenerator(onnx_path)(x)
    assert isinstance(out, torch.Tensor) and out.shape == x.shape


@needs_onnx
def test_onnx_generator_reports_a_bad_file(tmp_path):
    from dpe_hf.errors import ModelLoadError
    from dpe_hf.export.onnx import OnnxGenerator

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="bad.onnx"):
        OnnxGenerator(bad)


# --------------------------------------------------------------------------------------------
# .cube files
# --------------------------------------------------------------------------------------------


def test_cube_file_format_red_fastest(tmp_path):
    n = 5
    lut = identity_lut(n)  # each entry encodes its own index: lut[r, g, b] = (r, g, b) / (n - 1)
    path = write_cube(tmp_path / "id.cube", lut, title='my "look"')
    lines = path.read_text().splitlines()
    assert lines[0] == 'TITLE "my  look"'
    assert lines[1] == f"LUT_3D_SIZE {n}"
    assert lines[2].split() == ["DOMAIN_MIN", "0.0", "0.0", "0.0"]
    assert lines[3].split() == ["DOMAIN_MAX", "1.0", "1.0", "1.0"]
    rows = np.array([[float(v) for v in line.split()] for line in lines[4:]])
    assert rows.shape == (n ** 3, 3)
    k = np.arange(n ** 3)
    expected = np.stack([k % n, (k // n) % n, k // (n * n)], axis=1) / (n - 1)  # red changes fastest
    np.testing.assert_allclose(rows, expected, atol=1e-6)


def test_cube_round_trip_and_bad_files(tmp_path):
    rng = np.random.default_rng(0)
    lut = rng.uniform(0, 1, (17, 17, 17, 3)).astype(np.float32)
    np.testing.assert_allclose(read_cube(write_cube(tmp_path / "x.cube", lut)), lut, atol=1e-6)

    (tmp_path / "comments.cube").write_text("# made by hand\nLUT_3D_SIZE 2\n\n"
                                            + "\n".join("0 0 0" for _ in range(8)) + "\n")
    assert read_cube(tmp_path / "comments.cube").shape == (2, 2, 2, 3)
    (tmp_path / "short.cube").write_text("LUT_3D_SIZE 2\n0 0 0\n")
    (tmp_path / "oned.cube").write_text("LUT_1D_SIZE 2\n0 0 0\n1 1 1\n")
    (tmp_path / "domain.cube").write_text("LUT_3D_SIZE 2\nDOMAIN_MAX 2 2 2\n" + "0 0 0\n" * 8)
    for name, message in [("short", "rows"), ("oned", "1D"), ("domain", "domain"), ("missing", "cannot read")]:
        with pytest.raises(ValueError, match=message):
            read_cube(tmp_path / f"{name}.cube")


@pytest.mark.skipif(shutil.which("ffmpeg") is None and os.environ.get("CI") != "true",
                    reason="ffmpeg is not installed (apt-get install ffmpeg)")
def test_ffmpeg_lut3d_loads_our_cube_and_agrees(tmp_path):
    assert shutil.which("ffmpeg"), "ffmpeg is required on CI (CI=true)"
    lut = identity_lut(33) ** 0.7 @ np.array([[0.9, 0.1, 0.0], [0.05, 0.9, 0.05], [0.0, 0.2, 0.8]]).T
    cube = write_cube(tmp_path / "look.cube", lut.astype(np.float32), title="test")
    image8 = generated_photo((96, 128), seed=5)
    write_image(tmp_path / "in8.png", image8)
    write_image(tmp_path / "in16.png", image8.astype(np.uint16) * 257)

    def ffmpeg(src: str, interp: str, pix_fmt: str) -> np.ndarray:
        out = tmp_path / f"out-{src}-{interp}.png"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(tmp_path / src),
                        "-vf", f"lut3d=file={cube}:interp={interp}", "-pix_fmt", pix_fmt, str(out)],
                       check=True, capture_output=True, timeout=60)
        return read_image(out)[0]

    # 8 bits, as the brief asks (ffmpeg truncates to the level below: ~51 dB)
    assert psnr(ffmpeg("in8.png", "trilinear", "rgb24"), apply_lut(image8, lut, "trilinear"), 255) >= 45
    # 16 bits: within one level of 65535 for both interpolations
    image16 = image8.astype(np.uint16) * 257
    for interp in ("trilinear", "tetrahedral"):
        theirs = ffmpeg("in16.png", interp, "rgb48be")
        assert theirs.dtype == np.uint16
        assert psnr(theirs, apply_lut(image16, lut, interp), 65535) >= 80


# --------------------------------------------------------------------------------------------
# applying
# --------------------------------------------------------------------------------------------


def _naive(image: np.ndarray, lut: np.ndarray, interp: str) -> np.ndarray:
    """Reference interpolation, one pixel at a time."""
    n = lut.shape[0]
    out = np.empty(image.shape, np.float64)
    for i, c in enumerate(np.clip(image.reshape(-1, 3), 0, 1).astype(np.float64)):
        p = c * (n - 1)
        b = np.minimum(np.floor(p), n - 2).astype(int)
        f = p - b
        v = {(i0, i1, i2): lut[b[0] + i0, b[1] + i1, b[2] + i2].astype(np.float64)
             for i0 in (0, 1) for i1 in (0, 1) for i2 in (0, 1)}
        if interp == "trilinear":
            out.reshape(-1, 3)[i] = sum(v[k] * np.prod([f[a] if k[a] else 1 - f[a] for a in range(3)]) for k in v)
        else:
            order = np.argsort(-f, kind="stable")
            corner, acc, prev = [0, 0, 0], v[(0, 0, 0)] * (1 - f[order[0]]), f[order[0]]
            for j, axis in enumerate(order):
                corner[axis] = 1
                nxt = f[order[j + 1]] if j < 2 else 0.0
                acc = acc + v[tuple(corner)] * (prev - nxt)
                prev = nxt
            out.reshape(-1, 3)[i] = acc
    return out


@pytest.mark.parametrize("interp", ["trilinear", "tetrahedral"])
def test_apply_lut_matches_reference_and_keeps_dtype(interp, monkeypatch):
    rng = np.random.default_rng(1)
    lut = rng.uniform(0, 1, (5, 5, 5, 3)).astype(np.float32)
    image = rng.uniform(-0.1, 1.1, (9, 11, 3)).astype(np.float32)
    image[0, :3] = [[0.5, 0.5, 0.5], [0.25, 0.25, 0.75], [1.0, 0.0, 1.0]]  # ties and edges
    got = apply_lut(image, lut, interp)
    assert got.dtype == np.float32 and got.shape == image.shape
    np.testing.assert_allclose(got, _naive(image, lut, interp), atol=1e-5)
    monkeypatch.setattr(lutmod, "STRIP_PIXELS", 7)  # strip-wise gives the same
    np.testing.assert_array_equal(apply_lut(image, lut, interp), got)

    ident = identity_lut(33)
    for dtype, top in ((np.uint8, 255), (np.uint16, 65535)):
        photo = rng.integers(0, top + 1, (20, 30, 3)).astype(dtype)
        out = apply_lut(photo, ident, interp)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, photo)


def test_apply_lut_rejects_bad_arguments():
    with pytest.raises(ValueError, match="interp"):
        apply_lut(np.zeros((2, 2, 3), np.uint8), identity_lut(3), "cubic")
    with pytest.raises(ValueError, match="shape"):
        apply_lut(np.zeros((2, 2, 3), np.uint8), np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="3 channels"):
        apply_lut(np.zeros((2, 2, 4), np.uint8), identity_lut(3))


# --------------------------------------------------------------------------------------------
# fitting
# --------------------------------------------------------------------------------------------


def _global_transform(x: np.ndarray) -> np.ndarray:
    """A per-channel curve then a channel mix: what a colour grade does."""
    curved = np.stack([x[..., 0] ** 0.8, x[..., 1] ** 1.1, 1 - (1 - x[..., 2]) ** 1.3], axis=-1)
    mix = np.array([[0.9, 0.08, 0.02], [0.05, 0.85, 0.1], [0.03, 0.1, 0.87]], np.float32)
    return np.clip(curved @ mix.T * 1.05 + 0.01, 0, 1)


def test_fit_lut_reproduces_a_global_colour_transform():
    full = generated_photo((768, 1024), seed=3).astype(np.float32) / 255
    low = resize_long_side(torch.from_numpy(full).permute(2, 0, 1)[None], 512)[0].permute(1, 2, 0).numpy()
    lut = fit_lut(low, _global_transform(low))  # fitted at 512, as for the network
    target = _global_transform(full)
    assert psnr(apply_lut(full, lut), target) >= 45
    assert psnr(apply_lut(full, lut, "tetrahedral"), target) >= 45


def test_fit_lut_fills_far_colours_with_the_identity():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.4, 0.6, (100, 100, 3)).astype(np.float32)  # a grey-ish photo
    lut = fit_lut(x, np.clip(x * 1.2 - 0.05, 0, 1))
    ident = identity_lut(33)
    np.testing.assert_allclose(lut[16, 16, 16], ident[16, 16, 16] + 0.05, atol=2e-3)  # follows the data
    for corner in [(0, 0, 0), (0, 32, 0), (32, 0, 32)]:
        assert np.abs(lut[corner] - ident[corner]).max() < 0.01
    np.testing.assert_array_equal(LutFitter(9).solve(), identity_lut(9))  # no data at all


def test_fitter_weighs_each_photo_alike():
    a = np.full((10, 10, 3), 0.5, np.float32)
    b = np.full((40, 40, 3), 0.5, np.float32)
    lut = LutFitter(5).add(a, a + 0.1).add(b, b - 0.1).solve()
    np.testing.assert_allclose(lut[2, 2, 2], [0.5, 0.5, 0.5], atol=2e-3)


# --------------------------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------------------------


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(generated_photo((60, 80), seed=i)).save(folder / f"p{i}.png")
    (folder / "bad.png").write_bytes(b"not a png")
    return folder


@needs_onnx
def test_cli_export_onnx(model_dir, generator, tmp_path, capsys):
    from dpe_hf.export.onnx import OnnxGenerator

    out = tmp_path / "m.onnx"
    assert main(["export", "onnx", "--model", str(model_dir), "-o", str(out)]) == 0
    x = torch.rand(1, 3, 50, 70)
    with torch.inference_mode():
        assert (OnnxGenerator(out)(x) - generator(x)).abs().max() <= 1e-4
    assert main(["export", "onnx", "--model", str(model_dir), "-o", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


@needs_onnx
def test_cli_enhance_with_an_onnx_model(model_dir, onnx_path, photos, tmp_path):
    """Runs once hub.load_generator returns an OnnxGenerator for .onnx paths."""
    from dpe_hf.errors import ModelLoadError
    from dpe_hf.export.onnx import OnnxGenerator
    from dpe_hf.hub import load_generator

    try:
        loaded = load_generator(str(onnx_path))
    except ModelLoadError:
        loaded = None
    if not isinstance(loaded, OnnxGenerator):
        pytest.skip("hub.load_generator does not take .onnx files (yet)")
    args = [str(photos / "p0.png"), "--max-side", "64"]
    assert main(["enhance", *args, "-o", str(tmp_path / "a"), "--model", str(onnx_path)]) == 0
    assert main(["enhance", *args, "-o", str(tmp_path / "b"), "--model", str(model_dir)]) == 0
    a = read_image(tmp_path / "a" / "p0_enhanced.png")[0].astype(int)
    b = read_image(tmp_path / "b" / "p0_enhanced.png")[0].astype(int)
    assert np.abs(a - b).max() <= 1


def test_cli_lut_then_apply_lut(model_dir, photos, tmp_path, capsys):
    cube = tmp_path / "style.cube"
    assert main(["lut", "--model", str(model_dir), "--images", str(photos), "-o", str(cube)]) == 1
    err = capsys.readouterr().err
    assert len(error_lines(err)) == 1 and "bad.png" in err and "2 photo(s)" in err
    assert read_cube(cube).shape == (33, 33, 33, 3)

    out = tmp_path / "graded"
    code = main(["apply-lut", str(cube), str(photos), "-o", str(out), "--interp", "tetrahedral"])
    err = capsys.readouterr().err
    assert code == 1 and len(error_lines(err)) == 1 and "bad.png" in err
    assert sorted(p.name for p in out.iterdir()) == ["p0_lut.png", "p1_lut.png"]
    src = read_image(photos / "p0.png")[0]
    np.testing.assert_array_equal(read_image(out / "p0_lut.png")[0], apply_lut(src, read_cube(cube), "tetrahedral"))

    # the same conventions as dpe enhance: outputs are not replaced, inputs never
    assert main(["apply-lut", str(cube), str(photos / "p0.png"), "-o", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["apply-lut", str(cube), str(photos / "p0.png"), "-o", str(photos), "--suffix", ""]) == 1
    assert "overwrite the input" in capsys.readouterr().err
    assert main(["apply-lut", str(tmp_path / "none.cube"), str(photos), "-o", str(out)]) == 2


def test_cli_enhance_save_lut(model_dir, photos, tmp_path, generator):
    out = tmp_path / "out"
    args = [str(photos / "p0.png"), str(photos / "p1.png"), "-o", str(out), "--model", str(model_dir)]
    assert main(["enhance", *args, "--save-lut", "--max-side", "64"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["p0.cube", "p0_enhanced.png", "p1.cube", "p1_enhanced.png"]
    # the LUT carries the network's colour change at the size it ran at
    src = read_image(photos / "p0.png")[0]
    low_in, low_out = astuple(Enhancer(generator, max_side=64).look(src))
    assert psnr(apply_lut(low_in, read_cube(out / "p0.cube")), low_out) > 30

    # with --auto-exposure the LUT also carries the re-exposure: it maps the photo as given
    even = tmp_path / "even"
    assert main(["enhance", *args[:2], "-o", str(even), "--model", str(model_dir), "--save-lut",
                 "--max-side", "64", "--auto-exposure"]) == 0
    low_in, low_out = astuple(Enhancer(generator, max_side=64, auto_exposure=True).look(src))
    fit = psnr(apply_lut(low_in, read_cube(even / "p0.cube")), low_out)
    assert fit > 30 and psnr(apply_lut(low_in, read_cube(out / "p0.cube")), low_out) < fit - 3
