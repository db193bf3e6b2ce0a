"""GAN training (1-way, 2-way with individual BN, A-WGAN): one step in-process, smoke runs on
generated data, exact resume with the lambda state (2 processes: tests/slow)."""

import math
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from helpers import REPO, digests, read_log, run_training

from dpe_hf import DPEGenerator
from dpe_hf.awgan import AdaptiveLambda
from dpe_hf.errors import ConfigError
from dpe_hf.hub import load_generator
from dpe_hf.models.discriminator import DPEDiscriminator
from dpe_hf.training.config import build_config, read_yaml
from dpe_hf.training.gan import GANTask

CONFIGS = REPO / "configs"
SMOKE_1WAY = CONFIGS / "smoke-gan1way.yaml"
SMOKE_2WAY = CONFIGS / "smoke-gan2way.yaml"

CRITIC_KEYS = ("loss", "adv", "penalty", "grad_norm", "lambda", "moving_average")
GENERATOR_KEYS_1WAY = ("G/loss", "G/adv", "G/identity")
GENERATOR_KEYS_2WAY = (*GENERATOR_KEYS_1WAY, "G/adv_X", "G/adv_Y", "G/cycle")

pytestmark = pytest.mark.usefixtures("one_thread")


def without_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "time"} for row in rows]


# -- in-process: one critic step, one generator step ------------------------------------------


@pytest.fixture
def make_task():
    """GANTask without data on a fresh single-process CPU Accelerator."""

    def make(mode="gan2way", mixed_precision="no", **gan):
        AcceleratorState._reset_state(True)
        accelerator = Accelerator(cpu=True, mixed_precision=mixed_precision)
        config = build_config({"mode": mode, "seed": 0, "lr": 1e-3, "model": {"width": 0.25},
                               "gan": {"critic_width": 0.25, **gan}})
        torch.manual_seed(0)
        return GANTask(config, accelerator, with_data=False)

    yield make
    AcceleratorState._reset_state(True)


def batch(seed: int, n: int = 2, size: int = 64) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def snapshot(modules) -> list[torch.Tensor]:
    """Parameters only: BN running statistics move in any forward in training mode."""
    return [p.detach().clone() for m in modules for p in m.parameters()]


def test_generator_step_freezes_the_critics(make_task):
    task = make_task("gan2way")
    x, y = batch(1), batch(2)
    task.critic_step(x, y)  # critics have Adam state and a history
    critics, generators = snapshot(task.raw_critics), snapshot(task.raw_generators)
    values = task.generator_step(x, y)
    assert all(torch.equal(a, b) for a, b in zip(critics, snapshot(task.raw_critics)))
    assert not all(torch.equal(a, b) for a, b in zip(generators, snapshot(task.raw_generators)))
    assert all(p.grad is None for d in task.raw_critics for p in d.parameters())
    assert all(p.requires_grad for d in task.raw_critics for p in d.parameters())  # unfrozen again
    assert set(GENERATOR_KEYS_2WAY) <= set(values) and all(math.isfinite(v) for v in values.values())
    alpha = task.config.gan.alpha
    expected = values["G/adv"] + alpha * values["G/identity"] + 10 * alpha * values["G/cycle"]
    assert values["G/loss"] == pytest.approx(expected, rel=1e-5)


def buffers(modules) -> list[torch.Tensor]:
    return [b.detach().clone() for m in modules for b in m.buffers()]


def test_critic_step_leaves_the_generators_bn_statistics_alone(make_task):
    # its generator forwards run in training mode; only the generator step may move BN statistics
    task = make_task("gan2way")
    x, y = batch(11), batch(12)
    before = buffers(task.raw_generators)
    task.critic_step(x, y)
    assert all(torch.equal(a, b) for a, b in zip(before, buffers(task.raw_generators)))
    task.generator_step(x, y)  # the check above could fail: this step does move them
    assert not all(torch.equal(a, b) for a, b in zip(before, buffers(task.raw_generators)))


