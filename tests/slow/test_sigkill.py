"""SIGKILLs at random moments of a training run never leave `latest` naming a broken or missing
checkpoint, `latest` never goes backwards, and the last one resumes (issue 8)."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import REPO, SMOKE, check_latest, run_training, training_env

pytestmark = pytest.mark.usefixtures("one_thread")


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
    code = f"import sys; sys.path[:0] = [{str(Path(__file__).parent)!r}, {str(REPO / 'tests')!r}]; import test_sigkill; " \
           f"test_sigkill._kill_rounds({str(run)!r}, 20, 8)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240,
                            cwd=REPO, env=training_env())
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
