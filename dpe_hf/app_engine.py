"""The web demo's work, without its page: load models (LRU), run each (upload, model, even
exposure) once, and render blends of the cached result at any strength as files to download.

`app.py` builds the Gradio page on top of this; nothing here imports gradio. Photos get the
rules of `dpe enhance` (`dpe_hf.batch`): the same pixel limit, device choice and output name.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

from dpe_hf.batch import DEFAULT_QUALITY, DEFAULT_SUFFIX, load_model, output_name
from dpe_hf.defaults import DEFAULT_MAX_PIXELS
from dpe_hf.imageio import WRITE_SUFFIXES, ImageMeta, read_image, write_image
from dpe_hf.errors import ImageReadError, ImageTooLargeError
from dpe_hf.export.lut import fit_lut, identity_lut, write_cube
from dpe_hf.enhancer import Enhancer, LowPair, blend
from dpe_hf.ops.guided import downscale_long_side
from dpe_hf.model_spec import DEFAULT_MODEL, bundled_models

log = logging.getLogger(__name__)

MODEL_CACHE_SIZE = 3  # models kept loaded
RESULT_CACHE_BYTES = 1 << 30  # full-size inputs + results kept for re-blending (newest always kept)
OWN_FILES_TTL = 600  # our copies of result files; gradio has copied them into its cache by then
DEFAULT_PREVIEW_SIDE = 2048  # long side of the before/after view


def default_model_spec(explicit: str | None = None) -> str:
    """`explicit`, else env DPE_MODEL, else the bundled default (or the first bundled model)."""
    if explicit:
        return explicit
    if os.environ.get("DPE_MODEL", "").strip():
        return os.environ["DPE_MODEL"].strip()
    bundled = bundled_models()
    if DEFAULT_MODEL in bundled or not bundled:
        return DEFAULT_MODEL
    return next(iter(bundled))


@dataclasses.dataclass
class Entry:
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
    pair: LowPair  # what the network made of the photo's low-resolution copy, in that same run
    lut: np.ndarray | None = None  # the look as a 33^3 LUT at strength 100 %, fitted on first use

    @property
    def nbytes(self) -> int:
        return self.image.nbytes + self.result.nbytes + self.preview_image.nbytes + self.preview_result.nbytes


@dataclasses.dataclass
class Rendering:
    """An entry at one strength: the before/after view, the files to download, one info line."""

    before: Path
    after: Path
    result: Path
    cube: Path
    info: str


def to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)


def preview(arr: np.ndarray, side: int) -> np.ndarray:
    """An 8-bit copy with long side at most `side` (0: full size), area-averaged as the
    network's copy is (`downscale_long_side`)."""
    return to_uint8(arr if side <= 0 else downscale_long_side(arr, side))


class Engine:
    """Loads models (LRU), runs them once per (upload, model, even exposure) and renders blends
    of the cache. `device`: where models run, as `dpe enhance --device` (None: auto)."""

    def __init__(self, default_model: str, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                 preview_side: int = DEFAULT_PREVIEW_SIDE, device: str | None = None):
        self.default_model = default_model
        self.max_pixels = max_pixels
        self.preview_side = preview_side
        self.device = device
        self._models: OrderedDict[str, object] = OrderedDict()
        self._results: OrderedDict[tuple, Entry] = OrderedDict()
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
            generator = load_model(spec, self.device or "auto")
            with self._lock:
                self._models[spec] = generator
                while len(self._models) > MODEL_CACHE_SIZE:
                    self._models.popitem(last=False)
            log.info("loaded model %s", spec)
            return generator

    def entry(self, path: str, model: str | None, auto_exposure: bool = False) -> Entry:
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
        with self._run_lock:
            start = time.perf_counter()
            result, pair = Enhancer(generator, auto_exposure=auto_exposure).with_pair(
                image, icc_profile=meta.icc_profile)
            seconds = time.perf_counter() - start
        entry = Entry(name, image, result, meta, spec, auto_exposure, seconds,
                      preview(image, self.preview_side), preview(result, self.preview_side), pair)
        if key is not None:
            with self._lock:
                self._results[key] = entry
                total = sum(e.nbytes for e in self._results.values())
                while len(self._results) > 1 and total > RESULT_CACHE_BYTES:
                    total -= self._results.popitem(last=False)[1].nbytes
        return entry

    def render(self, entry: Entry, strength_pct: float) -> Rendering:
        """The entry blended with its photo at `strength_pct` (0-100), as files of this request."""
        if strength_pct is None or not 0 <= float(strength_pct) <= 100:
            raise ValueError(f"strength must be between 0 and 100 %, got {strength_pct}")
        s = float(strength_pct) / 100.0
        folder = self.out_dir / uuid.uuid4().hex
        folder.mkdir()
        self._sweep(keep=folder)
        # previews as files of this request: gradio caches arrays under a content hash with a
        # plain write, so identical previews of concurrent requests truncated each other's downloads
        before, after = folder / "before.webp", folder / "after.webp"
        Image.fromarray(entry.preview_image).save(before, quality=90)
        Image.fromarray(blend(entry.preview_image, entry.preview_result, s)).save(after, quality=90)
        full = blend(entry.image, entry.result, s)
        dest = write_image(folder / output_name(entry.name, DEFAULT_SUFFIX), full, entry.meta, quality=DEFAULT_QUALITY)
        cube = write_cube(folder / f"{Path(entry.name).stem}.cube", self._lut(entry, s),
                          title=f"dpe_hf {entry.model} {entry.name} {strength_pct:.0f}%")
        h, w = full.shape[:2]
        info = (f"**{entry.name}**: {w}×{h} px, {entry.meta.bit_depth}-bit {entry.meta.format} · "
                f"model `{entry.model}`{' with even exposure' if entry.auto_exposure else ''} "
                f"({entry.seconds:.1f} s) · strength {strength_pct:.0f} % · "
                f"download: {WRITE_SUFFIXES[Path(dest).suffix.lower()]}, full size")
        return Rendering(before, after, Path(dest), Path(cube), info)

    @staticmethod
    def _lut(entry: Entry, strength: float) -> np.ndarray:
        """This photo's enhancement as a .cube LUT for other tools; the LUT of a blend is the
        blend of the LUTs, so one fit serves every strength."""
        if entry.lut is None:  # as `dpe enhance --save-lut`: the pair of the run that made the result
            entry.lut = fit_lut(entry.pair.low_in, entry.pair.low_out)
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
