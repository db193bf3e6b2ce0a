"""`accelerate launch -m dpe_hf.cli enhance` splits a folder across two processes: every photo is
written once, as a plain run writes it, and a bad photo in one share fails the launch without
redoing the rest."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from dpe_hf.imageio import read_image
from dpe_hf.inference import enhance
from dpe_hf.models.generator import DPEGenerator
from helpers import REPO, error_lines, photo, save


def _launch(args: list[str], processes: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "dpe_hf.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=REPO)


def _summaries(output: str) -> list[str]:
    return [line for line in output.splitlines() if " written" in line and line.split()[0].isdigit()]


@pytest.mark.slow
def test_accelerate_launch_splits_the_photos_across_processes(tmp_path, model):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(5):
        save(folder / f"p{i}.png", photo(24, 32, seed=i))
    out = tmp_path / "out"
    done = _launch(["enhance", str(folder), "-o", str(out), "--model", str(model)])
    assert done.returncode == 0, done.stderr[-3000:]
    lines = _summaries(done.stdout + done.stderr)
    assert len(lines) == 2, lines  # one per process
    assert sum(int(line.split()[0]) for line in lines) == 5  # every photo once
    assert sorted(p.name for p in out.iterdir()) == [f"p{i}_enhanced.png" for i in range(5)]
    for i in range(5):  # each output is the one a plain run writes
        assert np.array_equal(read_image(out / f"p{i}_enhanced.png")[0],
                              enhance(DPEGenerator.from_pretrained(str(model)), photo(24, 32, seed=i)))

    # a bad photo in one process's share: the launch fails, the rest is skipped, nothing redone
    (folder / "p9.png").write_bytes(b"not a png")
    again = _launch(["enhance", str(folder), "-o", str(out), "--model", str(model), "--skip-existing"])
    assert again.returncode != 0
    lines = _summaries(again.stdout + again.stderr)
    assert len(lines) == 2 and all(line.startswith("0 written") for line in lines), lines
    assert sum(int(line.split("skipped")[0].split()[-1]) for line in lines if "skipped" in line) == 5
    assert len(error_lines(again.stderr)) == 1
