"""Gradio demo of the Deep Photo Enhancer: runs locally (`python app.py`) and as a Hugging Face Space.

Upload a photo and get it enhanced at full size, compare before and after, blend the result
with the original (strength 0-100 %, without running the network again), pick the model and
download the full-size result (JPEG for JPEG input, PNG otherwise, 16-bit kept, EXIF and ICC
profile carried over).

    python app.py [--model SPEC]        # SPEC: bundled name, model folder, run folder or hub repo id

API (gradio_client), both endpoints take (image, strength %, model, even out exposure) and
return (before/after pair, full-size result file, info text); the last input is optional
(default off: see `dpe_hf.ops.exposure`):
    /enhance  run the model (or reuse the cached result of the same upload, model and exposure box)
    /blend    re-blend the cached result at another strength

Environment:
    DPE_MODEL                 default model (same forms as --model)
    DPE_MAX_PIXELS            largest accepted photo in pixels (default 50000000)
    DPE_MAX_FILE_SIZE         largest accepted upload (default 50mb)
    DPE_DELETE_CACHE_SECONDS  uploads and results are deleted after this long (3600; 0: never)
    DPE_CONCURRENCY           jobs run at once per event (default 1)
    DPE_PREVIEW_SIDE          long side of the before/after view (default 2048; 0: full size)
    DPE_DEVICE                torch device for the model (default: cuda if available, else cpu)
    GRADIO_SERVER_NAME / GRADIO_SERVER_PORT  where to listen (default 127.0.0.1:7860)
"""

# gradio must see GRADIO_ANALYTICS_ENABLED before it is imported, hence the late imports
# ruff: noqa: E402
from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import argparse
import atexit
import dataclasses
import functools
import logging
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from dpe_hf.imageio import ImageMeta, read_image, to_float32, write_image
from dpe_hf.errors import DPEError, ImageReadError, ImageTooLargeError
from dpe_hf.export.lut import fit_lut, identity_lut, write_cube
from dpe_hf.hub import DEFAULT_MODEL, DEFAULT_REPO_ID, bundled_models
from dpe_hf.inference_numpy import blend

log = logging.getLogger("dpe_hf.app")

HERE = Path(__file__).resolve().parent
EXAMPLES_DIR = HERE / "examples"
MODEL_CACHE_SIZE = 3  # models kept loaded
RESULT_CACHE_BYTES = 1 << 30  # full-size inputs + results kept for re-blending (newest always kept)
OWN_FILES_TTL = 600  # our copies of result files; gradio has copied them into its cache by then


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(float(raw))
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected a number") from None


@dataclasses.dataclass
class _Entry:
    """One photo run through one model: full-size arrays plus small copies for the view."""

    name: str
    image: np.ndarray
    result: np.ndarray
    meta: ImageMeta
    model: str
    auto_exposure: bool
    seconds: float
    preview_image: np.ndarray
    preview_result: np.ndarray
    lut: np.ndarray | None = None  # the look as a 33^3 LUT at strength 100 %, fitted on first use

    @property
    def nbytes(self) -> int:
        return self.image.nbytes + self.result.nbytes + self.preview_image.nbytes + self.preview_result.nbytes


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _preview(arr: np.ndarray, side: int) -> np.ndarray:
    arr = _to_uint8(arr)
    h, w = arr.shape[:2]
    if side <= 0 or max(h, w) <= side:
        return arr
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(arr).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0))


