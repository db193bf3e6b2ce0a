"""Training in two processes (accelerate launch, gloo on CPU): supervised and 2-way GAN runs end
with the same weights in both processes, and a non-finite loss in one process makes both skip and
restore together."""

import json
from pathlib import Path

import pytest

from helpers import REPO, SMOKE, digests, read_log, run_training

pytestmark = pytest.mark.usefixtures("one_thread")

SMOKE_2WAY = REPO / "configs" / "smoke-gan2way.yaml"


def two_process_run(config: Path, run: Path) -> dict:
    """Train `config` in two processes; both end with the same weights. Process 1's state at step 6."""
    run_training(["--config", str(config), "--output-dir", str(run)], processes=2)
    found = digests(run)
    assert len(found) == 2 and found[0] == found[1]
    return json.loads((run / "checkpoints" / "step_00000006" / "process_1.json").read_text())


@pytest.mark.slow
def test_supervised_two_processes_end_with_identical_weights(tmp_path):
    assert two_process_run(SMOKE, tmp_path / "run")["step"] == 6


@pytest.mark.slow
def test_gan2way_two_processes_end_with_identical_weights(tmp_path):
    run = tmp_path / "run"
    state = two_process_run(SMOKE_2WAY, run)
    assert state["step"] == 6 and set(state["data"]) == {"source", "target"}
    lambdas = [row["D_X/lambda"] for row in read_log(run) if "D_X/lambda" in row]
    assert len(lambdas) == 6


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
