"""Run a full-resolution pass strip by strip on worker threads (`dpe_hf.ops.guided`).

The passes split the image into bands of whole strips, one per worker thread, and switch
OpenCV's own pool off meanwhile (nested pools would oversubscribe the cores). Also here: the
column tiles that keep every cv2.remap call under OpenCV's size limit, and the rounding store
into uint8 / uint16 output rows.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import cv2
import numpy as np

from dpe_hf.ops.checks import positive_int

__all__ = ["REMAP_MAX", "column_tiles", "cv2_single_threaded", "run_strips", "store_rounded", "worker_threads"]

REMAP_MAX = 32000  # cv2.remap wants source and destination sides below 32767


def worker_threads(threads: int | None) -> int:
    """None: ``torch.get_num_threads()`` where torch is already imported, else
    ``OMP_NUM_THREADS`` if set (a positive int), else the CPU count; at most the CPU count."""
    if threads is None:
        cpus = os.cpu_count() or 1
        torch = sys.modules.get("torch")
        if torch is not None:
            return max(1, min(torch.get_num_threads(), cpus))
        try:
            env = int(os.environ.get("OMP_NUM_THREADS", "") or 0)
        except ValueError:
            env = 0
        return max(1, min(env if env > 0 else cpus, cpus))
    return positive_int(threads, "threads")


_cv2_lock = threading.Lock()
_cv2_depth = 0
_cv2_saved = 0


@contextlib.contextmanager
def cv2_single_threaded() -> Iterator[None]:
    """Switch OpenCV's own thread pool off while our workers run (they split the strips
    themselves; nested pools would oversubscribe the cores). Reference-counted, so concurrent
    calls restore the original setting only when the last one ends."""
    global _cv2_depth, _cv2_saved
    with _cv2_lock:
        if _cv2_depth == 0:
            _cv2_saved = cv2.getNumThreads()
            cv2.setNumThreads(1)
        _cv2_depth += 1
    try:
        yield
    finally:
        with _cv2_lock:
            _cv2_depth -= 1
            if _cv2_depth == 0:
                cv2.setNumThreads(_cv2_saved)


def run_strips(height: int, strip_rows: int, threads: int, worker) -> None:
    """Call ``worker(row_start, row_stop)`` over ``threads`` contiguous bands of rows (each
    band is processed strip by strip inside the worker, with the worker's own buffers)."""
    threads = max(1, min(threads, -(-height // strip_rows)))
    with cv2_single_threaded():
        if threads == 1:
            worker(0, height)
            return
        # bands are whole numbers of strips, so buffers are reused without reallocation
        strips = -(-height // strip_rows)
        bounds = [min(height, (strips * k // threads) * strip_rows) for k in range(threads + 1)]
        with ThreadPoolExecutor(max_workers=threads) as pool:
            futures = [pool.submit(worker, a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
            for f in futures:
                f.result()


def column_tiles(width: int) -> list[tuple[int, int]]:
    """Column ranges of at most REMAP_MAX pixels (cv2.remap's limit on the output width)."""
    count = -(-width // REMAP_MAX)
    bounds = [width * k // count for k in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def store_rounded(values: np.ndarray, dst: np.ndarray, eight_bit: bool, scale: float) -> None:
    """Clip to [0, scale], round half to even, write into dst (uint8 / uint16)."""
    if eight_bit:
        cv2.max(values, 0.0, dst=values)
        cv2.convertScaleAbs(values, dst=dst)  # rounds and saturates at 255
    else:
        np.clip(values, 0.0, scale, out=values)
        np.rint(values, out=values)
        np.copyto(dst, values, casting="unsafe")
