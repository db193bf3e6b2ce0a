"""Training faults (issue 8): non-finite losses skip the step and, K in a row, restore the last
good checkpoint; a SIGKILL at any moment leaves `latest` naming a complete checkpoint; resuming
after a kill reaches the same weights as an uninterrupted run.

NaN losses are injected with the testing hook `DPE_INJECT_NAN_STEPS` (dpe_hf.training.guards).
The two-process skip is in tests/slow/test_multiprocess_training.py, the SIGKILLs at random
moments in tests/slow/test_sigkill.py.
"""

import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import REPO, SMOKE, check_latest, digests, read_log, run_training, training_env

pytestmark = pytest.mark.usefixtures("one_thread")


# -- non-finite losses ---------------------------------------------------------------------------


def test_nonfinite_loss_skips_the_step_and_is_logged(tmp_path, monkeypatch):
    run = tmp_path / "run"
    monkeypatch.setenv("DPE_INJECT_NAN_STEPS", "3")
    result = run_training(["--config", str(SMOKE), "--output-dir", str(run), "--set", "log_every=1"])
    assert "step 3: non-finite loss, update skipped (1 in a row)" in result.stdout
    rows = [row for row in read_log(run) if "loss/mse" in row]
    assert [row["step"] for row in rows] == [1, 2, 3, 4, 5, 6]  # no restore: 1 < max_bad_steps
    assert rows[2]["skipped/nonfinite"] == 1 and rows[2]["loss/mse"] == "nan"
    assert not any("skipped/nonfinite" in row for row in rows if row["step"] != 3)


@pytest.mark.parametrize("config", ["smoke.yaml", "smoke-gan1way.yaml"])
def test_max_bad_steps_restores_the_last_good_checkpoint(tmp_path, monkeypatch, config):
    """2 bad steps in a row restore step 4's checkpoint; the injection fires once, so the rerun
    of steps 5..8 is clean and ends exactly where an undisturbed run ends."""
    config = REPO / "configs" / config
    common = ["--config", str(config), "--set", "steps=8", "--set", "save_every=2", "--set", "val_every=0"]
    straight, faulty = tmp_path / "straight", tmp_path / "faulty"
    run_training([*common, "--output-dir", str(straight)])
    monkeypatch.setenv("DPE_INJECT_NAN_STEPS", "5,6")
    result = run_training([*common, "--output-dir", str(faulty), "--set", "max_bad_steps=2"])
    assert "restored" in result.stdout and "step_00000004" in result.stdout
    skipped = [row["step"] for row in read_log(faulty) if row.get("skipped/nonfinite")]
    assert skipped == [5, 6]
    assert digests(faulty) == digests(straight)


def test_bad_steps_without_a_checkpoint_stop_with_a_clear_error(tmp_path):
    cmd = [sys.executable, str(REPO / "train_accelerate.py"), "--config", str(SMOKE), "--output-dir",
           str(tmp_path / "run"), "--set", "save_every=0", "--set", "max_bad_steps=2"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO,
                            env=training_env(DPE_INJECT_NAN_STEPS="1,2"))
    assert result.returncode != 0
    assert "2 non-finite losses in a row and no checkpoint" in result.stderr


def test_gan_steps_with_nonfinite_losses_change_nothing():
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from dpe_hf.training.config import build_config
    from dpe_hf.training.gan import GANTask

    AcceleratorState._reset_state(True)
    accelerator = Accelerator(cpu=True)
    config = build_config({"mode": "gan2way", "seed": 0, "lr": 1e-3, "model": {"width": 0.25},
                           "gan": {"critic_width": 0.25}})
    torch.manual_seed(0)
    task = GANTask(config, accelerator, with_data=False)
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)

    def state():
        return [p.detach().clone() for m in (*task.raw_generators, *task.raw_critics) for p in m.parameters()]

    before, lambdas = state(), [c.value for c in task.controllers.values()]
    values = task.critic_step(x, y, inject_nan=True)
    assert values["skipped/nonfinite"] == 1
    assert all(torch.equal(a, b) for a, b in zip(before, state()))
    assert [c.value for c in task.controllers.values()] == lambdas and not task.d_opt.state
    values = task.generator_step(x * float("nan"), y)
    assert values["skipped/nonfinite"] == 1
    assert all(torch.equal(a, b) for a, b in zip(before, state())) and not task.g_opt.state
    assert "skipped/nonfinite" not in task.critic_step(x, y)  # and a clean step trains
    assert not all(torch.equal(a, b) for a, b in zip(before, state()))


# -- SIGKILL -------------------------------------------------------------------------------------


def test_resume_after_sigkill_gives_the_same_weights_as_one_run(tmp_path):
    steps = 24
    common = ["--config", str(SMOKE), "--set", f"steps={steps}", "--set", "save_every=1",
              "--set", "val_every=0", "--set", "log_every=1000"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run_training([*common, "--output-dir", str(straight)])
    proc = subprocess.Popen([sys.executable, str(REPO / "train_accelerate.py"), *common, "--output-dir",
                             str(killed)], cwd=REPO, env=training_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (killed / "checkpoints" / "latest").is_file() and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(random.Random(3).uniform(0.0, 0.5))
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    step = check_latest(killed)
    assert step is not None and 0 < step < steps and not (killed / "digests").exists()
    run_training([*common, "--output-dir", str(killed), "--resume"])
    assert digests(killed) == digests(straight)
