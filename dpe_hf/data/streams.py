"""Resumable crop streams: the training examples the loop eats.

:class:`PairedCrops`, :class:`ImageCrops`, :class:`SyntheticPairs` and :class:`MixedPairs` are
infinite (unless ``epochs`` is given) iterators of training examples. Every random choice is a
pure function of ``(seed, epoch, index)``, and ``state_dict()`` / ``load_state_dict()`` capture
(epoch, position within the epoch), so a resumed run yields exactly the examples the
uninterrupted run would have. :func:`batches` stacks them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch

from dpe_hf.data.decoding import to_uint8, try_decode
from dpe_hf.data.sources import image_columns
from dpe_hf.data.transforms import _as_hw, dihedral, random_crop
from dpe_hf.errors import ConfigError

# First elements of the SeedSequence entropy of each kind of draw, so that no two kinds collide.
_TAG_ORDER = 0x0DE5
_TAG_AUG = 0xA06
_TAG_MIX = 0x1117

_END = object()


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def _is_iterable_dataset(ds) -> bool:
    from datasets import IterableDataset

    return isinstance(ds, IterableDataset)


def _as_raw(ds, columns: Sequence[str]):
    """``ds`` restricted to ``columns``, Image columns cast to ``decode=False`` (decoded here)."""
    from datasets import Image

    missing = [c for c in columns if ds.column_names is not None and c not in ds.column_names]
    if missing:
        raise ConfigError(f"dataset has no column(s) {missing} (columns: {ds.column_names})")
    ds = ds.select_columns(list(columns))
    if ds.features is not None:
        for c in columns:
            feat = ds.features[c]
            if isinstance(feat, Image) and feat.decode:
                ds = ds.cast_column(c, Image(decode=False))
    return ds


class _CropStream:
    """Shared machinery: epochs, shuffling, decoding, caching, state; subclasses make examples."""

    def __init__(
        self,
        dataset,
        columns: Sequence[str],
        crop: int | Sequence[int],
        seed: int,
        *,
        max_side: int | None = 512,
        augment: bool = True,
        cache: bool = True,
        epochs: int | None = None,
        shuffle_buffer: int = 256,
        exact_resume: bool = True,
    ):
        self.seed = _check_seed(seed)
        _as_hw(crop)  # validates
        self.crop = crop
        if epochs is not None and (
            isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0
        ):
            raise ValueError(f"epochs must be a non-negative int or None, got {epochs!r}")
        if max_side is not None and max_side < 1:
            raise ValueError(f"max_side must be positive or None, got {max_side}")
        self.max_side = max_side
        self.augment = bool(augment)
        self.epochs = epochs
        self.columns = tuple(columns)
        self.streaming = _is_iterable_dataset(dataset)
        self._raw = _as_raw(dataset, self.columns)
        self.cache = bool(cache) and not self.streaming
        self._cache: dict[int, tuple[torch.Tensor, ...]] = {}
        self._bad: set[int] = set()
        self._warned: set[str] = set()
        self.epoch = 0
        self.position = 0  # examples of the epoch consumed (map: order slots; stream: raw examples)
        self._yielded_in_epoch = 0
        self._full_epoch = True  # this epoch was started at position 0 in this process
        self._order: np.ndarray | None = None
        self._order_epoch = -1
        if self.streaming:
            self.shuffle_buffer = int(shuffle_buffer)
            self.exact_resume = bool(exact_resume)
            self._stream = (
                self._raw.shuffle(seed=self.seed, buffer_size=self.shuffle_buffer)
                if self.shuffle_buffer > 1 else self._raw
            )
            self._it: Iterator | None = None
            self._ds_state: dict | None = None
            self._pending_ds_state: dict | None = None
        else:
            if len(self._raw) == 0:
                raise ConfigError("crop stream over an empty dataset")

    # ---- iteration -------------------------------------------------------------------------

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            if self.epochs is not None and self.epoch >= self.epochs:
                raise StopIteration
            item = self._next_map() if not self.streaming else self._next_stream()
            if item is not None:
                return item

    def _end_epoch(self) -> None:
        if self._yielded_in_epoch == 0 and self._full_epoch:
            raise ConfigError(f"{type(self).__name__}: a whole epoch without a decodable image")
        self.epoch += 1
        self.position = 0
        self._yielded_in_epoch = 0
        self._full_epoch = True

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([_TAG_AUG, self.seed, self.epoch, int(index)])

    def _next_map(self):
        n = len(self._raw)
        if self.position >= n:
            self._end_epoch()
            return None
        if self._order_epoch != self.epoch:
            self._order = np.random.default_rng([_TAG_ORDER, self.seed, self.epoch]).permutation(n)
            self._order_epoch = self.epoch
        i = int(self._order[self.position])  # type: ignore[index]
        self.position += 1
        images = self._load(i)
        if images is None:
            return None
        self._yielded_in_epoch += 1
        return self._make(images, self._rng(i))

    def _open_stream(self) -> Iterator:
        ds = self._stream
        ds.set_epoch(self.epoch)
        if self.position and (not self.exact_resume or self._stream is self._raw):
            # datasets' own state: exact without a shuffle buffer, else it loses the buffer.
            ds.load_state_dict(self._pending_ds_state)
            it = iter(ds)
        else:
            ds.load_state_dict(None)  # forget a state restored earlier (it applies to its epoch)
            it = iter(ds)
            # exact replay: the shuffled order is a pure function of (seed, epoch)
            for _ in range(self.position):
                if next(it, _END) is _END:  # the stream is shorter than when the state was saved
                    return iter(())
        self._pending_ds_state = None
        return it

    def _next_stream(self):
        if self._it is None:
            self._it = self._open_stream()
        try:
            row = next(self._it)
        except StopIteration:
            self._it = None
            self._end_epoch()
            return None
        index = self.position
        self.position += 1
        self._ds_state = self._stream.state_dict()
        images = self._decode_row(row)
        if images is None:
            return None
        self._yielded_in_epoch += 1
        return self._make(images, self._rng(index))

    # ---- decoding --------------------------------------------------------------------------

    def _decode_row(self, row: dict) -> tuple[torch.Tensor, ...] | None:
        out = []
        for c in self.columns:
            x = try_decode(row[c], self.max_side, self._warned)
            if x is None:
                return None
            out.append(x)
        return tuple(out)

    def _load(self, i: int) -> tuple[torch.Tensor, ...] | None:
        if i in self._bad:
            return None
        hit = self._cache.get(i)
        if hit is not None:
            return hit
        images = self._decode_row(self._raw[i])
        if images is None:
            self._bad.add(i)
        elif self.cache:
            self._cache[i] = images
        return images

    def preload(self, num_threads: int | None = None) -> int:
        """Decode and cache every image of a map-style dataset now, in threads.

        Returns the number of usable (decodable) examples.
        """
        if self.streaming or not self.cache:
            raise RuntimeError("preload needs a map-style dataset and cache=True")
        from concurrent.futures import ThreadPoolExecutor

        todo = [i for i in range(len(self._raw)) if i not in self._cache and i not in self._bad]
        with ThreadPoolExecutor(max_workers=num_threads or min(8, os.cpu_count() or 1)) as pool:
            for _ in pool.map(self._load, todo):
                pass
        return len(self._cache)

    # ---- examples --------------------------------------------------------------------------

    def _crop_one(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        c = random_crop(x, size=self.crop, rng=rng)
        if self.augment:
            c = dihedral(c, int(rng.integers(0, 8)))
        return c.float().div_(255.0) if c.dtype == torch.uint8 else c.float()

    def _make(self, images: tuple[torch.Tensor, ...], rng: np.random.Generator):
        raise NotImplementedError

    # ---- state -----------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Where the stream is: ``{"kind", "seed", "epoch", "position"[, "dataset_state"]}``.

        Plain ints / strings / dicts: JSON- and ``torch.save``-able.
        """
        state = {
            "kind": type(self).__name__,
            "seed": self.seed,
            "epoch": self.epoch,
            "position": self.position,
        }
        if self.streaming:
            state["dataset_state"] = self._ds_state if self.position else None
        return state

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state``, the :meth:`state_dict` of a stream with the same arguments."""
        if state.get("kind") != type(self).__name__:
            raise ValueError(
                f"state of a {state.get('kind')!r} stream given to a {type(self).__name__}"
            )
        if int(state["seed"]) != self.seed:
            raise ValueError(
                f"state was saved with seed {state['seed']}, this stream has seed {self.seed}"
            )
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self._yielded_in_epoch = 0
        self._full_epoch = self.position == 0
        if self.streaming:
            self._it = None
            self._ds_state = state.get("dataset_state")
            self._pending_ds_state = self._ds_state
            uses_ds_state = not self.exact_resume or self._stream is self._raw
            if self.position and self._ds_state is None and uses_ds_state:
                raise ValueError("stream state without the dataset state needed to resume it")


def _pick_image_column(dataset, column: str | None) -> str:
    if column is not None:
        return column
    names = dataset.column_names or []
    if "image" in names:
        return "image"
    cols = image_columns(dataset)
    if cols:
        return cols[0]
    raise ConfigError(f"dataset has no 'image' column (columns: {', '.join(names)})")


class PairedCrops(_CropStream):
    """``(input, target)`` float crops (3, crop, crop) in [0, 1] from a paired dataset.

    Each epoch visits every pair once, in an order shuffled by ``(seed, epoch)``; both images
    are brought to long side ``max_side`` (once: cached for map-style datasets) and get the
    same random crop and, if ``augment``, the same random dihedral transform, drawn from an rng
    seeded by ``(seed, epoch, index)``. A target whose size differs from its input's is resized
    to it. Infinite unless ``epochs`` is given.

    Args:
        dataset: ``Dataset`` / ``IterableDataset`` with "input" and "target" image columns
            (:func:`load_pairs`).
        crop: crop size, int or (h, w); smaller images are mirror-padded.
        seed: non-negative int.
        max_side: long side the images are reduced to first (None: full size).
        augment: random dihedral transform (the crop is always random).
        cache: keep decoded images in memory (map-style only; ~0.8 MB per 512-px image).
        epochs: stop after this many epochs (None: never).
        shuffle_buffer: streams only: ``IterableDataset.shuffle`` buffer (<= 1: no shuffle).
        exact_resume: streams only: resume a shuffled stream by replaying the epoch up to the
            saved position (exact; reads the skipped examples' bytes again) instead of
            ``IterableDataset.load_state_dict`` (fast but drops the shuffle buffer's content).
        input_edit: a ``DegradeConfig``: each input crop also gets a random global edit drawn
            from it while its target stays the same (e.g. re-exposed inputs teach that the
            expert's result does not depend on the camera's exposure). None: no edit.
    """

    def __init__(
        self,
        dataset,
        crop,
        seed: int,
        *,
        max_side: int | None = 512,
        augment: bool = True,
        input_column: str = "input",
        target_column: str = "target",
        input_edit=None,
        **kwargs,
    ):
        super().__init__(dataset, (input_column, target_column), crop, seed,
                         max_side=max_side, augment=augment, **kwargs)
        self.input_edit = input_edit

    def _decode_row(self, row):
        images = super()._decode_row(row)
        if images is not None and images[1].shape[-2:] != images[0].shape[-2:]:
            from dpe_hf.ops.resize import resize_to

            x, y = images
            images = (x, to_uint8(resize_to(y.float().div(255.0), tuple(x.shape[-2:]))))
        return images

    def _make(self, images, rng):
        x, y = images
        cx, cy = random_crop(x, y, size=self.crop, rng=rng)
        if self.augment:
            k = int(rng.integers(0, 8))
            cx, cy = dihedral(cx, k), dihedral(cy, k)
        cx, cy = cx.float().div_(255.0), cy.float().div_(255.0)
        if self.input_edit is not None:
            from dpe_hf.data.degrade import degrade

            cx, _ = degrade(cx, seed=int(rng.integers(0, 2**31 - 1)), config=self.input_edit)
        return cx, cy


class ImageCrops(_CropStream):
    """Single float crops (3, crop, crop) in [0, 1] for unpaired (GAN) training.

    Same rules as :class:`PairedCrops`. For a streamed ``IterableDataset`` nothing is cached;
    the stream is shuffled with ``ds.shuffle(seed=seed, buffer_size=shuffle_buffer)`` and
    ``set_epoch(epoch)``, and the augmentation rng is seeded by (seed, epoch, position).
    ``column`` defaults to "image" (else the first Image column).
    """

    def __init__(
        self,
        dataset,
        crop,
        seed: int,
        *,
        max_side: int | None = 512,
        augment: bool = True,
        column: str | None = None,
        **kwargs,
    ):
        super().__init__(dataset, (_pick_image_column(dataset, column),), crop, seed,
                         max_side=max_side, augment=augment, **kwargs)

    def _make(self, images, rng):
        return self._crop_one(images[0], rng)


class SyntheticPairs(ImageCrops):
    """``(degraded, clean)`` crops: a clean crop as :class:`ImageCrops` makes it, and
    ``dpe_hf.data.degrade.degrade(clean, seed=s)`` with ``s`` drawn from the example's rng
    (so a pure function of (seed, epoch, index)).
    """

    def __init__(self, dataset, crop, seed: int, *, max_side: int | None = 512, degrade_config=None,
                 augment: bool = True, **kwargs):
        super().__init__(dataset, crop, seed, max_side=max_side, augment=augment, **kwargs)
        self.degrade_config = degrade_config

    def _make(self, images, rng):
        from dpe_hf.data.degrade import degrade

        clean = self._crop_one(images[0], rng)
        seed = int(rng.integers(0, 2**31 - 1))
        degraded, _ = degrade(clean, seed=seed, config=self.degrade_config)
        return degraded, clean


class MixedPairs:
    """Interleave example streams; each step picks stream ``i`` with probability ``weights[i]``.

    The pick of step ``t`` is a pure function of ``(seed, t)``, and the state holds ``t`` and
    every stream's state, so the mix is deterministic and resumable. Stops when a picked stream
    is exhausted (the crop streams are infinite unless given ``epochs``).
    """

    def __init__(self, streams: Sequence, weights: Sequence[float], seed: int):
        self.streams = list(streams)
        if not self.streams:
            raise ValueError("MixedPairs needs at least one stream")
        w = np.asarray(list(weights), dtype=np.float64)
        if w.shape != (len(self.streams),):
            raise ValueError(f"{len(self.streams)} streams but {w.size} weights")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"weights must be finite, >= 0 and not all 0, got {list(weights)}")
        self.weights = w / w.sum()
        self._cum = np.cumsum(self.weights)
        self.seed = _check_seed(seed)
        self.step = 0

    def __iter__(self):
        return self

    def _pick(self, step: int) -> int:
        u = np.random.default_rng([_TAG_MIX, self.seed, step]).random()
        return min(int(np.searchsorted(self._cum, u, side="right")), len(self.streams) - 1)

    def __next__(self):
        i = self._pick(self.step)
        item = next(self.streams[i])
        self.step += 1
        return item

    def state_dict(self) -> dict:
        return {"kind": "MixedPairs", "seed": self.seed, "step": self.step,
                "streams": [s.state_dict() for s in self.streams]}

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != "MixedPairs" or len(state["streams"]) != len(self.streams):
            raise ValueError("state is not from a MixedPairs over the same number of streams")
        if int(state["seed"]) != self.seed:
            raise ValueError(
                f"state was saved with seed {state['seed']}, this mix has seed {self.seed}"
            )
        self.step = int(state["step"])
        for s, st in zip(self.streams, state["streams"]):
            s.load_state_dict(st)


def batches(stream: Iterable, batch_size: int, *, drop_last: bool = False) -> Iterator:
    """Stack consecutive examples of ``stream`` into batches of ``batch_size``.

    Tensors become (B, ...) tensors; tuples (or lists) of tensors become tuples of stacked
    tensors. The last, smaller batch of a finite stream is yielded unless ``drop_last``.
    Consumes ``stream`` lazily, so ``stream.state_dict()`` between batches marks a batch boundary.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    it = iter(stream)

    def stack(items: list):
        first = items[0]
        if isinstance(first, (tuple, list)):
            return tuple(torch.stack([it_[j] for it_ in items]) for j in range(len(first)))
        return torch.stack(items)

    while True:
        chunk = []
        for item in it:
            chunk.append(item)
            if len(chunk) == batch_size:
                break
        if not chunk or (drop_last and len(chunk) < batch_size):
            return
        yield stack(chunk)
        if len(chunk) < batch_size:
            return
