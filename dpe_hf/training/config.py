"""Training configuration: YAML files read into dataclasses, with `--set key=value` overrides.

An unknown key is an error that names it (a typo must not silently train the wrong thing).
Precedence, lowest first: preset < config file < command-line flags and `--set`.
Paths may use `${data}`, replaced by `data.root` (the `--data` flag), so recipes can say
`${data}/target/debian` and run against any copy of the data.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dpe_hf.data.degrade import DegradeConfig
from dpe_hf.errors import ConfigError

MODES = ("supervised", "gan1way", "gan2way")


@dataclass
class ModelConfig:
    width: float = 1.0
    selu: str = "released"
    init_scale: float | None = 1e-3
    init_from: str | None = None  # a model folder, run folder, bundled name or repo id to start from
    inverse_init_from: str | None = None  # 2-way GAN: G_Y's start (e.g. a run with data.reverse)


@dataclass
class DataConfig:
    root: str | None = None  # substituted for ${data} in the paths below
    # paired (supervised): an input folder and an expert folder, files paired by stem
    input: str | None = None
    expert: str | None = None
    ids: list[str] | None = None  # restrict the pairs to these stems (e.g. a training fold)
    fivek_split: str | None = None  # train (a0001-a4500) | test (a4501-a5000) | all, by FiveK id
    fivek_split_file: str | None = None  # or the ids listed in this file, one per line
    # synthetic pairs: good photos degraded with random global edits (the target is the photo)
    synthetic: list[str] = field(default_factory=list)
    generated: int = 0  # also make this many procedural photos (smoke runs, no data needed)
    paired_weight: float = 0.5  # share of each batch drawn from real pairs when both kinds exist
    reverse: bool = False  # learn target -> input (the edit's inverse: a start for a 2-way GAN's G_Y)
    degrade: DegradeConfig = field(default_factory=DegradeConfig)  # ranges of the synthetic edits
    # real pairs: a random edit of the input only (target kept), e.g. exposure and white balance
    # only, so that the result learnt does not depend on how the camera exposed; null: none
    pair_input_edit: DegradeConfig | None = None
    # unpaired (GAN): "ordinary photos" and "photos I like", folders or hub dataset ids
    source: list[str] = field(default_factory=list)
    target: list[str] = field(default_factory=list)
    # good photos whose copies, through `degrade`'s random edits, are ordinary photos too: flat,
    # dull "camera renderings", for when the photos to enhance are flatter than the source
    # folders; with `source` as well, `degraded_share` of the source crops come from them
    degraded_source: list[str] = field(default_factory=list)
    degraded_share: float = 0.5
    streaming: bool = False
    crop: int = 256
    max_side: int = 512  # photos are brought to this long side first (the paper's protocol)
    # validation pairs: full images at max_side
    val_input: str | None = None
    val_expert: str | None = None
    val_ids: list[str] | None = None
    val_holdout: int = 0  # without val folders: every Nth pair of input/expert is kept for validation
    val_generated: int = 4  # synthetic validation pairs made from generated photos when no val folders


@dataclass
class GANConfig:
    n_critic: int = 50
    alpha: float = 1000.0  # identity weight
    cycle_weight: float | None = None  # the cycle loss's weight; None: 10 * alpha (paper)
    # the generators' BN layers normalise with their running statistics (model.init_from's) and
    # never update them: a trained generator is fine-tuned as it runs when enhancing
    frozen_bn: bool = False
    # what the identity term holds each generator's output to: its input (paper), or its own
    # output at the start (model.init_from), so that fine-tuning keeps what a trained one knows
    identity_to: str = "input"
    identity_space: str = "srgb"  # srgb (paper) | log: a gain is cheaper than a lift (losses.identity_loss)
    loss: str = "wgan"  # wgan | lsgan | vanilla
    lambda_rule: str = "paper"  # paper | released | fixed
    lambda0: float = 10.0
    critic_lr: float | None = None  # defaults to the generator's lr
    critic_width: float = 1.0
    critic_norm: str = "instance"  # instance (paper) | none: a critic that sees a global gain
    image_every: int = 100


@dataclass
class TrainConfig:
    mode: str = "supervised"
    seed: int = 0
    steps: int = 1000  # optimizer steps of the generator (GAN: of the critic)
    batch_size: int = 4
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    lr_decay_start: float = 0.5  # constant lr, then linear to 0 from this fraction of the steps
    grad_accum: int = 1
    ema_decay: float = 0.0  # > 0: the published generator is this moving average of the weights (training/ema.py)
    mixed_precision: str = "no"  # no | bf16 | fp16
    channels_last: bool = False
    log_every: int = 10
    val_every: int = 200
    save_every: int = 500
    keep_checkpoints: int = 2
    max_bad_steps: int = 5  # this many non-finite (skipped) steps in a row restore the latest checkpoint
    stop_at: int | None = None  # end this invocation at this step with a checkpoint; --resume goes on
    output_dir: str = "runs/dpe"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    gan: GANConfig = field(default_factory=GANConfig)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError(f"mode: {self.mode!r} is not one of {', '.join(MODES)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay: {self.ema_decay} is not in [0, 1) (0 turns the average off)")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ConfigError(f"mixed_precision: {self.mixed_precision!r} is not one of no, bf16, fp16")
        if not 0.0 < self.data.degraded_share < 1.0:
            raise ConfigError(f"data.degraded_share: {self.data.degraded_share} is not between 0 and 1 "
                              "(to use one kind of source only, leave the other folder list empty)")


def _from_dict(cls, values: dict[str, Any], where: str = ""):
    """Build dataclass `cls` from a nested dict, refusing unknown keys and wrong types."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        path = f"{where}{key}"
        if key not in names:
            raise ConfigError(f"unknown config key '{path}' (known: {', '.join(sorted(names))})")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _from_dict(hint, value or {}, f"{path}.")
        else:
            kwargs[key] = _coerce(value, hint, path)
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a dataclass's own validation (e.g. DegradeConfig's ranges)
        raise ConfigError(f"{where.rstrip('.') or 'config'}: {exc}") from None


