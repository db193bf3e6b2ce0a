"""The Gradio demo (app.py): its API through gradio_client, and the page in a real browser.

One server with a tiny random model serves every test of this file. The browser test drives
Debian's chromium (`apt-get install chromium`; never `playwright install`); it is skipped when
chromium is missing, except under CI (CI=true), where it fails instead.
"""

from __future__ import annotations

import io
import os
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpe_hf.imageio import read_image
from dpe_hf.export.lut import identity_lut, read_cube
from helpers import REPO, load_app

# gradio's queue statistics use pandas APIs that pandas 3 deprecates: not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    import torch

    from dpe_hf.models.generator import DPEGenerator

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_model")
    # PyTorch's default init (not the near-identity one) so the result visibly differs from the input
    DPEGenerator(width=0.25, init_scale=None).save_pretrained(folder)
    return folder


def _serve(model: str | None):
    app = load_app()
    demo = app.build_demo(model)
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                max_file_size="50mb")
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def server(tiny_model):
    yield from _serve(str(tiny_model))


@pytest.fixture(scope="module")
def bundled_server():
    """The app as `make demo` starts it: the bundled default model."""
    yield from _serve(None)


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


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium, or a skip (a failure under CI=true, where the browser test must run)."""
    ci = os.environ.get("CI", "").lower() == "true"
    if not os.access(CHROMIUM, os.X_OK):
        if ci:
            pytest.fail(f"{CHROMIUM} is missing under CI: apt-get install chromium")
        pytest.skip("chromium not installed: apt-get install chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        if ci:
            raise
        pytest.skip("playwright not installed: pip install playwright")
    return CHROMIUM


@pytest.mark.slow
def test_browser_upload_blend_and_screenshot(chromium, bundled_server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shot = REPO / "docs" / "screenshot.png" if os.environ.get("DPE_SAVE_SCREENSHOT") == "1" else tmp_path / "app.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(bundled_server)
            page.locator("#photo input[type=file]").set_input_files(str(REPO / "examples" / "fig_bowl.jpg"))
            info = page.locator("#info")
            expect(info).to_contain_text("strength 100 %", timeout=30_000)
            images = page.locator("#compare img")
            expect(images).to_have_count(2)
            expect(images.last).to_be_visible()
            link = page.locator('#download a[href$="fig_bowl_enhanced.jpg"]')
            expect(link).to_have_count(1, timeout=10_000)
            expect(page.locator('#download a[href$="fig_bowl.cube"]')).to_have_count(1)
            download = page.request.get(link.get_attribute("href"))
            assert download.ok and Image.open(io.BytesIO(download.body())).size == (768, 520)  # full size

            # move the strength slider to about 60 %: the result is blended, not recomputed
            track = page.locator("#strength input[type=range]")
            box = track.bounding_box()
            page.mouse.click(box["x"] + 0.6 * box["width"], box["y"] + box["height"] / 2)
            expect(info).not_to_contain_text("strength 100 %", timeout=15_000)
            assert 50 <= int(track.input_value()) <= 70
            expect(info).to_contain_text(f"strength {track.input_value()} %")
            expect(images.last).to_be_visible()
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)

            # ticking "Even out exposure" runs the model again, on the re-exposed photo
            page.locator("#auto_exposure input[type=checkbox]").check()
            expect(info).to_contain_text("with even exposure", timeout=30_000)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000


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