def _critic(norm: str) -> DPEDiscriminator:
    """A critic with zero conv biases (they are what breaks the gain invariance) and InstanceNorm
    without its epsilon, with non-trivial InstanceNorm affine parameters."""
    torch.manual_seed(0)
    critic = DPEDiscriminator(width=0.25, norm=norm)
    for m in critic.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.zeros_(m.bias)
        if isinstance(m, torch.nn.InstanceNorm2d):
            m.eps = 0.0
            torch.nn.init.normal_(m.weight, 1.0, 0.3)
            torch.nn.init.normal_(m.bias, 0.0, 0.3)
    return critic.eval()


@torch.no_grad()
def test_the_paper_critic_is_blind_to_a_global_gain_and_critic_norm_none_is_not():
    x = 0.2 + 0.5 * batch(13, size=64)
    paper, plain = _critic("instance"), _critic("none")
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in paper.modules())
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in plain.modules())
    for gain in (0.5, 1.5):
        # conv linear, LeakyReLU positively homogeneous, InstanceNorm removes the scale
        torch.testing.assert_close(paper(gain * x), paper(x), rtol=1e-4, atol=1e-5)
        # without it the critic is positively homogeneous: it sees the gain
        torch.testing.assert_close(plain(gain * x), gain * plain(x), rtol=1e-4, atol=1e-8)
        assert not torch.allclose(plain(gain * x), plain(x), rtol=0.1, atol=0.0)


def test_critic_norm_reaches_the_critics(make_task):
    task = make_task("gan2way", critic_norm="none")
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for d in task.raw_critics for m in d.modules())
    assert all(math.isfinite(v) for v in task.critic_step(batch(14), batch(15)).values())


def test_critic_step_moves_lambda_as_the_controller_says(make_task):
    task = make_task("gan2way", lambda_rule="paper", lambda0=10.0)
    # a one-step window so lambda decides after this very step
    task.controllers = {name: AdaptiveLambda(rule="paper", lambda0=10.0, window=1) for name in task.controllers}
    generators = snapshot(task.raw_generators)
    values = task.critic_step(batch(3), batch(4))
    assert all(torch.equal(a, b) for a, b in zip(generators, snapshot(task.raw_generators)))
    for name in ("D_X", "D_Y"):
        # (the window's mean is left out right after lambda moved: the window restarts empty)
        assert {f"{name}/{k}" for k in CRITIC_KEYS if k != "moving_average"} <= set(values)
        # this step's loss used the old lambda ...
        assert values[f"{name}/loss"] == pytest.approx(values[f"{name}/adv"] + 10.0 * values[f"{name}/penalty"],
                                                       rel=1e-5)
        # ... and the controller moved it exactly as a reference controller fed the same numbers
        reference = AdaptiveLambda(rule="paper", lambda0=10.0, window=1)
        reference.update(values[f"{name}/grad_norm"], values[f"{name}/penalty"])
        assert task.controllers[name].value == reference.value == values[f"{name}/lambda"]
        norm = values[f"{name}/grad_norm"]
        if not 1.001 <= norm <= 1.05:
            assert values[f"{name}/lambda"] != 10.0


def test_bf16_autocast_steps_are_finite(make_task):
    task = make_task("gan2way", mixed_precision="bf16")
    values = {**task.critic_step(batch(5), batch(6)), **task.generator_step(batch(5), batch(6))}
    assert all(math.isfinite(v) for v in values.values()), values


def test_lsgan_has_no_penalty_and_no_lambda(make_task):
    task = make_task("gan1way", loss="lsgan")
    values = {**task.critic_step(batch(7), batch(8)), **task.generator_step(batch(7), batch(8))}
    assert task.controllers == {}
    assert "D_Y/lambda" not in values and "D_Y/penalty" not in values and "D_X/loss" not in values
    assert values["D_Y/loss"] == values["D_Y/adv"] >= 0  # least squares
    assert set(GENERATOR_KEYS_1WAY) <= set(values) and "G/cycle" not in values


