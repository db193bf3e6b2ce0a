"""Progress of a training run on the main process: a tqdm bar with ETA on a terminal, one
plain line every `log_every` steps elsewhere (a log file, CI), where a bar's redraws are noise."""

from __future__ import annotations

import os
import sys
import time

from tqdm.auto import tqdm


def interactive(stream) -> bool:
    """True when `stream` is a terminal and not CI (CI systems fake a terminal for some tools)."""
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def headline(values: dict[str, float]) -> dict[str, float]:
    """The losses of a step's values (the rest, lambda, gradient norms, lr, is in log.jsonl)."""
    return {k: v for k, v in values.items() if "loss" in k or k.startswith("val/")}


def _seconds(s: float) -> str:
    return tqdm.format_interval(s) if s == s and s != float("inf") else "?"


class Progress:
    """`update(step, values)` after every step; `values` are shown when not None (log steps).
    `enabled=False` (other processes) makes every call a no-op."""

    def __init__(self, total: int, start: int, *, desc: str, enabled: bool, stream=None):
        self.total, self.enabled = total, enabled
        self.stream = stream or sys.stderr
        self.live = enabled and interactive(self.stream)
        self.bar = tqdm(total=total, initial=start, desc=desc, disable=not self.live,
                        dynamic_ncols=True, file=self.stream)
        self._start_step, self._start_time = start, time.perf_counter()

    def update(self, step: int, values: dict[str, float] | None = None) -> None:
        """`step` is the number of steps done; it may go back (a restored checkpoint)."""
        if not self.enabled:
            return
        if self.live:
            if values:
                self.bar.set_postfix({k: f"{v:.4g}" for k, v in headline(values).items()}, refresh=False)
            self.bar.update(step - self.bar.n)  # negative after a restore: tqdm takes that
        elif values is not None:
            print(self.line(step, values), flush=True)

    def line(self, step: int, values: dict[str, float]) -> str:
        """One plain line: step 20/300 (7%) | loss/mse 0.0123 | 1.52 steps/s | ETA 03:04."""
        elapsed = time.perf_counter() - self._start_time
        rate = (step - self._start_step) / elapsed if elapsed > 0 else float("nan")
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        parts = [f"step {step}/{self.total} ({100 * step / max(self.total, 1):.0f}%)"]
        parts += [f"{k} {v:.4g}" for k, v in headline(values).items()]
        parts += [f"{rate:.2f} steps/s", f"ETA {_seconds(eta)}"]
        return " | ".join(parts)

    def note(self, text: str) -> None:
        """A line that does not tear the bar."""
        if not self.enabled:
            return
        if self.live:
            tqdm.write(text, file=sys.stdout)
        else:
            print(text, flush=True)

    def close(self) -> None:
        self.bar.close()
