"""Command line of `train_accelerate.py` (run it with `accelerate launch`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dpe_hf.errors import ConfigError
from dpe_hf.training import presets
from dpe_hf.training.config import build_config, read_yaml


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="train_accelerate.py",
        description="Train a DPE generator (supervised, 1-way or 2-way GAN) with Accelerate.",
        epilog="Precedence: preset < --config < flags and --set. Examples: accelerate launch "
               "train_accelerate.py --preset unpaired --source my_photos/ --target photos_i_like/; "
               "accelerate launch train_accelerate.py --preset paired --input before/ --expert after/; "
               "accelerate launch train_accelerate.py --config configs/smoke.yaml --output-dir runs/smoke",
    )
    p.add_argument("--preset", choices=presets.NAMES,
                   help="a recipe for your own photos: paired (--input, --expert; supervised) or "
                        "unpaired (--source, --target; 2-way GAN); both start from the bundled model")
    p.add_argument("--config", help="YAML recipe (see configs/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, dotted for sections (e.g. data.crop=128); repeatable")
    p.add_argument("--output-dir", help="run folder (checkpoints, logs, generator/)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's latest checkpoint")
    p.add_argument("--data", help="data root substituted for ${data} in the config's paths")
    p.add_argument("--input", help="paired training: folder of input photos")
    p.add_argument("--expert", help="paired training: folder of retouched photos (same file names)")
    p.add_argument("--source", action="append", help="unpaired training: ordinary photos (folder or dataset id)")
    p.add_argument("--target", action="append", help="unpaired training: photos you like (folder or dataset id)")
    p.add_argument("--push-to-hub", metavar="REPO_ID", help="push the trained generator to this hub repo")
    return p


def _abs(path: str) -> str:
    """Relative paths mean "from the current directory"; a hub dataset id (not on disk) stays as is."""
    return os.path.abspath(path) if os.path.exists(path) else path


def config_from_args(args) -> "TrainConfig":  # noqa: F821
    layers = []
    if args.preset:
        layers.append(presets.read_preset(args.preset))
    if args.config:
        layers.append(read_yaml(args.config))
    flags: dict = {}
    data: dict = {}
    if args.output_dir:
        flags["output_dir"] = args.output_dir
    if args.data:
        data["root"] = os.path.abspath(args.data)
    if args.input:
        data["input"] = _abs(args.input)
    if args.expert:
        data["expert"] = _abs(args.expert)
    if args.source:
        data["source"] = [_abs(s) for s in args.source]
    if args.target:
        data["target"] = [_abs(t) for t in args.target]
    if data:
        flags["data"] = data
    layers.append(flags)
    config = build_config(*layers, overrides=args.overrides)
    if args.preset:
        presets.check_required(args.preset, config)
    return config


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        from dpe_hf.training.loop import train

        run_dir = train(config, resume=args.resume, push_to_hub=args.push_to_hub)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if os.environ.get("RANK", "0") == "0":
        print(f"done: {run_dir / 'generator'}")
    return 0
