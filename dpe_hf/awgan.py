"""A-WGAN: the adaptive gradient-penalty weight of the Deep Photo Enhancer (CVPR 2018).

The critic minimises ``E[D(fake)] - E[D(real)] + lambda * P`` where ``P`` is the one-sided
penalty of :func:`dpe_hf.losses.gradient_penalty`. :class:`AdaptiveLambda` owns ``lambda``
and is told, after every critic step, the batch's mean gradient norm (and the raw penalty
``P``). Three rules:

``"paper"`` (Sec. 5 of the paper)
    Keep the gradient norms of the last ``window`` (50) critic iterations. Once the window
    is full its mean is compared with the bounds after every iteration: above ``upper``
    (1.05) lambda doubles, below ``lower`` (1.001) lambda halves. **After every change the
    window is emptied**, so the next decision is taken on ``window`` norms that were all
    measured under the new lambda; while nothing changes the window keeps sliding and the
    test runs every iteration.

    Why: the norm reacts to a new lambda only through the critic's optimisation, so a window
    that still holds pre-change norms says nothing about the new lambda. Testing a sliding
    window every iteration without a reset would double (or halve) lambda on up to
    ``window`` consecutive iterations from the same stale evidence, i.e. by up to 2**50,
    straight into the clamp: an unstable bang-bang controller. With the reset, lambda moves
    by at most one factor of 2 per ``window`` iterations, and each move is justified by
    fresh measurements; when it is already good it is re-checked every iteration so drift
    is caught without delay.

``"released"`` (the authors' TensorFlow code)
    ``lambda0 = 10``; after every critic step ``mvavg = ema * mvavg + (1 - ema) * P`` with
    ``P`` the raw (unscaled) penalty. If ``mvavg > threshold`` (0.05) and no cooldown is
    running, lambda doubles, ``mvavg`` resets to 0 and a cooldown of ``cooldown`` (50)
    critic steps starts, the firing step counting as its first: after a doubling at update
    ``k`` the next one can come at update ``k + cooldown`` at the earliest, as in the
    authors' code (``netD_update_buffer``). ``mvavg`` keeps being updated during the
    cooldown. Lambda never decreases.

``"fixed"``
    Lambda never changes: plain WGAN-GP through the same interface.

Every rule clamps lambda to ``[min_lambda, max_lambda]``. Non-finite inputs (a NaN/inf
gradient norm or penalty from a diverged step) are counted in ``skipped`` and otherwise
ignored, so one bad batch cannot poison the window or the moving average.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

__all__ = ["AdaptiveLambda", "RULES"]

RULES = ("paper", "released", "fixed")

_CONFIG_KEYS = (
    "rule",
    "lambda0",
    "window",
    "upper",
    "lower",
    "ema",
    "threshold",
    "cooldown",
    "min_lambda",
    "max_lambda",
)


class AdaptiveLambda:
    """Controller of the gradient-penalty weight lambda (see the module docstring).

    Usage, once per critic step::

        penalty, norm = gradient_penalty(critic, real, fake)
        loss_d = wgan_critic_loss(d_real, d_fake) + ctrl.value * penalty
        ...  # backward, optimiser step
        ctrl.update(norm.item(), penalty.item())

    Args:
        rule: ``"paper"``, ``"released"`` or ``"fixed"``.
        lambda0: initial lambda (clamped into the limits).
        window: sliding-window length of the "paper" rule (critic iterations).
        upper, lower: bounds on the windowed mean gradient norm ("paper").
        ema: decay of the penalty moving average ("released").
        threshold: the moving average above which lambda doubles ("released").
        cooldown: critic steps after a doubling during which the "released" rule cannot fire.
        min_lambda, max_lambda: limits lambda is clamped to.
    """

    def __init__(
        self,
        rule: str = "paper",
        lambda0: float = 10.0,
        window: int = 50,
        upper: float = 1.05,
        lower: float = 1.001,
        ema: float = 0.99,
        threshold: float = 0.05,
        cooldown: int = 50,
        min_lambda: float = 1e-3,
        max_lambda: float = 1e6,
    ) -> None:
        self._configure(
            rule=rule,
            lambda0=lambda0,
            window=window,
            upper=upper,
            lower=lower,
            ema=ema,
            threshold=threshold,
            cooldown=cooldown,
            min_lambda=min_lambda,
            max_lambda=max_lambda,
        )
        self._value = self._clamp(float(lambda0))
        self._norms: deque[float] = deque(maxlen=self.window)
        self._mvavg = 0.0
        self._cooldown_left = 0
        self._step = 0
        self._skipped = 0
        self._changes = 0

    # -- configuration -----------------------------------------------------------------

    def _configure(self, **cfg: Any) -> None:
        rule = cfg["rule"]
        if rule not in RULES:
            raise ValueError(f"AdaptiveLambda: rule must be one of {RULES}, got {rule!r}")
        window, cooldown = int(cfg["window"]), int(cfg["cooldown"])
        if window < 1:
            raise ValueError(f"AdaptiveLambda: window must be >= 1, got {window}")
        if cooldown < 0:
            raise ValueError(f"AdaptiveLambda: cooldown must be >= 0, got {cooldown}")
        min_l, max_l = float(cfg["min_lambda"]), float(cfg["max_lambda"])
        if not (0.0 < min_l <= max_l and math.isfinite(max_l)):
            raise ValueError(f"AdaptiveLambda: need 0 < min_lambda <= max_lambda < inf, got [{min_l}, {max_l}]")
        lower, upper = float(cfg["lower"]), float(cfg["upper"])
        if not lower < upper:
            raise ValueError(f"AdaptiveLambda: need lower < upper, got lower={lower}, upper={upper}")
        ema = float(cfg["ema"])
        if not 0.0 <= ema < 1.0:
            raise ValueError(f"AdaptiveLambda: ema must be in [0, 1), got {ema}")
        lambda0 = float(cfg["lambda0"])
        if not (lambda0 > 0.0 and math.isfinite(lambda0)):
            raise ValueError(f"AdaptiveLambda: lambda0 must be positive and finite, got {lambda0}")
        self.rule = rule
        self.lambda0 = lambda0
        self.window = window
        self.upper = upper
        self.lower = lower
        self.ema = ema
        self.threshold = float(cfg["threshold"])
        self.cooldown = cooldown
        self.min_lambda = min_l
        self.max_lambda = max_l

    def _clamp(self, value: float) -> float:
        return min(max(value, self.min_lambda), self.max_lambda)

    # -- public API ----------------------------------------------------------------------

    @property
    def value(self) -> float:
        """The current lambda (a Python float)."""
        return self._value

    @property
    def step(self) -> int:
        """How many updates have been received (skipped non-finite ones included)."""
        return self._step

    @property
    def moving_average(self) -> float:
        """The rule's current statistic: windowed mean gradient norm ("paper", "fixed";
        NaN while the window is empty) or the penalty moving average ("released")."""
        if self.rule == "released":
            return self._mvavg
        return self._window_mean()

    def _window_mean(self) -> float:
        return math.fsum(self._norms) / len(self._norms) if self._norms else math.nan

    def update(self, grad_norm: float, penalty: float | None = None) -> float:
        """Record one critic step and return the lambda to use for the next one.

        Args:
            grad_norm: the batch's mean gradient norm at the interpolated points.
            penalty: the raw (unscaled) penalty ``P`` of the step; required by "released",
                ignored by the other rules.
        """
        grad_norm = float(grad_norm)
        if self.rule == "released" and penalty is None:
            raise ValueError("AdaptiveLambda(rule='released').update needs the raw penalty")
        self._step += 1
        if not math.isfinite(grad_norm) or (penalty is not None and not math.isfinite(float(penalty))):
            self._skipped += 1
            return self._value

        self._norms.append(grad_norm)
        if self.rule == "paper":
            self._update_paper()
        elif self.rule == "released":
            self._update_released(float(penalty))  # type: ignore[arg-type]
        return self._value

    def _update_paper(self) -> None:
        if len(self._norms) < self.window:
            return
        mean = self._window_mean()
        if mean > self.upper:
            new = self._clamp(self._value * 2.0)
        elif mean < self.lower:
            new = self._clamp(self._value * 0.5)
        else:
            return
        if new != self._value:
            self._value = new
            self._changes += 1
            self._norms.clear()

    def _update_released(self, penalty: float) -> None:
        # Same order as the authors' code: update the average, test (only when no cooldown
        # runs), then count the cooldown down -- the firing update included -- so two
        # doublings are at least `cooldown` updates apart.
        self._mvavg = self.ema * self._mvavg + (1.0 - self.ema) * penalty
        if self._cooldown_left == 0 and self._mvavg > self.threshold:
            new = self._clamp(self._value * 2.0)
            if new != self._value:
                self._value = new
                self._changes += 1
            self._mvavg = 0.0
            self._cooldown_left = self.cooldown
        if self._cooldown_left > 0:
            self._cooldown_left -= 1

    # -- persistence / logging -----------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue identically, as plain Python types (JSON-safe)."""
        return {
            "config": {k: getattr(self, k) for k in _CONFIG_KEYS},
            "lambda": self._value,
            "window": list(self._norms),
            "mvavg": self._mvavg,
            "cooldown_left": self._cooldown_left,
            "step": self._step,
            "skipped": self._skipped,
            "changes": self._changes,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`, hyper-parameters included (the checkpoint wins over
        the constructor arguments, so a resumed run continues exactly)."""
        try:
            cfg = dict(state["config"])
            self._configure(**{k: cfg[k] for k in _CONFIG_KEYS})
            value = float(state["lambda"])
            norms = [float(v) for v in state["window"]]
            mvavg = float(state["mvavg"])
            cooldown_left = int(state["cooldown_left"])
            step = int(state["step"])
            skipped = int(state.get("skipped", 0))
            changes = int(state.get("changes", 0))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"AdaptiveLambda.load_state_dict: malformed state ({exc!r})") from exc
        if len(norms) > self.window:
            raise ValueError(
                f"AdaptiveLambda.load_state_dict: {len(norms)} window entries for a window of {self.window}"
            )
        self._value = self._clamp(value)
        self._norms = deque(norms, maxlen=self.window)
        self._mvavg = mvavg
        self._cooldown_left = cooldown_left
        self._step = step
        self._skipped = skipped
        self._changes = changes

    def log_dict(self) -> dict[str, float]:
        """Scalars for a logger: ``lambda``, ``moving_average`` (the rule's statistic, see
        :attr:`moving_average`), ``grad_norm_avg`` (mean of the stored window of gradient
        norms, NaN when empty), ``penalty_mvavg`` ("released" rule only), ``lambda_changes``."""
        out = {
            "lambda": self._value,
            "moving_average": self.moving_average,
            "grad_norm_avg": self._window_mean(),
            "lambda_changes": float(self._changes),
        }
        if self.rule == "released":
            out["penalty_mvavg"] = self._mvavg
        return out

    def __repr__(self) -> str:
        return f"AdaptiveLambda(rule={self.rule!r}, value={self._value:g}, step={self._step})"
