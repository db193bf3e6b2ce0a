"""Turn a DataConfig into the example streams and validation pairs a training mode consumes."""

from __future__ import annotations

from pathlib import Path

import torch

from dpe_hf.data import corpora
from dpe_hf.data.degrade import degrade
from dpe_hf.data.generated import generated_photo, write_generated_folder
from dpe_hf.errors import ConfigError
from dpe_hf.training.config import DataConfig, TrainConfig

GENERATED_SIZE = (256, 320)
VAL_SEED_OFFSET = 1_000_003
MIN_PAIRS_FOR_HOLDOUT = 4


def generated_folder(config: TrainConfig, accelerator) -> Path | None:
    """Write `data.generated` procedural photos once (main process) and return their folder."""
    if config.data.generated <= 0:
        return None
    folder = Path(config.output_dir) / "generated_data"
    if accelerator.is_main_process and len(list(folder.glob("*.png"))) != config.data.generated:
        write_generated_folder(folder, config.data.generated, GENERATED_SIZE, config.seed)
    accelerator.wait_for_everyone()
    return folder


def holdout_ids(ids, every: int) -> set[str]:
    """The ids kept out of training for validation: every `every`-th in sorted order, and at
    least one when there are `MIN_PAIRS_FOR_HOLDOUT` or more (fewer pairs all train)."""
    ids = sorted(ids)
    if every < 1 or len(ids) < MIN_PAIRS_FOR_HOLDOUT:
        return set()
    return set(ids[every - 1::every] or ids[-1:])


def _holds_out(data: DataConfig) -> bool:
    # validation folders, when given, are the validation set: then every pair trains
    return data.val_holdout > 0 and not (data.val_input and data.val_expert)


def held_out_ids(data: DataConfig) -> set[str]:
    """The FiveK ids of the validation pairs that the run does not train on."""
    if data.val_input and data.val_expert:
        validated = corpora.load_pairs(data.val_input, data.val_expert, ids=data.val_ids)["id"]
    elif _holds_out(data) and data.input and data.expert:
        validated = paired_dataset(data, part="val")["id"]
    else:
        return set()
    trained = set(paired_dataset(data)["id"]) if data.input and data.expert else set()
    return {corpora.fivek_id(i) or i for i in validated if i not in trained}


def skip_retouches_of(ids: set[str]):
    """For `corpora.load_images(skip=...)`: a photo whose name starts with one of these FiveK ids
    (an expert's retouch of a held-out pair, in a folder of good photos) stays out of training,
    or the run would learn the answer it is scored on."""
    return (lambda path: corpora.fivek_id(path.name) in ids) if ids else None


def paired_dataset(data: DataConfig, *, part: str = "train"):
    """The (id, input, target) pairs of `data.input`/`data.expert`, restricted to `data.ids`
    and to a FiveK split when one is given. With `data.val_holdout`, part "train" leaves the
    held-out pairs out and part "val" is those pairs only."""
    pairs = corpora.load_pairs(data.input, data.expert, ids=data.ids)
    if data.fivek_split or data.fivek_split_file:
        keep = set(corpora.fivek_split_ids(pairs["id"], data.fivek_split or "all", data.fivek_split_file))
        pairs = pairs.filter(lambda row: row["id"] in keep)
    if _holds_out(data):
        held = holdout_ids(pairs["id"], data.val_holdout)
        pairs = pairs.filter(lambda row: (row["id"] in held) == (part == "val"))
    return pairs


def pair_stream(config: TrainConfig, accelerator):
    """(input, target) crops for supervised training: real pairs, synthetic pairs or a mix."""
    data, rank, world = config.data, accelerator.process_index, accelerator.num_processes
    seed = config.seed * 1000 + rank  # each process draws its own crops
    streams, weights = [], []
    if data.input or data.expert:
        if not (data.input and data.expert):
            raise ConfigError("paired data needs both data.input (--input) and data.expert (--expert)")
        pairs = corpora.shard_for_process(paired_dataset(data), rank, world)
        streams.append(corpora.PairedCrops(pairs, data.crop, seed, max_side=data.max_side,
                                               input_edit=data.pair_input_edit))
        weights.append(data.paired_weight)
    good = list(data.synthetic)
    folder = generated_folder(config, accelerator)
    if folder is not None:
        good.append(str(folder))
    if good:
        skip = skip_retouches_of(held_out_ids(data))
        images = corpora.shard_for_process(corpora.load_images(good, streaming=data.streaming, skip=skip), rank, world)
        streams.append(corpora.SyntheticPairs(images, data.crop, seed + 500, max_side=data.max_side,
                                                  degrade_config=data.degrade))
        weights.append(1.0 - data.paired_weight if streams[:-1] else 1.0)
    if not streams:
        raise ConfigError("no training data: give paired folders (--input/--expert), data.synthetic "
                          "folders or data.generated > 0")
    if len(streams) == 1:
        return streams[0]
    return corpora.MixedPairs(streams, weights, seed)


def validation_pairs(config: TrainConfig) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """Fixed (name, input, target) pairs, each (1,3,H,W) with long side `max_side`; with
    `data.reverse` (supervised), (name, target, input), the way that run learns."""
    pairs = _validation_pairs(config)
    if config.data.reverse and config.mode == "supervised":
        pairs = [(name, y, x) for name, x, y in pairs]
    return pairs


def _validation_pairs(config: TrainConfig) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    data = config.data
    if data.val_input and data.val_expert:
        return _as_tensors(corpora.load_pairs(data.val_input, data.val_expert, ids=data.val_ids), data.max_side)
    if _holds_out(data) and data.input and data.expert:
        return _as_tensors(paired_dataset(data, part="val"), data.max_side)
    out = []
    for i in range(data.val_generated):
        seed = VAL_SEED_OFFSET + config.seed + i
        clean = torch.from_numpy(generated_photo(GENERATED_SIZE, seed)).permute(2, 0, 1).float() / 255
        degraded, _ = degrade(clean, seed)
        out.append((f"generated_{i}", degraded[None], clean[None]))
    return out


def _as_tensors(pairs, max_side: int) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """Each pair as the training crops' photos are decoded (`corpora.decode_image`), in [0, 1]."""
    return [(row["id"], *(corpora.decode_image(row[key], max_side)[None].float() / 255.0
                          for key in ("input", "target"))) for row in pairs]
