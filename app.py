"""Gradio demo of the Deep Photo Enhancer: runs locally (`python app.py`) and as a Hugging Face Space.

Upload a photo and get it enhanced, compare before and after, blend the result with the
original (strength 0-100 %, without running the network again), pick the model and download the
full-size result (named and in the format that `dpe enhance` gives it: the photo's own format
where it can be written, PNG otherwise; 16-bit kept, EXIF and ICC profile carried over) with its
look as a .cube. The view answers at once; the full-size file is made when the download button
asks for it. The work is done by `dpe_hf.app_engine`; this file is the page.

    python app.py [--model SPEC]        # SPEC: bundled name, model folder, run folder or hub repo id

API (gradio_client): every endpoint takes (image, strength %, model, even out exposure); the
last input is optional (default off: see `dpe_hf.ops.exposure`).
    /enhance   run the model (or reuse the cached run of the same upload, model and exposure box);
               returns (before/after pair of JPEGs, long side DPE_PREVIEW_SIDE; info text)
    /blend     the same view re-blended at another strength, from the cache
    /download  returns [full-size result file, its look as a .cube] at that strength

Environment:
    DPE_MODEL                 default model (same forms as --model)
    DPE_MAX_PIXELS            largest accepted photo in pixels (default 100000000, as dpe enhance)
    DPE_MAX_FILE_SIZE         largest accepted upload (default 50mb)
    DPE_DELETE_CACHE_SECONDS  uploads and results are deleted after this long (3600; 0: never)
    DPE_CONCURRENCY           jobs run at once per event (default 1)
    DPE_PREVIEW_SIDE          long side of the before/after view (default 2048, at least 512; 0: full
                              size, slower: every strength then blends and encodes the full photo)
    DPE_DEVICE                torch device for the model (default: cuda, then mps, then cpu, as dpe enhance)
    GRADIO_SERVER_NAME / GRADIO_SERVER_PORT  where to listen (default 127.0.0.1:7860)
"""

# gradio must see GRADIO_ANALYTICS_ENABLED before it is imported, hence the late imports
# ruff: noqa: E402
from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import argparse
import functools
import logging
from pathlib import Path

import gradio as gr

from dpe_hf.app_engine import DEFAULT_PREVIEW_SIDE, Engine, View, default_model_spec
from dpe_hf.defaults import DEFAULT_MAX_PIXELS
from dpe_hf.errors import DPEError
from dpe_hf.hub import DEFAULT_REPO_ID, bundled_models

log = logging.getLogger("dpe_hf.app")

HERE = Path(__file__).resolve().parent
EXAMPLES_DIR = HERE / "examples"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(float(raw))
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected a number") from None


def _user_errors(fn):
    """Show every failure as one line (gr.Error) and keep the app running."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except DPEError as exc:
            message = " ".join(str(exc).split())
        except MemoryError:
            message = "not enough memory for this photo; try a smaller one"
        except Exception as exc:  # a bug: log it whole, show one line
            log.exception("unexpected error in %s", fn.__name__)
            message = f"unexpected error: {type(exc).__name__}: {' '.join(str(exc).split())}"
        log.warning("%s: %s", fn.__name__, message)
        raise gr.Error(message, print_exception=False)

    return wrapper


def _upload_as_path(image: gr.Image) -> gr.Image:
    """Make `image` hand its upload over as the file's path, unopened: `read_image` then reads it
    (16-bit, EXIF orientation, ICC) and turns a broken file into a clear message, where gradio's
    own decoding would fail first with a raw PIL error. (Patched on the instance: a subclass of a
    gradio component makes gradio write an app.pyi stub next to this file.)"""
    original = image.preprocess

    def preprocess(payload):
        if payload is None:
            return None
        if payload.path is None or (payload.url and payload.url.startswith("data:")):
            return original(payload)
        return str(payload.path)

    image.preprocess = preprocess
    return image


def _check_strength(strength_pct) -> None:
    """A strength the engine cannot take is a one-line error, before the model runs."""
    if strength_pct is None or not 0 <= float(strength_pct) <= 100:
        raise gr.Error(f"strength must be between 0 and 100 %, got {strength_pct}", print_exception=False)


def _show(view: View):
    """(before/after pair, info) for the page's outputs."""
    return (str(view.before), str(view.after)), view.info


