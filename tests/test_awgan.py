"""Tests of the A-WGAN lambda controller (dpe_hf.awgan)."""

from __future__ import annotations

import copy
import json
import math
import random

import pytest

from dpe_hf.awgan import AdaptiveLambda
from helpers import REPO


def feed(ctrl: AdaptiveLambda, norms, penalty=None) -> list[float]:
    return [ctrl.update(n, penalty if penalty is not None else max(0.0, n - 1.0)) for n in norms]


# -- "paper" rule ------------------------------------------------------------------------


def test_paper_waits_for_a_full_window():
    ctrl = AdaptiveLambda("paper", lambda0=10.0, window=50)
    values = feed(ctrl, [2.0] * 49)
    assert values == [10.0] * 49
    assert ctrl.update(2.0) == 20.0


def test_paper_doubles_once_per_window_while_norm_stays_high():
    ctrl = AdaptiveLambda("paper", lambda0=1.0, window=50)
    values = feed(ctrl, [1.5] * 200)
    # one doubling per 50 iterations (the window restarts after each change)
    assert values[49] == 2.0 and values[48] == 1.0
    assert values[99] == 4.0 and values[98] == 2.0
    assert values[-1] == 16.0
    assert sorted(set(values)) == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_paper_halves_while_norm_stays_low():
    ctrl = AdaptiveLambda("paper", lambda0=8.0, window=10)
    values = feed(ctrl, [0.9] * 30)
    assert values[9] == 4.0 and values[19] == 2.0 and values[29] == 1.0


def test_paper_stays_still_between_bounds():
    ctrl = AdaptiveLambda("paper", lambda0=3.0, window=10)
    rng = random.Random(0)
    values = feed(ctrl, [rng.uniform(1.002, 1.049) for _ in range(500)])
    assert set(values) == {3.0}


def test_paper_uses_the_window_mean_not_single_values():
    # single values far outside the bounds, mean inside: no change
    ctrl = AdaptiveLambda("paper", lambda0=3.0, window=4)
    assert set(feed(ctrl, [0.5, 1.55, 0.5, 1.55] * 20)) == {3.0}


def test_paper_sliding_window_reacts_to_drift_without_waiting():
    ctrl = AdaptiveLambda("paper", lambda0=1.0, window=10)
    feed(ctrl, [1.02] * 100)  # in band, window full
    assert ctrl.value == 1.0
    # window means: (9*1.02 + 1.2)/10 = 1.038 (in band), (8*1.02 + 2*1.2)/10 = 1.056 (above)
    values = feed(ctrl, [1.2] * 3)
    assert values == [1.0, 2.0, 2.0]
    assert ctrl.state_dict()["window"] == [1.2]  # restarted after the change


def test_paper_respects_limits():
    hi = AdaptiveLambda("paper", lambda0=10.0, window=2, min_lambda=0.5, max_lambda=100.0)
    assert max(feed(hi, [5.0] * 1000)) == 100.0 and hi.value == 100.0
    lo = AdaptiveLambda("paper", lambda0=10.0, window=2, min_lambda=0.5, max_lambda=100.0)
    assert min(feed(lo, [0.0] * 1000)) == 0.5 and lo.value == 0.5
    assert AdaptiveLambda("paper", lambda0=1e9, max_lambda=1e6).value == 1e6


def test_non_finite_inputs_are_skipped():
    ctrl = AdaptiveLambda("paper", lambda0=1.0, window=3)
    feed(ctrl, [1.02, 1.02])
    assert ctrl.update(float("nan")) == 1.0
    assert ctrl.update(float("inf")) == 1.0
    assert ctrl.state_dict()["window"] == [1.02, 1.02]
    assert ctrl.state_dict()["skipped"] == 2 and ctrl.step == 4


# -- "released" rule ---------------------------------------------------------------------


def test_released_only_increases_and_respects_cooldown():
    ctrl = AdaptiveLambda("released", lambda0=10.0, cooldown=50, threshold=0.05, ema=0.99)
    values = [ctrl.update(3.0, 2.0) for _ in range(400)]  # P=2: mvavg crosses 0.05 at step 3
    assert all(b >= a for a, b in zip(values, values[1:]))
    change_steps = [i for i in range(1, len(values)) if values[i] != values[i - 1]]
    first = next(i for i, v in enumerate(values) if v != 10.0)
    assert first == 2  # mvavg: 0.02, 0.0398, 0.0594 > 0.05
    assert values[first] == 20.0
    # doublings are exactly `cooldown` updates apart: mvavg (reset to 0 at each doubling)
    # is back above the threshold long before the cooldown ends
    assert change_steps[0] == first and len(change_steps) == 8
    assert all(b - a == 50 for a, b in zip(change_steps, change_steps[1:]))
    # a threshold crossed only after the cooldown: mvavg restarts from 0 and P=0.06 needs
    # 0.06 * (1 - 0.99**n) > 0.05, i.e. n = 179 updates from the start and after each doubling
    slow = AdaptiveLambda("released", lambda0=1.0, cooldown=50)
    v = [slow.update(1.06, 0.06) for _ in range(400)]
    steps = [i for i in range(1, len(v)) if v[i] != v[i - 1]]
    assert steps == [178, 357]
    # and it never halves, even when the penalty vanishes
    ctrl2 = AdaptiveLambda("released", lambda0=10.0)
    assert set(ctrl2.update(0.2, 0.0) for _ in range(500)) == {10.0}


