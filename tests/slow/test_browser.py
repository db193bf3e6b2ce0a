"""The Gradio demo's page in a real browser: upload, full-size download, blend with the strength
slider, even exposure, and a screenshot (DPE_SAVE_SCREENSHOT=1 writes docs/screenshot.png).

It drives Debian's chromium (`apt-get install chromium`; never `playwright install`); it is skipped
when chromium is missing, except under CI (CI=true), where it fails instead.
"""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from helpers import REPO, serve_app

# gradio's queue statistics use pandas APIs that pandas 3 deprecates: not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def bundled_server():
    """The app as `make demo` starts it: the bundled default model."""
    yield from serve_app(None)


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
            # the full-size file and the .cube are made when asked for
            link = page.locator('#download a[href$="fig_bowl_enhanced.jpg"]')
            expect(link).to_have_count(0)
            page.locator("#make_download").click()
            expect(link).to_have_count(1, timeout=30_000)
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
            expect(link).to_have_count(0)  # the files of 100 % are gone from the page
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)

            # ticking "Even out exposure" runs the model again, on the re-exposed photo
            page.locator("#auto_exposure input[type=checkbox]").check()
            expect(info).to_contain_text("with even exposure", timeout=30_000)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