def _coerce(value: Any, hint: Any, path: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if value is None:
        if type(None) in args:
            return None
        raise ConfigError(f"{path}: may not be null")
    sections = [h for h in (hint, *args) if dataclasses.is_dataclass(h)]
    if sections and isinstance(value, dict):  # a section, possibly optional (`X | None`)
        return _from_dict(sections[0], value, f"{path}.")
    if origin in (typing.Union, types.UnionType):
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, path)
            except ConfigError:
                pass
        raise ConfigError(f"{path}: {value!r} does not fit {hint}")
    if origin is list:
        items = value if isinstance(value, list) else [value]
        return [_coerce(v, args[0], path) for v in items]
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{path}: expected {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, path) for v, a in zip(value, args))
    if hint is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:  # YAML 1.1 reads "1e-3" as a string
            return float(value)
        except ValueError:
            raise ConfigError(f"{path}: {value!r} is not a number") from None
    if hint is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{path}: {value!r} is not a {getattr(hint, '__name__', hint)}")


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: '{p}' is not a section")
    node[leaf] = value


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_yaml(path: str | Path) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping of keys to values")
    return data


def build_config(*layers: dict, overrides: list[str] = ()) -> TrainConfig:
    """Merge config layers (lowest precedence first) and `key=value` overrides into a TrainConfig."""
    tree: dict = {}
    for layer in layers:
        tree = _merge(tree, layer)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected key=value")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            problem = str(exc).splitlines()[0]
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({problem}); "
                              f"quote list items that contain {{ or }}, e.g. [\"${{data}}/photos\"]") from None
        _set_dotted(tree, key.strip(), value)
    config = _from_dict(TrainConfig, tree)
    return substitute_data_root(config)


def substitute_data_root(config: TrainConfig) -> TrainConfig:
    data = config.data
    root = data.root

    def sub(p):
        if p is None or "${data}" not in p:
            return p
        if root is None:
            raise ConfigError(f"path {p!r} uses ${{data}}: pass --data DIR (or set data.root)")
        return p.replace("${data}", root)

    for name in ("input", "expert", "val_input", "val_expert"):
        setattr(data, name, sub(getattr(data, name)))
    for name in ("synthetic", "source", "degraded_source", "target"):
        setattr(data, name, [sub(p) for p in getattr(data, name)])
    return config


def to_dict(config: TrainConfig) -> dict:
    return dataclasses.asdict(config)