@pytest.mark.parametrize("settings, message", [
    ({}, "data.source"),
    ({"gan": {"lambda_rule": "sometimes"}}, "gan.lambda_rule"),
    ({"gan": {"loss": "hinge"}}, "gan.loss"),
    ({"gan": {"critic_norm": "batch"}}, "gan.critic_norm"),
    ({"gan": {"identity_space": "lab"}}, "gan.identity_space"),
    ({"gan": {"identity_to": "target"}}, "gan.identity_to"),
    ({"grad_accum": 2}, "grad_accum"),
])
def test_bad_gan_settings_are_named(tmp_path, settings, message):
    AcceleratorState._reset_state(True)
    try:
        config = build_config({"mode": "gan1way", "output_dir": str(tmp_path), **settings})
        with pytest.raises(ConfigError, match=message):
            GANTask(config, Accelerator(cpu=True))
    finally:
        AcceleratorState._reset_state(True)


@pytest.mark.parametrize("name", ["gan1way", "gan2way", "gan2way-cpu", "smoke-gan1way", "smoke-gan2way",
                                  "dpe-expertC-unpaired"])
def test_recipes_are_valid(name):
    config = build_config(read_yaml(CONFIGS / f"{name}.yaml"), {"data": {"root": "/photos"}})
    assert config.mode == ("gan1way" if "1way" in name else "gan2way")
    if name.startswith("smoke"):
        assert config.data.generated > 0 and config.steps <= 10
    else:
        assert config.data.source[0].startswith("/photos/source/")
        assert config.data.target[0].startswith("/photos/target/")
    if name in ("gan1way", "gan2way"):  # the paper's settings
        assert (config.data.crop, config.gan.n_critic, config.lr, config.batch_size) == (512, 50, 1e-5, 3)
        assert (config.gan.alpha, config.gan.lambda_rule, config.gan.lambda0) == (1000.0, "paper", 10.0)


def test_the_unpaired_recipe_never_learns_from_an_expert_c_pixel():
    """dpe-expertC-unpaired: stage 1 and G_Y's start are synthetic pairs of non-FiveK photos, the
    GAN sees expert C's retouches only through its critic, and the fivek-dev pairs only validate
    (which also leaves their retouches out of the target folder)."""
    root = {"data": {"root": "/photos"}}
    gan = build_config(read_yaml(CONFIGS / "dpe-expertC-unpaired.yaml"), root)
    pretrain = build_config(read_yaml(CONFIGS / "unpaired-pretrain.yaml"), root)
    assert gan.mode == "gan2way" and pretrain.mode == "supervised"
    for config in (gan, pretrain):
        assert config.data.input is None and config.data.expert is None
        assert not any("fivek" in folder for folder in [*config.data.synthetic, *config.data.source])
    assert gan.data.synthetic == [] and gan.data.target == ["/photos/target/fivek-expertC-256"]
    assert (gan.data.val_input, gan.data.val_expert) == ("/photos/fivek-dev/input", "/photos/fivek-dev/expertC")
    assert (gan.model.init_from, gan.model.inverse_init_from) == (pretrain.output_dir, "runs/unpaired-inverse")


