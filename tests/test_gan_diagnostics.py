"""benchmarks/gan_diagnostics.py: the gain-or-lift fit and the parameter groups put back."""

import importlib

import pytest
import torch

from dpe_hf.models.generator import DPEGenerator

diagnostics = importlib.import_module("benchmarks.gan_diagnostics")


def photos():
    torch.manual_seed(0)
    return [torch.rand(1, 3, 32, 48) * 0.8 for _ in range(3)]


def test_tone_change_splits_a_tone_curve_into_offset_and_slope():
    images = photos()
    # out = 0.5 x + 0.1 (never clipped here): luma change = 0.1 - 0.5 luma
    brightness, contrast, shadows, offset, slope = diagnostics.tone_change(lambda v: 0.5 * v + 0.1, images)
    assert offset == pytest.approx(0.1, abs=1e-5) and slope == pytest.approx(-0.5, abs=1e-5)
    luma = [0.299 * x[0, 0] + 0.587 * x[0, 1] + 0.114 * x[0, 2] for x in images]
    assert brightness == pytest.approx(sum(float((0.5 * y + 0.1).mean()) for y in luma) / 3, abs=1e-6)
    assert contrast == pytest.approx(sum(float((0.5 * y).std()) for y in luma) / 3, abs=1e-6)
    assert shadows == 0.0  # every output luma is at least 0.1
    assert diagnostics.tone_change(lambda v: v, images)[3:] == pytest.approx([0.0, 0.0], abs=1e-6)


def test_each_group_put_back_restores_exactly_its_parameters():
    start, run = DPEGenerator(width=0.25, individual_bn=True), DPEGenerator(width=0.25, individual_bn=True)
    with torch.no_grad():
        for p in run.parameters():
            p.add_(1.0)
        for name, b in run.named_buffers():
            if b.is_floating_point():
                b.add_(1.0)
    start_state = start.state_dict()
    restored_somewhere = set()
    for group in (*diagnostics.GROUPS, "BN"):
        restored = diagnostics.with_group_restored(run, start_state, group).state_dict()
        back = {k for k, v in restored.items() if torch.equal(v, start_state[k]) and v.is_floating_point()}
        assert back and not back & restored_somewhere  # the groups do not overlap
        restored_somewhere |= back
        assert all(torch.equal(restored[k], run.state_dict()[k]) for k in restored if k not in back)
    floating = {k for k, v in start_state.items() if v.is_floating_point()}
    assert restored_somewhere == floating  # and together they cover the whole generator
    assert any(".bns." in k for k in restored_somewhere)
