"""The Gradio demo (app.py): its API through gradio_client, and its engine (dpe_hf.app_engine).

One server with a tiny random model serves every API test of this file. The page in a real
browser is tests/slow/test_browser.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpe_hf.imageio import read_image
from dpe_hf.export.lut import identity_lut, read_cube
from helpers import REPO, load_app, serve_app

# gradio's queue statistics use pandas APIs that pandas 3 deprecates: not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    import torch

    from dpe_hf.models.generator import DPEGenerator

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_model")
    # PyTorch's default init (not the near-identity one) so the result visibly differs from the input
    DPEGenerator(width=0.25, init_scale=None).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def server(tiny_model):
    yield from serve_app(str(tiny_model))


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False)


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> tuple[Path, np.ndarray]:
    h, w = 131, 97
    y, x = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(0)
    arr = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], axis=2)
    arr = np.clip(arr + rng.normal(0, 12, arr.shape), 0, 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    Image.fromarray(arr).save(path)
    return path, arr


def _enhance(client, path, strength, model, api_name="/enhance"):
    from gradio_client import handle_file

    return client.predict(handle_file(str(path)), strength, str(model), api_name=api_name)


def test_api_enhance_full_size_and_strength_zero_is_the_input(client, photo, tiny_model):
    path, arr = photo
    (before, after), (result_file, cube_file), info = _enhance(client, path, 100, tiny_model)
    result, _ = read_image(result_file)
    assert result.shape == arr.shape  # full size, 131 x 97
    assert not np.array_equal(result, arr)  # the model changed it
    assert Image.open(before).size == Image.open(after).size == (97, 131)
    assert Path(result_file).suffix == ".png" and "97×131" in info

    # strength 0 blends the cached result back to the input, exactly
    # the look as a LUT: reproduces the result's colours; at strength 0 it is the identity
    lut = read_cube(cube_file)
    assert lut.shape == (33, 33, 33, 3) and not np.allclose(lut, identity_lut(33), atol=1e-3)
    _, (zero_file, zero_cube), info = _enhance(client, path, 0, tiny_model, api_name="/blend")
    assert np.array_equal(read_image(zero_file)[0], arr)
    np.testing.assert_allclose(read_cube(zero_cube), identity_lut(33), atol=1e-5)
    assert "strength 0 %" in info
    _, (half_file, _), _ = _enhance(client, path, 50, tiny_model, api_name="/blend")
    half = read_image(half_file)[0].astype(int)
    assert np.abs(half - (arr.astype(int) + result.astype(int)) / 2).max() <= 1


def test_api_even_exposure_is_a_fourth_input_and_its_own_cache_entry(client, photo, tiny_model):
    from gradio_client import handle_file

    from dpe_hf.ops.exposure import apply_exposure_gain

    path, arr = photo
    dark = Path(path).with_name("dark.png")
    Image.fromarray(apply_exposure_gain(arr, 0.25)).save(dark)
    results = {}
    for name, file in (("photo", path), ("dark", dark)):
        for even in (False, True):
            _, (result_file, _), info = client.predict(handle_file(str(file)), 100, str(tiny_model), even,
                                                       api_name="/enhance")
            assert ("with even exposure" in info) == even
            results[name, even] = read_image(result_file)[0].astype(float)
    gap = {even: np.abs(results["photo", even] - results["dark", even]).mean() for even in (False, True)}
    assert gap[True] < gap[False] / 5, gap
    # strength 0 is still the photo as uploaded, not the re-exposed one
    _, (zero_file, _), _ = client.predict(handle_file(str(dark)), 0, str(tiny_model), True, api_name="/blend")
    assert np.array_equal(read_image(zero_file)[0], read_image(dark)[0])


def test_api_bad_upload_and_bad_model_give_one_line_errors(client, photo, tiny_model, tmp_path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("these are not pixels\n")
    with pytest.raises(Exception, match="notes.jpg: not a recognised image format"):
        _enhance(client, fake, 100, tiny_model)
    with pytest.raises(Exception, match="not a model folder"):
        _enhance(client, photo[0], 100, tmp_path)  # a folder without config.json
    # the app is still up and answers the next request
    _, (result_file, _), _ = _enhance(client, photo[0], 100, tiny_model)
    assert read_image(result_file)[0].shape == photo[1].shape


def test_the_engine_is_library_code_without_gradio():
    import subprocess

    code = ("import sys\nimport dpe_hf.app_engine\n"
            "print(sorted(m for m in ('gradio', 'gradio_client') if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_app_names_limits_and_places_photos_as_dpe_enhance_does(tiny_model, tmp_path, monkeypatch):
    from dpe_hf.app_engine import Engine
    from dpe_hf.batch import DEFAULT_MAX_PIXELS, load_model

    for name in ("DPE_MAX_PIXELS", "DPE_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    engine = load_app().build_demo(str(tiny_model)).dpe_engine
    assert engine.max_pixels == DEFAULT_MAX_PIXELS and engine.device is None  # None: auto, as --device auto
    assert next(engine.model(None).parameters()).device == next(load_model(str(tiny_model)).parameters()).device

    arr = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    engine = Engine(str(tiny_model))
    for name, suffix, fmt in (("scan.tif", ".tif", "TIFF"), ("shot.webp", ".webp", "WEBP"), ("pic.bmp", ".png", "PNG")):
        Image.fromarray(arr).save(tmp_path / name)
        rendering = engine.render(engine.entry(str(tmp_path / name), None), 100)
        assert rendering.result.name == f"{Path(name).stem}_enhanced{suffix}"
        assert Image.open(rendering.result).format == fmt and f"download: {fmt}" in rendering.info
    with pytest.raises(ValueError, match="strength must be between 0 and 100"):
        engine.render(engine.entry(str(tmp_path / "scan.tif"), None), 120)
