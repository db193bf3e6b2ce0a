"""The web demo's work, without its page: load models (LRU), run each (upload, model, even
exposure) once, answer the page with a small before/after view at any strength, and make the
full-size file and the .cube only when a download asks for them.

The view is what the page waits for, so it stays small: the model runs on the view's copy of
the photo (long side `preview_side`; the network sees its 512 px copy either way, so the look is
the same) and each strength re-blends that copy and encodes two JPEGs. A download runs the
model on the full-size photo once per cache entry (the view's run is reused when the view is
the photo itself), fits the .cube on that run's pair once, then blends and writes per request.

`app.py` builds the Gradio page on top of this; nothing here imports gradio. Photos get the
rules of `dpe enhance` (`dpe_hf.batch`): the same pixel limit, device choice and output name.
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import io
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
from dpe_hf.defaults import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE
from dpe_hf.imageio import WRITE_SUFFIXES, ImageMeta, read_image, write_image
from dpe_hf.imageio.jpeg import encode_rgb_jpeg
from dpe_hf.errors import ImageReadError, ImageTooLargeError
from dpe_hf.export.lut import fit_lut, identity_lut, write_cube
from dpe_hf.enhancer import Enhancer, LowPair, blend
from dpe_hf.ops.guided import downscale_long_side
from dpe_hf.model_spec import DEFAULT_MODEL, bundled_models

log = logging.getLogger(__name__)

MODEL_CACHE_SIZE = 3  # models kept loaded
RESULT_CACHE_BYTES = 1 << 30  # photos, views and full-size results kept for re-blending (newest always kept)
OWN_FILES_TTL = 600  # our copies of result files; gradio has copied them into its cache by then
DEFAULT_PREVIEW_SIDE = 2048  # long side of the before/after view
PREVIEW_QUALITY = 90  # JPEG: a 2048 px view encodes in about 15 ms, where WebP took 0.3 s and PNG 1 s


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
    """One photo run through one model: the full-size photo, the view's 8-bit copies, and the
    full-size result once a download has asked for it."""

    name: str
    image: np.ndarray
    meta: ImageMeta
    model: str
    auto_exposure: bool
    seconds: float  # the model's run for the view
    preview_image: np.ndarray
    preview_result: np.ndarray
    before_jpeg: bytes  # preview_image encoded once: the "before" of every strength
    result: np.ndarray | None = None  # full size, same dtype as image
    pair: LowPair | None = None  # what the network made of the photo's low-resolution copy in the run of `result`
    lut: np.ndarray | None = None  # the look as a 33^3 LUT at strength 100 %, fitted on the first download
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def nbytes(self) -> int:
        full = 0 if self.result is None else self.result.nbytes
        return self.image.nbytes + full + self.preview_image.nbytes + self.preview_result.nbytes


@dataclasses.dataclass
class View:
    """An entry at one strength as the page shows it: before/after JPEGs and one info line."""

    before: Path
    after: Path
    info: str


@dataclasses.dataclass
class Download:
    """An entry at one strength at full size: the file (as `dpe enhance` names and writes it)
    and the look as a .cube."""

    result: Path
    cube: Path


def to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)


def jpeg_bytes(arr: np.ndarray) -> bytes:
    """A preview as JPEG (4:2:0, Pillow's default), through the codec `dpe enhance` writes with."""
    encoded = encode_rgb_jpeg(arr, PREVIEW_QUALITY, full_chroma=False, exif=None, icc=None)
    if encoded is not None:
        return encoded
    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, format="JPEG", quality=PREVIEW_QUALITY)
    return buffer.getvalue()