class Engine:
    """Loads models (LRU), runs them once per (upload, model, even exposure) and renders blends
    of the cache."""

    def __init__(self, default_model: str, *, max_pixels: int, preview_side: int, device: str | None):
        self.default_model = default_model
        self.max_pixels = max_pixels
        self.preview_side = preview_side
        self.device = device
        self._models: OrderedDict[str, object] = OrderedDict()
        self._results: OrderedDict[tuple, _Entry] = OrderedDict()
        self._lock = threading.Lock()  # guards both caches
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()  # one network run at a time: the CPU is shared
        self.out_dir = Path(tempfile.mkdtemp(prefix="dpe_app_"))
        atexit.register(shutil.rmtree, self.out_dir, True)

    def spec(self, model: str | None) -> str:
        return (model or "").strip() or self.default_model

    def model(self, model: str | None):
        spec = self.spec(model)
        with self._lock:
            if spec in self._models:
                self._models.move_to_end(spec)
                return self._models[spec]
        with self._load_lock:
            with self._lock:
                if spec in self._models:
                    return self._models[spec]
            from dpe_hf.hub import load_generator

            generator = load_generator(spec, device=self._device())
            with self._lock:
                self._models[spec] = generator
                while len(self._models) > MODEL_CACHE_SIZE:
                    self._models.popitem(last=False)
            log.info("loaded model %s", spec)
            return generator

    def _device(self) -> str:
        if self.device:
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def entry(self, path: str, model: str | None, auto_exposure: bool = False) -> _Entry:
        """The cached run of `model` on the photo at `path`, computing it on a miss."""
        spec = self.spec(model)
        auto_exposure = bool(auto_exposure)
        name = Path(path).name
        try:
            st = os.stat(path)
            key = (os.path.realpath(path), st.st_size, st.st_mtime_ns, spec, auto_exposure)
        except OSError:
            key = None  # read_image below says what is wrong with it
        if key is not None:
            with self._lock:
                if key in self._results:
                    self._results.move_to_end(key)
                    return self._results[key]
        try:
            image, meta = read_image(path, max_pixels=self.max_pixels)
        except ImageTooLargeError as exc:
            raise ImageTooLargeError(name, exc.reason.replace("(--max-pixels)", "for this app")) from None
        except ImageReadError as exc:
            raise ImageReadError(name, exc.reason) from None
        generator = self.model(spec)
        from dpe_hf.inference import enhance

        with self._run_lock:
            start = time.perf_counter()
            result = enhance(generator, image, icc_profile=meta.icc_profile, auto_exposure=auto_exposure)
            seconds = time.perf_counter() - start
        entry = _Entry(name, image, result, meta, spec, auto_exposure, seconds,
                       _preview(image, self.preview_side), _preview(result, self.preview_side))
        if key is not None:
            with self._lock:
                self._results[key] = entry
                total = sum(e.nbytes for e in self._results.values())
                while len(self._results) > 1 and total > RESULT_CACHE_BYTES:
                    total -= self._results.popitem(last=False)[1].nbytes
        return entry

    def render(self, entry: _Entry, strength_pct: float):
        """(before/after pair, path of the full-size result file, info line) at this strength."""
        if strength_pct is None or not 0 <= float(strength_pct) <= 100:
            raise gr.Error(f"strength must be between 0 and 100 %, got {strength_pct}", print_exception=False)
        s = float(strength_pct) / 100.0
        folder = self.out_dir / uuid.uuid4().hex
        folder.mkdir()
        self._sweep(keep=folder)
        # previews as files of this request: gradio caches arrays under a content hash with a
        # plain write, so identical previews of concurrent requests truncated each other's downloads
        before, after = folder / "before.webp", folder / "after.webp"
        Image.fromarray(entry.preview_image).save(before, quality=90)
        Image.fromarray(blend(entry.preview_image, entry.preview_result, s)).save(after, quality=90)
        pair = (str(before), str(after))
        full = blend(entry.image, entry.result, s)
        jpeg = entry.meta.format == "JPEG"
        dest = write_image(folder / f"{Path(entry.name).stem}_enhanced{'.jpg' if jpeg else '.png'}",
                           full, entry.meta, quality=95)
        cube = write_cube(folder / f"{Path(entry.name).stem}.cube", self._lut(entry, s),
                          title=f"dpe_hf {entry.model} {entry.name} {strength_pct:.0f}%")
        h, w = full.shape[:2]
        info = (f"**{entry.name}**: {w}×{h} px, {entry.meta.bit_depth}-bit {entry.meta.format} · "
                f"model `{entry.model}`{' with even exposure' if entry.auto_exposure else ''} "
                f"({entry.seconds:.1f} s) · strength {strength_pct:.0f} % · "
                f"download: {'JPEG' if jpeg else 'PNG'}, full size")
        return pair, [str(dest), str(cube)], info

    @staticmethod
    def _lut(entry: _Entry, strength: float) -> np.ndarray:
        """This photo's enhancement as a .cube LUT for other tools; the LUT of a blend is the
        blend of the LUTs, so one fit serves every strength."""
        if entry.lut is None:
            small_in, small_out = _preview(entry.image, 512), _preview(entry.result, 512)
            entry.lut = fit_lut(to_float32(small_in), to_float32(small_out))
        identity = identity_lut(entry.lut.shape[0])
        return identity + strength * (entry.lut - identity)

    def _sweep(self, keep: Path) -> None:
        cutoff = time.time() - OWN_FILES_TTL
        for folder in self.out_dir.iterdir():
            try:
                if folder != keep and folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                pass


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


