"""Training faults (issue 8): non-finite losses skip the step and, K in a row, restore the last
good checkpoint; a SIGKILL at any moment leaves `latest` naming a complete checkpoint; resuming
after a kill reaches the same weights as an uninterrupted run.

NaN losses are injected with the testing hook `DPE_INJECT_NAN_STEPS` (dpe_hf.training.guards).
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import REPO, SMOKE, digests, run_training

CHECKPOINT_FILES = ("model.safetensors", "optimizer.bin", "random_states_0.pkl", "process_0.json")


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    # the training subprocesses inherit it: many threads on a small CPU make torch far slower
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("DPE_INJECT_NAN_STEPS", raising=False)
    monkeypatch.delenv("DPE_INJECT_NAN_RANK", raising=False)


def read_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def env(**extra) -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1", **extra}


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


@pytest.mark.slow
def test_two_processes_skip_together_when_one_has_a_nonfinite_loss(tmp_path, monkeypatch):
    """Only process 1's losses are NaN (steps 5 and 6): process 0 must skip and restore too
    (else the collectives hang or the weights part ways)."""
    run = tmp_path / "run"
    monkeypatch.setenv("DPE_INJECT_NAN_STEPS", "5,6")
    monkeypatch.setenv("DPE_INJECT_NAN_RANK", "1")
    result = run_training(["--config", str(SMOKE), "--output-dir", str(run), "--set", "steps=8", "--set",
                           "save_every=2", "--set", "val_every=0", "--set", "max_bad_steps=2"], processes=2)
    assert "restored" in result.stdout
    assert [row["step"] for row in read_log(run) if row.get("skipped/nonfinite")] == [5, 6]  # process 0's log
    found = digests(run)
    assert len(found) == 2 and found[0] == found[1]


def test_bad_steps_without_a_checkpoint_stop_with_a_clear_error(tmp_path):
    cmd = [sys.executable, str(REPO / "train_accelerate.py"), "--config", str(SMOKE), "--output-dir",
           str(tmp_path / "run"), "--set", "save_every=0", "--set", "max_bad_steps=2"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO,
                            env=env(DPE_INJECT_NAN_STEPS="1,2"))
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


def check_latest(run: Path) -> int | None:
    """The step of the checkpoint `latest` names, after checking that it is complete and loads."""
    from safetensors.torch import load_file

    from dpe_hf.training.checkpoints import latest_checkpoint

    path = latest_checkpoint(run)
    if path is None:
        assert not (run / "checkpoints" / "latest").exists(), "latest names a missing folder"
        return None
    for name in CHECKPOINT_FILES:
        assert (path / name).is_file(), f"{path} lacks {name}"
    assert load_file(path / "model.safetensors")
    assert torch.load(path / "optimizer.bin", weights_only=False)["state"] is not None
    torch.load(path / "random_states_0.pkl", weights_only=False)
    step = json.loads((path / "process_0.json").read_text())["step"]
    assert path.name == f"step_{step:08d}"
    return step


def _kill_rounds(run: str, rounds: int, seed: int) -> None:
    """Run in a fresh interpreter (see the test): torch is imported once, then each round forks a
    training process (`--resume`, a checkpoint every step) and SIGKILLs it after a random delay,
    then checks `latest`. Prints the steps seen, as JSON, on the last line."""
    import datasets  # noqa: F401 - imported once here, not in every child
    import torch._dynamo  # noqa: F401 - (the optimizer's first use imports it: seconds)
    import torch.utils.tensorboard  # noqa: F401

    import dpe_hf.training.supervised  # noqa: F401
    from dpe_hf.training.cli import main

    rng = random.Random(seed)
    args = ["--config", str(SMOKE), "--output-dir", run, "--resume", "--set", "steps=100000",
            "--set", "save_every=1", "--set", "val_every=0", "--set", "log_every=1000"]
    steps = []
    for _ in range(rounds):
        pid = os.fork()
        if pid == 0:  # the child: train until killed
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            try:
                main(args)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.3, 1.3))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        steps.append(check_latest(Path(run)))
    print(json.dumps(steps))


@pytest.mark.slow
def test_sigkill_at_random_times_never_corrupts_latest(tmp_path):
    run = tmp_path / "run"
    code = f"import sys; sys.path[:0] = [{str(Path(__file__).parent)!r}, {str(REPO / 'tests')!r}]; import test_faults; " \
           f"test_faults._kill_rounds({str(run)!r}, 20, 8)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240,
                            cwd=REPO, env=env())
    assert result.returncode == 0, result.stderr[-3000:]
    steps = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(steps) == 20
    seen = [s for s in steps if s is not None]
    assert seen and seen[-1] > 0
    assert steps[steps.index(seen[0]):] == seen, "latest vanished after a checkpoint existed"
    assert seen == sorted(seen), "latest went backwards"
    # and the last one resumes: one more step, to the end
    last = check_latest(run)
    run_training(["--config", str(SMOKE), "--output-dir", str(run), "--resume", "--set", f"steps={last + 1}",
                  "--set", "val_every=0"])
    assert (run / "generator" / "model.safetensors").is_file()


def test_resume_after_sigkill_gives_the_same_weights_as_one_run(tmp_path):
    steps = 24
    common = ["--config", str(SMOKE), "--set", f"steps={steps}", "--set", "save_every=1",
              "--set", "val_every=0", "--set", "log_every=1000"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run_training([*common, "--output-dir", str(straight)])
    proc = subprocess.Popen([sys.executable, str(REPO / "train_accelerate.py"), *common, "--output-dir",
                             str(killed)], cwd=REPO, env=env(), stdout=subprocess.DEVNULL,
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