def content_digest(path: str | os.PathLike) -> str:
    """SHA-256 of the file's bytes (a few ms for a 12 MP JPEG). The cache is keyed on content:
    gradio writes every upload anew (same path, new file and mtime), so a key on path and mtime
    re-ran the model for every strength that a client sent with its photo."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def strength_fraction(strength_pct: float) -> float:
    if strength_pct is None or not 0 <= float(strength_pct) <= 100:
        raise ValueError(f"strength must be between 0 and 100 %, got {strength_pct}")
    return float(strength_pct) / 100.0


class Engine:
    """Loads models (LRU), runs them once per (upload, model, even exposure), renders views of
    the cache and, on request, full-size downloads. `device`: where models run, as
    `dpe enhance --device` (None: auto). `preview_side`: long side of the view (0: full size;
    at least the network's 512)."""

    def __init__(self, default_model: str, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                 preview_side: int = DEFAULT_PREVIEW_SIDE, device: str | None = None):
        self.default_model = default_model
        self.max_pixels = max_pixels
        # never below the network's own size: the view's run must show the network the copy that
        # the full-size run shows it, so the view and the download have the same look
        self.preview_side = preview_side if preview_side <= 0 else max(preview_side, DEFAULT_MAX_SIDE)
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
            generator = load_model(spec, self.device or "auto", runtime="auto")  # as dpe enhance
            with self._lock:
                self._models[spec] = generator
                while len(self._models) > MODEL_CACHE_SIZE:
                    self._models.popitem(last=False)
            log.info("loaded model %s", spec)
            return generator

    def entry(self, path: str, model: str | None, auto_exposure: bool = False) -> Entry:
        """The cached run of `model` on the photo at `path` (for the view), computing it on a miss."""
        spec = self.spec(model)
        auto_exposure = bool(auto_exposure)
        name = Path(path).name
        try:
            key = (content_digest(path), name, spec, auto_exposure)
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
        small = image if self.preview_side <= 0 else downscale_long_side(image, self.preview_side)
        small_result, pair, seconds = self._run(spec, auto_exposure, small, meta)
        preview_image = to_uint8(small)
        entry = Entry(name, image, meta, spec, auto_exposure, seconds, preview_image, to_uint8(small_result),
                      jpeg_bytes(preview_image))
        if small is image:  # the view is the photo: its run is the full-size one
            entry.result, entry.pair = small_result, pair
        if key is not None:
            with self._lock:
                self._results[key] = entry
            self._trim()
        return entry

    def view(self, entry: Entry, strength_pct: float) -> View:
        """The entry blended with its photo at `strength_pct` (0-100) on the view's copies, as
        files of this request; the info line names the download that `download` would give."""
        s = strength_fraction(strength_pct)
        folder = self._request_folder()
        # files of this request, not arrays: gradio caches arrays under a content hash, and
        # identical views of concurrent requests once truncated each other's files there
        before, after = folder / "before.jpg", folder / "after.jpg"
        before.write_bytes(entry.before_jpeg)
        after.write_bytes(jpeg_bytes(blend(entry.preview_image, entry.preview_result, s)))
        h, w = entry.image.shape[:2]
        download_format = WRITE_SUFFIXES[Path(output_name(entry.name, DEFAULT_SUFFIX)).suffix.lower()]
        info = (f"**{entry.name}**: {w}×{h} px, {entry.meta.bit_depth}-bit {entry.meta.format} · "
                f"model `{entry.model}`{' with even exposure' if entry.auto_exposure else ''} "
                f"({entry.seconds:.1f} s) · strength {strength_pct:.0f} % · "
                f"download: {download_format}, full size")
        return View(before, after, info)

    def download(self, entry: Entry, strength_pct: float) -> Download:
        """The entry blended with its photo at `strength_pct` (0-100) at full size, and its
        look as a .cube, as files of this request (both written atomically)."""
        s = strength_fraction(strength_pct)
        result, lut = self._full_size(entry)
        folder = self._request_folder()
        dest = write_image(folder / output_name(entry.name, DEFAULT_SUFFIX), blend(entry.image, result, s),
                           entry.meta, quality=DEFAULT_QUALITY)
        # the LUT of a blend is the blend of the LUTs, so one fit serves every strength
        identity = identity_lut(lut.shape[0])
        cube = write_cube(folder / f"{Path(entry.name).stem}.cube", identity + s * (lut - identity),
                          title=f"dpe_hf {entry.model} {entry.name} {strength_pct:.0f}%")
        return Download(Path(dest), Path(cube))

    def _run(self, spec: str, auto_exposure: bool, image: np.ndarray, meta: ImageMeta):
        """(the model's result on `image`, its `LowPair`, the seconds it ran once its turn came)."""
        generator = self.model(spec)
        with self._run_lock:
            start = time.perf_counter()
            enhancer = Enhancer(generator, auto_exposure=auto_exposure)
            result, pair = enhancer.with_pair(image, icc_profile=meta.icc_profile)
            return result, pair, time.perf_counter() - start

    def _full_size(self, entry: Entry) -> tuple[np.ndarray, np.ndarray]:
        """The entry's full-size result and LUT, made on the first download that needs them."""
        with entry.lock:  # concurrent downloads of one entry run the model once
            if entry.result is None:
                entry.result, entry.pair, _ = self._run(entry.model, entry.auto_exposure, entry.image, entry.meta)
                self._trim()
            if entry.lut is None:  # as `dpe enhance --save-lut`: the pair of the run that made the result
                entry.lut = fit_lut(entry.pair.low_in, entry.pair.low_out)
            return entry.result, entry.lut

    def _trim(self) -> None:
        with self._lock:
            total = sum(e.nbytes for e in self._results.values())
            while len(self._results) > 1 and total > RESULT_CACHE_BYTES:
                total -= self._results.popitem(last=False)[1].nbytes

    def _request_folder(self) -> Path:
        folder = self.out_dir / uuid.uuid4().hex
        folder.mkdir()
        self._sweep(keep=folder)
        return folder

    def _sweep(self, keep: Path) -> None:
        cutoff = time.time() - OWN_FILES_TTL
        for folder in self.out_dir.iterdir():
            try:
                if folder != keep and folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                pass