def build_demo(default_model: str | None = None) -> gr.Blocks:
    """The app. `default_model` (else env DPE_MODEL, else the bundled model) is preselected."""
    default = default_model_spec(default_model)
    engine = Engine(default, max_pixels=_env_int("DPE_MAX_PIXELS", DEFAULT_MAX_PIXELS),
                    preview_side=_env_int("DPE_PREVIEW_SIDE", DEFAULT_PREVIEW_SIDE),
                    device=os.environ.get("DPE_DEVICE", "").strip() or None)
    choices = list(dict.fromkeys([default, *bundled_models()]))
    delete_after = _env_int("DPE_DELETE_CACHE_SECONDS", 3600)

    @_user_errors
    def enhance_photo(image: str | None, strength: float, model: str | None, auto_exposure: bool = False):
        """Enhance a photo with `model` (re-exposed first with `auto_exposure`); returns
        (before, after) and info."""
        if not image:  # cleared, or only the model changed: check that the model loads
            engine.model(model)
            return None, f"Model `{engine.spec(model)}` is ready: upload a photo."
        _check_strength(strength)
        return _show(engine.view(engine.entry(image, model, auto_exposure), strength))

    @_user_errors
    def blend_photo(image: str | None, strength: float, model: str | None, auto_exposure: bool = False):
        """Blend the cached result of (photo, model, auto_exposure) with the photo at `strength` %
        (0: the photo)."""
        if not image:
            return None, ""
        _check_strength(strength)
        return _show(engine.view(engine.entry(image, model, auto_exposure), strength))

    @_user_errors
    def download_files(image: str | None, strength: float, model: str | None, auto_exposure: bool = False):
        """The full-size result of (photo, model, auto_exposure) at `strength` % and its look as
        a .cube: [result file, cube file]."""
        if not image:
            return None
        _check_strength(strength)
        files = engine.download(engine.entry(image, model, auto_exposure), strength)
        return [str(files.result), str(files.cube)]

    with gr.Blocks(title="Deep Photo Enhancer",
                   delete_cache=(delete_after, delete_after) if delete_after > 0 else None) as demo:
        gr.Markdown(
            "# Deep Photo Enhancer\n"
            "Upload a photo: the network ([Chen et al., CVPR 2018](https://openaccess.thecvf.com/content_cvpr_2018/html/"
            "Chen_Deep_Photo_Enhancer_CVPR_2018_paper.html)) sees a copy with long side 512 px and its "
            "change is applied to the full-size photo. Drag the divider to compare, lower the strength "
            "to blend with the original, and make the full-size result to download.")
        with gr.Row():
            with gr.Column(scale=1):
                photo = _upload_as_path(gr.Image(type="filepath", image_mode=None, label="Photo",
                                                 sources=["upload", "clipboard"], elem_id="photo"))
                strength = gr.Slider(0, 100, value=100, step=1, label="Strength (%)",
                                     info="0 % is the original, 100 % the network's result", elem_id="strength")
                model = gr.Dropdown(choices=choices, value=default, allow_custom_value=True, label="Model",
                                    info=f"a bundled model, a local model folder or a hub repo id such as "
                                         f"{DEFAULT_REPO_ID}", elem_id="model")
                even = gr.Checkbox(value=False, label="Even out exposure",
                                   info="bring the photo to a standard brightness first, so that "
                                        "darker and brighter shots of a scene come out alike",
                                   elem_id="auto_exposure")
                run = gr.Button("Enhance", variant="primary")
            with gr.Column(scale=2):
                compare = gr.ImageSlider(label="Before / after", type="numpy", format="jpeg",
                                         interactive=False, buttons=["fullscreen"], max_height=700,
                                         elem_id="compare")
                info = gr.Markdown(label="Info", elem_id="info")
                make_download = gr.Button("Prepare the full-size download", elem_id="make_download")
                download = gr.File(label="Full-size result and its look as a 3D LUT (.cube)", file_count="multiple",
                                   interactive=False, elem_id="download")
        examples = sorted(EXAMPLES_DIR.glob("*.jpg")) if EXAMPLES_DIR.is_dir() else []
        if examples:
            gr.Examples([[str(p)] for p in examples], inputs=[photo], label="Example photos "
                        "(see examples/ATTRIBUTION.md)", cache_examples=False)

        inputs, outputs = [photo, strength, model, even], [compare, info]
        gr.on([photo.change, run.click, model.change, even.change], enhance_photo,
              inputs=inputs, outputs=outputs, api_name="enhance", trigger_mode="always_last")
        strength.release(blend_photo, inputs=inputs, outputs=outputs, api_name="blend",
                         show_progress="minimal", trigger_mode="always_last")
        # the files shown are those of the settings they were made with: any change clears them
        gr.on([photo.change, run.click, model.change, even.change, strength.release], lambda: None,
              outputs=download, queue=False, api_visibility="private")
        make_download.click(download_files, inputs=inputs, outputs=download, api_name="download",
                            trigger_mode="always_last")

    demo.queue(default_concurrency_limit=max(1, _env_int("DPE_CONCURRENCY", 1)), max_size=32)
    demo.dpe_engine = engine  # for tests and debugging
    return demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Deep Photo Enhancer web demo (Gradio).")
    parser.add_argument("--model", default=None,
                        help="bundled model name, model folder, run folder or hub repo id (env DPE_MODEL)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("dpe_hf").setLevel(logging.INFO)
    demo = build_demo(args.model)
    demo.launch(max_file_size=os.environ.get("DPE_MAX_FILE_SIZE", "50mb"))


if __name__ == "__main__":
    main()
