"""Supervised training end to end on generated data: smoke run, exact resume (2 processes: tests/slow)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dpe_hf import DPEGenerator
from dpe_hf.errors import ConfigError
from dpe_hf.hub import load_generator
from dpe_hf.training.config import build_config, read_yaml
from dpe_hf.training.schedule import lr_at
from helpers import REPO, SMOKE, digests, read_log, run_training, training_env


class TestConfig:
    def test_smoke_config_is_valid(self):
        config = build_config(read_yaml(SMOKE))
        assert config.mode == "supervised" and config.data.generated > 0

    def test_unknown_key_is_named(self):
        with pytest.raises(ConfigError, match="data.cropp"):
            build_config({"data": {"cropp": 3}})

    def test_precedence_config_then_overrides(self):
        config = build_config({"lr": 0.1, "data": {"crop": 64}}, {"data": {"crop": 96}}, overrides=["lr=1e-3"])
        assert config.lr == 1e-3 and config.data.crop == 96

    def test_wrong_type(self):
        with pytest.raises(ConfigError, match="steps"):
            build_config({"steps": "many"})

    def test_degradation_ranges_from_yaml(self):
        config = build_config({"data": {"degrade": {"wb_log_gain": 0.3}}},
                              overrides=["data.pair_input_edit.exposure_ev=[-1, 0.5]"])
        assert config.data.degrade.wb_log_gain == 0.3 and config.data.degrade.gamma == (0.75, 1.4)
        assert config.data.pair_input_edit.exposure_ev == (-1.0, 0.5)
        assert build_config({}).data.pair_input_edit is None
        with pytest.raises(ConfigError, match="data.degrade.*gamma"):
            build_config({"data": {"degrade": {"gamma": [2, 1]}}})
        with pytest.raises(ConfigError, match="data.pair_input_edit.expo"):
            build_config({"data": {"pair_input_edit": {"expo": 1}}})

    def test_set_value_that_is_not_yaml_is_a_config_error(self):
        # ${data} inside an unquoted flow list reads as a YAML mapping and fails to parse
        with pytest.raises(ConfigError, match=r"--set 'data.synthetic=\[\$\{data\}/a\]'.*not valid YAML"):
            build_config({}, overrides=["data.synthetic=[${data}/a]"])
        config = build_config({"data": {"root": "/p"}}, overrides=['data.synthetic=["${data}/a"]'])
        assert config.data.synthetic == ["/p/a"]

    def test_data_root_substitution(self):
        config = build_config({"data": {"root": "/photos", "synthetic": ["${data}/good"]}})
        assert config.data.synthetic == ["/photos/good"]
        with pytest.raises(ConfigError, match="--data"):
            build_config({"data": {"synthetic": ["${data}/good"]}})

    def test_lr_schedule_constant_then_linear_to_zero(self):
        config = build_config({"steps": 100, "lr": 1.0, "lr_decay_start": 0.5})
        assert [lr_at(config, s) for s in (0, 49, 50, 75, 99)] == [1.0, 1.0, 1.0, 0.5, 0.02]


def hand_set_lrs(config, step: int) -> tuple[float, float]:
    """(generator, critic) lr at `step` as the loop set them by hand before the schedulers."""
    start = int(config.lr_decay_start * config.steps)
    if step < start or config.steps <= start:
        lr = config.lr
    else:
        lr = config.lr * max(0.0, (config.steps - step) / (config.steps - start))
    critic = config.gan.critic_lr
    if critic is None:
        return lr, lr
    return lr, critic * (lr / config.lr) if config.lr > 0 else critic


@pytest.mark.parametrize("mode, critic_lr", [("supervised", None), ("gan2way", None), ("gan1way", 7e-5)])
def test_the_schedulers_give_every_step_the_lr_it_had_when_set_by_hand(tmp_path, mode, critic_lr):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from dpe_hf.training.schedule import step_schedulers
    from dpe_hf.training.task import make_task

    AcceleratorState._reset_state(True)
    config = build_config({"mode": mode, "steps": 37, "lr": 3e-4, "lr_decay_start": 0.3, "output_dir": str(tmp_path),
                           "model": {"width": 0.25}, "data": {"generated": 2, "crop": 32, "max_side": 64},
                           "gan": {"critic_lr": critic_lr, "critic_width": 0.25}})
    try:
        task = make_task(config, Accelerator(cpu=True))
        for step in range(config.steps):
            used = [s.optimizer.param_groups[0]["lr"] for s in task.schedulers]
            assert used == list(hand_set_lrs(config, step)[:len(used)]), step  # ==: the same floats
            step_schedulers(task.schedulers)
    finally:
        AcceleratorState._reset_state(True)
    assert used[0] < config.lr / 20  # the last step's: the loop above went through the decay


def test_every_mode_has_a_task_with_every_method_of_the_contract():
    from dpe_hf.training.config import MODES
    from dpe_hf.training.task import TASKS, Task

    assert set(TASKS) == set(MODES)
    methods = [name for name, value in vars(Task).items() if callable(value) and not name.startswith("_")]
    assert "train_step" in methods and "final_models" in methods
    for mode, task_class in TASKS.items():
        assert [m for m in methods if not callable(getattr(task_class(), m, None))] == [], mode


def test_smoke_run_publishes_a_loadable_generator(tmp_path):
    run = tmp_path / "run"
    run_training(["--config", str(SMOKE), "--output-dir", str(run)])
    generator = load_generator(run)  # a run folder resolves to run/generator
    assert isinstance(generator, DPEGenerator)
    card = (run / "generator" / "README.md").read_text()
    assert "supervised" in card and "procedural photos" in card
    logged = read_log(run)
    assert any("loss/mse" in row for row in logged) and any("val/psnr" in row for row in logged)
    assert list((run / "tensorboard").rglob("events.out.tfevents*"))
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_00000006"


def test_resume_gives_the_same_weights_as_one_run(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    run_training(["--config", str(SMOKE), "--output-dir", str(straight)])
    run_training(["--config", str(SMOKE), "--output-dir", str(split), "--set", "stop_at=3"])
    assert not (split / "generator").exists()
    run_training(["--config", str(SMOKE), "--output-dir", str(split), "--resume"])
    assert digests(split) == digests(straight)
    a = load_generator(straight).state_dict()
    b = load_generator(split).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_weight_average_follows_the_warmed_up_formula():
    from dpe_hf.training.ema import WeightAverage

    model = torch.nn.Sequential(torch.nn.Linear(1, 1, bias=False), torch.nn.BatchNorm1d(1))
    weight, running_mean, counter = model[0].weight, model[1].running_mean, model[1].num_batches_tracked
    with torch.no_grad():
        weight.fill_(1.0)
    average = WeightAverage(model, decay=0.5)
    with torch.no_grad():
        weight.fill_(3.0)
        running_mean.fill_(2.0)
        counter.fill_(7)
    average.update(model)  # decay min(0.5, 1/10) = 0.1
    assert average.model[0].weight.item() == pytest.approx(0.1 * 1 + 0.9 * 3)
    assert average.model[1].running_mean.item() == pytest.approx(0.9 * 2)
    assert average.model[1].num_batches_tracked.item() == 7  # counters are copied, not averaged
    with torch.no_grad():
        weight.fill_(5.0)
    average.update(model)  # decay min(0.5, 2/11)
    assert average.model[0].weight.item() == pytest.approx(2 / 11 * 2.8 + 9 / 11 * 5)
    for _ in range(20):
        average.update(model)
    assert average.current_decay() == 0.5  # the warm-up is over
    assert weight.item() == 5.0 and not average.model[0].weight.requires_grad
    restored = WeightAverage(model, decay=0.5)
    restored.load_state_dict(average.state_dict())
    assert restored.updates == 22 and torch.equal(restored.model[0].weight, average.model[0].weight)
    with pytest.raises(ConfigError, match="ema_decay"):
        build_config({"ema_decay": 1.0})


AVERAGE = ["--set", "ema_decay=0.9"]


@pytest.fixture(scope="module")
def straight_average(tmp_path_factory):
    """The smoke run with a weight average, uninterrupted."""
    straight = tmp_path_factory.mktemp("average") / "straight"
    run_training(["--config", str(SMOKE), "--output-dir", str(straight), *AVERAGE])
    return straight


def test_weight_average_is_published_and_resumes_exactly(straight_average, tmp_path):
    straight, split = straight_average, tmp_path / "split"
    average = AVERAGE
    run_training(["--config", str(SMOKE), "--output-dir", str(split), *average, "--set", "stop_at=3"])
    run_training(["--config", str(SMOKE), "--output-dir", str(split), *average, "--resume"])
    assert digests(split) == digests(straight)
    published = load_generator(straight).state_dict()
    online = load_generator(straight / "generator_online").state_dict()
    resumed = load_generator(split).state_dict()
    assert all(torch.equal(published[k], resumed[k]) for k in published)
    assert not all(torch.equal(published[k], online[k]) for k in published)


def as_format_1(checkpoint: Path, schedulers: int, lr_before: float) -> None:
    """Make `checkpoint` what the code before the lr schedulers wrote: no `format` in its JSON
    state, no files for the schedulers (the last registered objects), and in the optimizer the lr
    of the step before (the loop set it by hand at the start of each step)."""
    own = checkpoint / "process_0.json"
    own.write_text(json.dumps({k: v for k, v in json.loads(own.read_text()).items() if k != "format"}))
    custom = sorted(checkpoint.glob("custom_checkpoint_*.pkl"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    for path in custom[len(custom) - schedulers:]:
        path.unlink()
    state = torch.load(checkpoint / "optimizer.bin", weights_only=False)
    for group in state["param_groups"]:
        group["lr"] = lr_before
        del group["initial_lr"]
    torch.save(state, checkpoint / "optimizer.bin")


def test_a_checkpoint_from_before_the_lr_schedulers_resumes_exactly(straight_average, tmp_path):
    """Checkpoint format 1 (no scheduler state): the schedulers are put at its step, and with
    the weight average registered before them, each object still gets its own state back."""
    old = tmp_path / "old"
    run_training(["--config", str(SMOKE), "--output-dir", str(old), *AVERAGE, "--set", "stop_at=4"])
    checkpoint = old / "checkpoints" / "step_00000004"
    assert json.loads((checkpoint / "process_0.json").read_text())["format"] == 2
    config = build_config(read_yaml(SMOKE))
    assert lr_at(config, 3) != lr_at(config, 4)  # so a schedule left at the optimizer's lr would show
    as_format_1(checkpoint, schedulers=1, lr_before=lr_at(config, 3))
    run_training(["--config", str(SMOKE), "--output-dir", str(old), *AVERAGE, "--resume"])
    assert digests(old) == digests(straight_average)


def test_a_run_resumed_with_another_lr_trains_with_it(tmp_path):
    """The checkpointed schedulers must not bring the old lr back: the divergence error advises
    resuming with a lower one."""
    run = tmp_path / "run"
    quick = ["--config", str(SMOKE), "--output-dir", str(run), "--set", "val_every=0", "--set", "log_every=1"]
    run_training([*quick, "--set", "stop_at=4"])
    run_training([*quick, "--resume", "--set", "lr=2.5e-4"])
    lower = build_config(read_yaml(SMOKE), {"lr": 2.5e-4})
    logged = {row["step"]: row["lr"] for row in read_log(run)}
    assert logged == {1: 1e-3, 2: 1e-3, 3: 1e-3, 4: 1e-3, 5: lr_at(lower, 4), 6: lr_at(lower, 5)}


def test_fivek_split_selects_pairs_by_id_range_or_list(tmp_path):
    from PIL import Image

    from dpe_hf.data.generated import generated_photo
    from dpe_hf.training.data import paired_dataset

    for side in ("input", "expert"):
        (tmp_path / side).mkdir()
        for i, name in enumerate(("a0001", "a4500", "a4501", "a5000")):
            Image.fromarray(generated_photo((40, 48), i)).save(tmp_path / side / f"{name}.png")
    (tmp_path / "list.txt").write_text("# my fold\na0001\na5000\n")

    def ids(**data):
        config = build_config({"data": {"input": str(tmp_path / "input"), "expert": str(tmp_path / "expert"), **data}})
        return sorted(paired_dataset(config.data)["id"])

    assert ids(fivek_split="train") == ["a0001", "a4500"]
    assert ids(fivek_split="test") == ["a4501", "a5000"]
    assert ids(fivek_split_file=str(tmp_path / "list.txt")) == ["a0001", "a5000"]
    assert ids() == ["a0001", "a4500", "a4501", "a5000"]


def test_retouches_of_held_out_pairs_stay_out_of_the_good_photos(tmp_path):
    """An expert's retouch of a pair the run is scored on (a3232-x.jpg among the good photos)
    must not train it; retouches of pairs it trains on, and other photos, stay."""
    from PIL import Image

    from dpe_hf.data import corpora
    from dpe_hf.data.generated import generated_photo
    from dpe_hf.training.data import held_out_ids, skip_retouches_of

    for side in ("input", "expert"):
        (tmp_path / side).mkdir()
        for i, name in enumerate(("a0676", "a3232", "a4690", "a4700")):
            Image.fromarray(generated_photo((40, 48), i)).save(tmp_path / side / f"{name}.png")
    good = tmp_path / "good"
    good.mkdir()
    for i, name in enumerate(("a3232-_DGW6397", "fivek-expertC-256_a4690-DSC_0005", "a0676-IMG", "kodim01",
                              "a12345x", "lomiri_a3232x")):
        Image.fromarray(generated_photo((40, 48), i)).save(good / f"{name}.png")

    def kept(**data):
        pairs = {"input": str(tmp_path / "input"), "expert": str(tmp_path / "expert")}
        config = build_config({"data": {**pairs, **data}})
        images = corpora.load_images(str(good), skip=skip_retouches_of(held_out_ids(config.data)))
        return sorted(Path(row["image"]["path"]).stem for row in images.cast_column(
            "image", __import__("datasets").Image(decode=False)))

    everything = ["a0676-IMG", "a12345x", "a3232-_DGW6397", "fivek-expertC-256_a4690-DSC_0005", "kodim01",
                  "lomiri_a3232x"]
    assert kept() == everything  # nothing held out
    folds = {"ids": ["a0676", "a4690"], "val_ids": ["a3232"],
             "val_input": str(tmp_path / "input"), "val_expert": str(tmp_path / "expert")}
    assert kept(**folds) == ["a0676-IMG", "a12345x", "fivek-expertC-256_a4690-DSC_0005", "kodim01",
                             "lomiri_a3232x"]
    every_pair = {**folds, "ids": ["a0676", "a3232", "a4690"], "val_ids": ["a0676", "a3232"]}
    assert kept(**every_pair) == everything  # validating on pairs it trains on holds nothing out
    # every 3rd of the 4 pairs validates and does not train: a4690
    assert kept(val_holdout=3) == ["a0676-IMG", "a12345x", "a3232-_DGW6397", "kodim01", "lomiri_a3232x"]


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupt_saves_a_checkpoint_and_resume_goes_on(tmp_path, sig):
    import signal
    import time

    run = tmp_path / "run"
    env = training_env()
    args = [sys.executable, str(REPO / "train_accelerate.py"), "--config", str(SMOKE), "--output-dir", str(run),
            "--set", "steps=100000", "--set", "save_every=0", "--set", "val_every=0", "--set", "log_every=1"]
    proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "log.jsonl").is_file() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert "continue with --resume" in out
    step = json.loads((run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()
                       / "process_0.json").read_text())["step"]
    assert 0 < step < 100000
    if sig == "SIGINT":  # resuming goes on from there
        run_training(["--config", str(SMOKE), "--output-dir", str(run), "--resume", "--set", f"steps={step + 2}",
                      "--set", "val_every=0"])
        assert (run / "generator" / "model.safetensors").is_file()


def test_reverse_trains_the_inverse_edit(tmp_path):
    """data.reverse swaps every pair, in training batches and in validation, and nothing else."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from dpe_hf.training.data import validation_pairs
    from dpe_hf.training.supervised import SupervisedTask

    def first_batch(reverse: bool):
        AcceleratorState._reset_state(True)
        config = build_config({"mode": "supervised", "seed": 0, "batch_size": 2, "output_dir": str(tmp_path),
                               "model": {"width": 0.25},
                               "data": {"generated": 2, "crop": 32, "max_side": 64, "reverse": reverse}})
        try:
            return SupervisedTask(config, Accelerator(cpu=True))._batch(), validation_pairs(config)
        finally:
            AcceleratorState._reset_state(True)

    (x, y), val = first_batch(False)
    (x_rev, y_rev), val_rev = first_batch(True)
    assert not torch.equal(x, y)
    assert torch.equal(x_rev, y) and torch.equal(y_rev, x)
    assert len(val) == len(val_rev) > 0
    for (name, a, b), (name_rev, c, d) in zip(val, val_rev):
        assert name == name_rev and torch.equal(a, d) and torch.equal(b, c)