def test_released_moving_average_and_reset():
    ctrl = AdaptiveLambda("released", lambda0=10.0, threshold=0.05)
    ctrl.update(1.01, 0.01)
    assert ctrl.moving_average == pytest.approx(0.0001)
    for _ in range(2):
        ctrl.update(10.0, 3.0)
    assert ctrl.value == 20.0 and ctrl.moving_average == 0.0
    assert ctrl.log_dict()["penalty_mvavg"] == 0.0


def test_released_requires_penalty_and_is_clamped():
    ctrl = AdaptiveLambda("released", lambda0=10.0, max_lambda=40.0, cooldown=0)
    with pytest.raises(ValueError):
        ctrl.update(2.0)
    for _ in range(200):
        ctrl.update(5.0, 4.0)
    assert ctrl.value == 40.0


# -- "fixed" rule --------------------------------------------------------------------------


def test_fixed_never_changes():
    ctrl = AdaptiveLambda("fixed", lambda0=0.1)
    rng = random.Random(1)
    assert set(ctrl.update(rng.uniform(0, 100), rng.uniform(0, 100)) for _ in range(1000)) == {0.1}
    assert ctrl.update(5.0) == 0.1  # penalty optional


# -- persistence / logging -----------------------------------------------------------------


@pytest.mark.parametrize("rule", ["paper", "released", "fixed"])
def test_state_dict_round_trip_continues_identically(rule):
    rng = random.Random(42)
    seq = [(n, max(0.0, n - 1.0)) for n in (rng.uniform(0.8, 1.6) for _ in range(1200))]
    kw = dict(lambda0=1.0, window=20, cooldown=30)

    ref = AdaptiveLambda(rule, **kw)
    ref_values = [ref.update(n, p) for n, p in seq]

    first = AdaptiveLambda(rule, **kw)
    for n, p in seq[:537]:
        first.update(n, p)
    state = json.loads(json.dumps(first.state_dict()))  # plain Python types only
    resumed = AdaptiveLambda(rule)  # default config: the checkpoint's config must win
    resumed.load_state_dict(copy.deepcopy(state))
    assert resumed.value == ref_values[536]
    rest = [resumed.update(n, p) for n, p in seq[537:]]
    assert rest == ref_values[537:]
    assert resumed.state_dict() == ref.state_dict()
    if rule != "fixed":
        assert len(set(ref_values)) > 1  # the sequence exercised the controller


def test_state_dict_contents_and_log_dict():
    ctrl = AdaptiveLambda("paper", lambda0=2.0, window=5)
    feed(ctrl, [1.2, 1.3])
    sd = ctrl.state_dict()
    assert sd["lambda"] == 2.0 and sd["window"] == [1.2, 1.3] and sd["step"] == 2
    assert {"mvavg", "cooldown_left", "config"} <= set(sd)
    log = ctrl.log_dict()
    assert log["lambda"] == 2.0 and log["moving_average"] == pytest.approx(1.25)
    assert math.isnan(AdaptiveLambda().log_dict()["grad_norm_avg"])
    with pytest.raises(ValueError):
        ctrl.load_state_dict({"lambda": 1.0})


@pytest.mark.parametrize(
    "kw",
    [
        dict(rule="nope"),
        dict(window=0),
        dict(lambda0=0.0),
        dict(lower=1.1, upper=1.05),
        dict(min_lambda=10.0, max_lambda=1.0),
        dict(ema=1.0),
    ],
)
def test_bad_config_raises(kw):
    with pytest.raises(ValueError):
        AdaptiveLambda(**kw)


def test_swissroll_benchmark_quick_runs(capsys):
    """benchmarks/awgan_swissroll.py --quick trains every method and prints its table."""
    import importlib.util
    import sys

    path = REPO / "benchmarks" / "awgan_swissroll.py"
    spec = importlib.util.spec_from_file_location("awgan_swissroll_bench", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.modules.pop(spec.name, None)
    assert mod.main(["--quick", "--no-plot", "--steps", "4", "--lambdas", "0.1", "100"]) == 0
    out = capsys.readouterr().out
    for method in ("awgan-paper", "awgan-released", "wgan-gp"):
        assert out.count(method) == 2
