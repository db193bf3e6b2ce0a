"""The Gradio demo (app.py): its API through gradio_client, and its engine (dpe_hf.app_engine).

One server with a tiny random model serves every API test of this file. The page in a real
browser is tests/slow/test_browser.py.
"""

from __future__ import annotations

import shutil
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


def _pixels(file) -> np.ndarray:
    with Image.open(file) as im:
        return np.asarray(im.convert("RGB"))


def assert_shows_the_look(view_file, result: np.ndarray, photo: np.ndarray) -> None:
    """The view's JPEG shows `result` (the download at full size), not `photo`: compared on
    copies with long side 32, where JPEG's error on these noisy test photos averages out."""
    from dpe_hf.ops.guided import downscale_long_side

    shown, want, before = (downscale_long_side(a, 32).astype(int) for a in (_pixels(view_file), result, photo))
    assert np.abs(shown - want).mean() < 3 < np.abs(shown - before).mean()


def test_api_view_at_any_strength_and_full_size_download(client, photo, tiny_model):
    path, arr = photo
    (before, after), info = _enhance(client, path, 100, tiny_model)
    # the view: the photo (smaller than the view's side) and the model's result, same size
    assert Image.open(before).size == Image.open(after).size == (97, 131)
    assert Image.open(after).format == "JPEG" and not np.array_equal(_pixels(before), _pixels(after))
    assert "97×131" in info and "strength 100 %" in info and "download: PNG, full size" in info

    # the download: the full-size result, and its look as a LUT that is not the identity
    result_file, cube_file = _enhance(client, path, 100, tiny_model, api_name="/download")
    result, _ = read_image(result_file)
    assert result.shape == arr.shape  # full size, 131 x 97
    assert not np.array_equal(result, arr)  # the model changed it
    assert Path(result_file).suffix == ".png"
    lut = read_cube(cube_file)
    assert lut.shape == (33, 33, 33, 3) and not np.allclose(lut, identity_lut(33), atol=1e-3)
    assert_shows_the_look(after, result, arr)

    # strength 0 blends the cached result back to the input, exactly; its LUT is the identity
    (zero_before, zero_after), info = _enhance(client, path, 0, tiny_model, api_name="/blend")
    assert np.array_equal(_pixels(zero_after), _pixels(zero_before)) and "strength 0 %" in info
    zero_file, zero_cube = _enhance(client, path, 0, tiny_model, api_name="/download")
    assert np.array_equal(read_image(zero_file)[0], arr)
    np.testing.assert_allclose(read_cube(zero_cube), identity_lut(33), atol=1e-5)
    half_file, _ = _enhance(client, path, 50, tiny_model, api_name="/download")
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
            _, info = client.predict(handle_file(str(file)), 100, str(tiny_model), even, api_name="/enhance")
            assert ("with even exposure" in info) == even
            result_file, _ = client.predict(handle_file(str(file)), 100, str(tiny_model), even, api_name="/download")
            results[name, even] = read_image(result_file)[0].astype(float)
    gap = {even: np.abs(results["photo", even] - results["dark", even]).mean() for even in (False, True)}
    assert gap[True] < gap[False] / 5, gap
    # strength 0 is still the photo as uploaded, not the re-exposed one
    zero_file, _ = client.predict(handle_file(str(dark)), 0, str(tiny_model), True, api_name="/download")
    assert np.array_equal(read_image(zero_file)[0], read_image(dark)[0])


def test_api_bad_upload_and_bad_model_give_one_line_errors(client, photo, tiny_model, tmp_path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("these are not pixels\n")
    for endpoint in ("/enhance", "/download"):
        with pytest.raises(Exception, match="notes.jpg: not a recognised image format"):
            _enhance(client, fake, 100, tiny_model, api_name=endpoint)
    with pytest.raises(Exception, match="not a model folder"):
        _enhance(client, photo[0], 100, tmp_path)  # a folder without config.json
    # the app is still up and answers the next request
    (before, _), _ = _enhance(client, photo[0], 100, tiny_model)
    assert _pixels(before).shape == photo[1].shape


def test_concurrent_downloads_each_get_their_own_photo(client, server, tiny_model, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client

    rng = np.random.default_rng(2)
    photos = []
    for h, w in ((60, 80), (70, 50), (90, 90)):
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(arr).save(tmp_path / f"p{h}x{w}.png")
        photos.append((tmp_path / f"p{h}x{w}.png", arr))
    clients = [client, *(Client(server, verbose=False) for _ in photos[1:])]
    with ThreadPoolExecutor(len(photos)) as pool:
        answers = list(pool.map(lambda k: _enhance(clients[k], photos[k][0], 0, tiny_model, api_name="/download"),
                                range(len(photos))))
    for (result_file, _), (_, arr) in zip(answers, photos):
        assert np.array_equal(read_image(result_file)[0], arr)  # strength 0: exactly the photo it sent


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
        entry = engine.entry(str(tmp_path / name), None)
        download = engine.download(entry, 100)
        assert download.result.name == f"{Path(name).stem}_enhanced{suffix}"
        assert Image.open(download.result).format == fmt and f"download: {fmt}" in engine.view(entry, 100).info
    for render in (engine.view, engine.download):
        with pytest.raises(ValueError, match="strength must be between 0 and 100"):
            render(engine.entry(str(tmp_path / "scan.tif"), None), 120)


def test_the_view_answers_without_full_size_work_and_the_download_makes_it(tiny_model, tmp_path):
    from dpe_hf.app_engine import Engine
    from dpe_hf.batch import load_model
    from dpe_hf.enhancer import Enhancer, blend
    from dpe_hf.export.lut import fit_lut

    h, w = 600, 800  # above the view's side, so the view is a smaller copy
    y, x = np.mgrid[0:h, 0:w]
    arr = np.clip(np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], axis=2)
                  + np.random.default_rng(3).normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(tmp_path / "big.png")
    engine = Engine(str(tiny_model), preview_side=100)
    assert engine.preview_side == 512  # never below the network's size: the same look as the download
    entry = engine.entry(str(tmp_path / "big.png"), None)
    # the same photo sent again (gradio writes each upload anew: another folder, a new mtime) is a
    # cache hit; the same bytes under another name are not (the download is named after the upload)
    (tmp_path / "again").mkdir()
    shutil.copy(tmp_path / "big.png", tmp_path / "again" / "big.png")
    assert engine.entry(str(tmp_path / "again" / "big.png"), None) is entry
    shutil.copy(tmp_path / "big.png", tmp_path / "other.png")
    assert engine.entry(str(tmp_path / "other.png"), None) is not entry
    views = [engine.view(entry, s) for s in (100, 40)]
    assert entry.result is None and entry.lut is None  # no full-size run, no LUT fit for the view
    assert sorted(p.name for p in engine.out_dir.rglob("*") if p.is_file()) == ["after.jpg"] * 2 + ["before.jpg"] * 2
    assert all(Image.open(v.after).size == (512, 384) for v in views) and "800×600" in views[0].info

    files = engine.download(entry, 40)
    result, pair = Enhancer(load_model(str(tiny_model))).with_pair(arr)
    assert np.array_equal(entry.result, result)
    assert np.array_equal(read_image(files.result)[0], blend(arr, result, 0.4))
    np.testing.assert_allclose(entry.lut, fit_lut(pair.low_in, pair.low_out), atol=1e-6)
    lut = read_cube(files.cube)
    np.testing.assert_allclose(lut, identity_lut(33) + 0.4 * (entry.lut - identity_lut(33)), atol=1e-5)
    assert_shows_the_look(views[0].after, result, arr)  # the view showed the download's look
