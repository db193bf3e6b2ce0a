"""Fixtures shared by several test modules (plain helpers are in helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dpe_hf.models.generator import DPEGenerator


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A saved tiny random generator (width 0.25, seed 0): each test module gets its own copy."""
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    DPEGenerator(width=0.25).save_pretrained(folder)
    return folder
