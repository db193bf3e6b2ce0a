"""Overlapping tiles whose feathered weights add up to one, for running a network piece by piece.

A side of ``length`` pixels is cut into spans of ``tile`` pixels that start every
``tile - overlap`` pixels; the last span ends at the image's edge (it may be shorter, and it
always keeps at least ``overlap`` pixels of its neighbour as context). Where two spans
overlap, the first fades out and the second fades in along a raised-cosine ramp, so the
weights of every pixel sum to one: a blend of the tiles' results needs no division, and a
tile's border, where it lacks the context its neighbour has, counts least. A 2-D tile's
weight is the outer product of its row and column weights, which sums to one as well.

Starts are multiples of ``tile - overlap``: callers that keep it a multiple of a network's
downsampling factor (16 for the DPE U-Net) give every tile the pixel grid the whole image
would have, so tiles agree with an untiled run away from their borders.

numpy only.
"""

from __future__ import annotations

import numpy as np

__all__ = ["tile_spans", "feather_weights"]


def tile_spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """(start, stop) of the tiles along a side of ``length``; requires 0 <= 2 * overlap <= tile,
    so that only neighbouring tiles overlap."""
    if length < 1 or tile < 1 or not 0 <= 2 * overlap <= tile:
        raise ValueError(f"need length >= 1, tile >= 1 and 0 <= 2 * overlap <= tile; "
                         f"got length={length}, tile={tile}, overlap={overlap}")
    stride = tile - overlap
    starts = range(0, max(length - overlap, 1), stride)
    return [(start, min(start + tile, length)) for start in starts]


def feather_weights(spans: list[tuple[int, int]]) -> list[np.ndarray]:
    """float32 weights of each span's pixels: 1 inside, a raised-cosine ramp where it overlaps a
    neighbour, the neighbour's ramp being its complement (the sum over spans is 1 everywhere)."""
    weights = [np.ones(stop - start, np.float64) for start, stop in spans]
    for i in range(len(spans) - 1):
        shared = spans[i][1] - spans[i + 1][0]
        if shared <= 0:
            continue
        t = (np.arange(shared, dtype=np.float64) + 0.5) / shared
        rise = 0.5 - 0.5 * np.cos(np.pi * t)
        weights[i][-shared:] = 1.0 - rise
        weights[i + 1][:shared] = rise
    return [w.astype(np.float32) for w in weights]