def _default_model(default_model: str | None) -> str:
    if default_model:
        return default_model
    if os.environ.get("DPE_MODEL", "").strip():
        return os.environ["DPE_MODEL"].strip()
    bundled = bundled_models()
    if DEFAULT_MODEL in bundled or not bundled:
        return DEFAULT_MODEL
    return next(iter(bundled))


def build_demo(default_model: str | None = None) -> gr.Blocks:
    """The app. `default_model` (else env DPE_MODEL, else the bundled model) is preselected."""
    default = _default_model(default_model)
    engine = Engine(default, max_pixels=_env_int("DPE_MAX_PIXELS", 50_000_000),
                    preview_side=_env_int("DPE_PREVIEW_SIDE", 2048),
                    device=os.environ.get("DPE_DEVICE", "").strip() or None)
    choices = list(dict.fromkeys([default, *bundled_models()]))
    delete_after = _env_int("DPE_DELETE_CACHE_SECONDS", 3600)

    @_user_errors
    def enhance_photo(image: str | None, strength: float, model: str | None, auto_exposure: bool = False):
        """Enhance a photo with `model` (re-exposed first with `auto_exposure`); returns
        (before, after), the full-size result file, info."""
        if not image:  # cleared, or only the model changed: check that the model loads
            engine.model(model)
            return None, None, f"Model `{engine.spec(model)}` is ready: upload a photo."
        return engine.render(engine.entry(image, model, auto_exposure), strength)

    @_user_errors
    def blend_photo(image: str | None, strength: float, model: str | None, auto_exposure: bool = False):
        """Blend the cached result of (photo, model, auto_exposure) with the photo at `strength` %
        (0: the photo)."""
        if not image:
            return None, None, ""
        return engine.render(engine.entry(image, model, auto_exposure), strength)

    with gr.Blocks(title="Deep Photo Enhancer",
                   delete_cache=(delete_after, delete_after) if delete_after > 0 else None) as demo:
        gr.Markdown(
            "# Deep Photo Enhancer\n"
            "Upload a photo: the network ([Chen et al., CVPR 2018](https://openaccess.thecvf.com/content_cvpr_2018/html/"
            "Chen_Deep_Photo_Enhancer_CVPR_2018_paper.html)) sees a copy with long side 512 px and its "
            "change is applied to the full-size photo. Drag the divider to compare, lower the strength "
            "to blend with the original, and download the full-size result.")
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
                compare = gr.ImageSlider(label="Before / after", type="numpy", format="webp",
                                         interactive=False, buttons=["fullscreen"], max_height=700,
                                         elem_id="compare")
                download = gr.File(label="Full-size result and its look as a 3D LUT (.cube)", file_count="multiple",
                                   interactive=False, elem_id="download")
                info = gr.Markdown(label="Info", elem_id="info")
        examples = sorted(EXAMPLES_DIR.glob("*.jpg")) if EXAMPLES_DIR.is_dir() else []
        if examples:
            gr.Examples([[str(p)] for p in examples], inputs=[photo], label="Example photos "
                        "(see examples/ATTRIBUTION.md)", cache_examples=False)

        outputs = [compare, download, info]
        gr.on([photo.change, run.click, model.change, even.change], enhance_photo,
              inputs=[photo, strength, model, even], outputs=outputs, api_name="enhance", trigger_mode="always_last")
        strength.release(blend_photo, inputs=[photo, strength, model, even], outputs=outputs, api_name="blend",
                         show_progress="minimal", trigger_mode="always_last")

    demo.queue(default_concurrency_limit=max(1, _env_int("DPE_CONCURRENCY", 1)), max_size=32)
    demo.dpe_engine = engine  # for tests and debugging
    return demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Deep Photo Enhancer web demo (Gradio).")
    parser.add_argument("--model", default=None,
                        help="bundled model name, model folder, run folder or hub repo id (env DPE_MODEL)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    demo = build_demo(args.model)
    demo.launch(max_file_size=os.environ.get("DPE_MAX_FILE_SIZE", "50mb"))


if __name__ == "__main__":
    main()
