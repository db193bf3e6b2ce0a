"""Fixtures shared by several test modules (plain helpers are in helpers.py).

The tests mirror the package: tests/ops/test_guided.py tests dpe_hf/ops/guided.py, and
tests/test_hub.py the top-level dpe_hf/hub.py (test_app.py: app.py). tests/slow/ holds the slow
ones (several processes, a browser, accelerate launch), each marked `slow`:
`python -m pytest -m "not slow"` leaves them out.
"""

from __future__ import annotations

import os
from pathlib import Path

# No test reaches the internet: huggingface_hub and datasets read these when first imported,
# which is after this file; subprocesses inherit them. The tests of an unreachable hub unset
# HF_HUB_OFFLINE and point HF_ENDPOINT at a closed port of this machine instead.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from dpe_hf.models.generator import DPEGenerator  # noqa: E402


@pytest.fixture
def one_thread(monkeypatch):
    """Training subprocesses inherit the environment: many threads on a small CPU make torch far
    slower. No NaN injection (dpe_hf.training.guards) leaks in from the caller's environment."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("DPE_INJECT_NAN_STEPS", raising=False)
    monkeypatch.delenv("DPE_INJECT_NAN_RANK", raising=False)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A saved tiny random generator (width 0.25, seed 0): each test module gets its own copy."""
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    DPEGenerator(width=0.25).save_pretrained(folder)
    return folder