def test_degraded_source_shows_the_generators_the_degrade_edits_of_good_photos(tmp_path):
    from PIL import Image

    from dpe_hf.data.generated import generated_photo

    for side in ("good", "target"):
        (tmp_path / side).mkdir()
        for i in range(3):
            Image.fromarray(generated_photo((48, 64), i)).save(tmp_path / side / f"{i}.png")
    (tmp_path / "white").mkdir()
    Image.new("RGB", (64, 48), (255, 255, 255)).save(tmp_path / "white" / "w.png")
    # one edit only, always the same: 2 stops darker in linear light
    darker = {"exposure_ev": [-2.0, -2.0], "gamma": [1.0, 1.0], "contrast": [1.0, 1.0], "saturation": [1.0, 1.0],
              "wb_log_gain": 0.0, "tone_curve": [0.0, 0.0], "black_level": [0.0, 0.0], "white_level": [1.0, 1.0],
              "p_identity": 0.0}

    def source_crops(n: int, **folders) -> torch.Tensor:
        AcceleratorState._reset_state(True)
        data = {"target": [str(tmp_path / "target")], "crop": 32, "max_side": 64, "degrade": darker,
                **{key: [str(tmp_path / name)] for key, name in folders.items() if key != "degraded_share"},
                "degraded_share": folders.get("degraded_share", 0.5)}
        config = build_config({"mode": "gan2way", "seed": 0, "batch_size": n, "model": {"width": 0.25},
                               "gan": {"critic_width": 0.25}, "data": data})
        task = GANTask(config, Accelerator(cpu=True))
        return task._batch(task.source_stream)

    def two_stops_darker(x: torch.Tensor) -> torch.Tensor:
        linear = torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4) / 4
        return torch.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)

    plain, degraded = source_crops(4, source="good"), source_crops(4, degraded_source="good")
    assert plain.shape == degraded.shape == (4, 3, 32, 32)
    # the same crops (same seed), each 2 stops darker: a quarter of the light, in sRGB
    assert float((degraded - two_stops_darker(plain)).abs().max()) < 2e-3
    # both kinds: ordinary photos as they are (white) and good photos degraded (white, 2 stops darker)
    mixed = source_crops(16, source="white", degraded_source="white").mean(dim=(1, 2, 3))
    grey = float(two_stops_darker(torch.tensor(1.0)))
    assert all(min(abs(m - 1.0), abs(m - grey)) < 2e-3 for m in mixed.tolist())
    assert 3 <= sum(abs(m - 1.0) < 2e-3 for m in mixed.tolist()) <= 13
    # a quarter degraded: of 64 crops, 16 expected (binomial sd 3.5)
    quarter = source_crops(64, source="white", degraded_source="white", degraded_share=0.25).mean(dim=(1, 2, 3))
    assert 6 <= sum(abs(m - grey) < 2e-3 for m in quarter.tolist()) <= 27
    AcceleratorState._reset_state(True)
    with pytest.raises(ConfigError, match="data.degraded_share"):
        build_config({"mode": "gan2way", "data": {"degraded_share": 1.0}})


# -- end to end on generated data ---------------------------------------------------------------


@pytest.fixture(scope="module")
def straight_2way(tmp_path_factory):
    run = tmp_path_factory.mktemp("gan2way") / "straight"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        run_training(["--config", str(SMOKE_2WAY), "--output-dir", str(run)])
    return run


def _check_log(run: Path, critics, generator_keys):
    rows = read_log(run)
    keys = set().union(*rows)
    expected = {f"{c}/{k}" for c in critics for k in CRITIC_KEYS} | set(generator_keys) | {"lr", "lr_critic"}
    assert expected <= keys, expected - keys
    lambdas = [row[f"{critics[0]}/lambda"] for row in rows if f"{critics[0]}/lambda" in row]
    assert len(lambdas) == 6 and all(v > 0 for v in lambdas)  # logged every critic step
    assert any("val/psnr" in row for row in rows)
    return rows


def test_smoke_gan1way(tmp_path):
    run = tmp_path / "run"
    run_training(["--config", str(SMOKE_1WAY), "--output-dir", str(run)])
    generator = load_generator(run)
    assert isinstance(generator, DPEGenerator) and not generator.individual_bn
    assert not (run / "generator_inverse").exists()
    _check_log(run, ["D_Y"], GENERATOR_KEYS_1WAY)
    assert "gan1way" in (run / "generator" / "README.md").read_text()


