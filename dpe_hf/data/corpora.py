"""Image corpora on top of 🤗 ``datasets``, and the resumable crop streams the training loop eats:
the one place to import them from.

Sources (:mod:`dpe_hf.data.sources`, :mod:`dpe_hf.data.fivek`)
    :func:`load_images` — a local folder (searched recursively) or a hub dataset id, as a
    ``Dataset`` / ``IterableDataset`` with one ``"image"`` column; :func:`load_pairs` — two
    folders paired by file stem (FiveK input / expert C); :func:`fivek_split_ids` — the FiveK
    4500 / 500 split by id range or by a list file; :func:`shard_for_process` — one rank's share.

Decoding (:mod:`dpe_hf.data.decoding`)
    :func:`decode_image` — one image to a uint8 tensor at ``max_side``; an undecodable file is
    skipped by the streams with a :class:`CorruptImageWarning` that names it.

Streams (:mod:`dpe_hf.data.streams`)
    :class:`PairedCrops`, :class:`ImageCrops`, :class:`SyntheticPairs` and :class:`MixedPairs`:
    infinite (unless ``epochs`` is given), exactly resumable iterators of training examples;
    :func:`batches` stacks them.
"""

from dpe_hf.data.decoding import CorruptImageWarning, decode_image
from dpe_hf.data.fivek import fivek_id, fivek_split_ids
from dpe_hf.data.sources import IMAGE_EXTENSIONS, load_images, load_pairs, shard_for_process
from dpe_hf.data.streams import ImageCrops, MixedPairs, PairedCrops, SyntheticPairs, batches

__all__ = [
    "IMAGE_EXTENSIONS",
    "CorruptImageWarning",
    "ImageCrops",
    "MixedPairs",
    "PairedCrops",
    "SyntheticPairs",
    "batches",
    "decode_image",
    "fivek_id",
    "fivek_split_ids",
    "load_images",
    "load_pairs",
    "shard_for_process",
]