def test_smoke_gan2way(straight_2way):
    run = straight_2way
    for name in ("generator", "generator_inverse"):
        model = load_generator(run / name)
        assert isinstance(model, DPEGenerator) and model.individual_bn
    _check_log(run, ["D_Y", "D_X"], GENERATOR_KEYS_2WAY)
    assert sorted(p.name for p in (run / "images").glob("*.png")) == ["step_00000003.png", "step_00000006.png"]
    assert list((run / "tensorboard").rglob("events.out.tfevents*"))
    assert len(digests(run)) == 1


def test_resume_is_exact_and_keeps_the_lambda_state(straight_2way, tmp_path):
    split = tmp_path / "split"
    run_training(["--config", str(SMOKE_2WAY), "--output-dir", str(split), "--set", "stop_at=3"])
    assert not (split / "generator").exists()
    run_training(["--config", str(SMOKE_2WAY), "--output-dir", str(split), "--resume"])
    assert digests(split) == digests(straight_2way)
    # every logged value after the resume, the A-WGAN window's running mean included, is the
    # straight run's: the controllers' state came back from the checkpoint
    straight, resumed = without_time(read_log(straight_2way)), without_time(read_log(split))
    assert resumed == straight
    first = next(row for row in resumed if row["step"] == 4)
    assert first["D_Y/moving_average"] != first["D_Y/grad_norm"]  # the window holds steps 1-4


def test_g_y_starts_from_inverse_init_from(tmp_path):
    torch.manual_seed(3)
    start = DPEGenerator(width=0.25, init_scale=None)  # random weights: far from the identity
    start.save_pretrained(tmp_path / "inverse")
    AcceleratorState._reset_state(True)
    try:
        config = build_config({"mode": "gan2way", "model": {"width": 0.25, "inverse_init_from": str(tmp_path / "inverse")},
                               "gan": {"critic_width": 0.25}})
        task = GANTask(config, Accelerator(cpu=True), with_data=False)
    finally:
        AcceleratorState._reset_state(True)
    g_x, g_y = (g.eval() for g in task.raw_generators)
    x = batch(5)
    with torch.no_grad():
        expected = start.eval()(x)
        torch.testing.assert_close(g_y(x, bn_set=0), expected)
        torch.testing.assert_close(g_y(x, bn_set=1), expected)
        assert (g_x(x, bn_set=0) - expected).abs().max() > 1e-2  # G_X is not given those weights


def test_frozen_bn_fine_tunes_with_the_running_statistics(make_task):
    task = make_task("gan2way", frozen_bn=True)
    g_x = task.raw_generators[0]
    buffers = [b.clone() for g in task.raw_generators for b in g.buffers()]
    x = batch(9)
    with torch.no_grad():
        as_enhancing = g_x.eval()(x, bn_set=0)
        g_x.train()
        assert torch.equal(g_x(x, bn_set=0), as_enhancing)  # train mode normalises as eval does
    before = snapshot(task.raw_generators)
    task.generator_step(batch(10), batch(11))
    assert any(not torch.equal(a, b) for a, b in zip(before, snapshot(task.raw_generators)))  # weights moved
    for a, b in zip(buffers, (b for g in task.raw_generators for b in g.buffers())):
        assert torch.equal(a, b)  # running statistics did not

    plain = make_task("gan2way")
    with torch.no_grad():
        plain.raw_generators[0].train()
        assert not torch.equal(plain.raw_generators[0](x, bn_set=0), plain.raw_generators[0].eval()(x, bn_set=0))


@pytest.mark.parametrize("mode", ["gan1way", "gan2way"])
def test_identity_to_start_holds_the_generators_to_where_they_started(make_task, mode):
    held_to_start = make_task(mode, identity_to="start", frozen_bn=True)
    first = held_to_start.generator_step(batch(12), batch(13))
    assert first["G/identity"] == 0.0  # not moved yet: each output is its start's
    second = held_to_start.generator_step(batch(12), batch(13))
    assert second["G/identity"] > 0.0
    held_to_input = make_task(mode, frozen_bn=True)
    assert held_to_input.generator_step(batch(12), batch(13))["G/identity"] > 0.0
