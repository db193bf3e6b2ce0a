"""What keeps a training run safe between and within steps: non-finite losses skip the update
on every process together, a step's BatchNorm statistics can be put back, SIGINT/SIGTERM end
the run with a checkpoint, and a testing hook makes chosen steps' losses NaN.

The training modes (`supervised`, `gan`) and the loop all use these; they import nothing from
either, so the modes never import the loop."""

from __future__ import annotations

import os
import signal

import torch


def nonfinite(accelerator, *losses: torch.Tensor) -> bool:
    """True when any loss is NaN or Inf on any process: then every process skips the update
    (call before backward; all processes must agree, since a backward under DDP is a collective)."""
    bad = torch.stack([loss.detach().float().reshape(()) for loss in losses]).isfinite().all().logical_not()
    if accelerator.num_processes == 1:
        return bool(bad.item())
    flag = bad.float().reshape(1).to(accelerator.device)
    return accelerator.reduce(flag, reduction="sum").item() > 0


def injected_nan_steps(accelerator) -> set[int]:
    """TESTING HOOK (fault injection), not a feature: `DPE_INJECT_NAN_STEPS="3,4"` makes the
    losses of steps 3 and 4 (the step numbers in the log, 1-based) NaN, once each: a step that
    runs again after a checkpoint restore is clean. `DPE_INJECT_NAN_RANK=1` limits it to that
    process (the others must still skip). Read once when a task is built; unset, it does
    nothing. Used by tests/test_faults.py."""
    raw = os.environ.get("DPE_INJECT_NAN_STEPS", "")
    rank = os.environ.get("DPE_INJECT_NAN_RANK", "")
    if rank and int(rank) != accelerator.process_index:
        return set()
    return {int(s) for s in raw.replace(" ", "").split(",") if s}


def buffer_snapshot(*models: torch.nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Copies of the models' buffers (BN statistics and their batch counters): a forward pass in
    training mode updates them even when the step is then skipped (and NaN statistics would
    poison the model) or when it only makes fakes for a critic. `restore_buffers` puts them back."""
    return [(b, b.detach().clone()) for m in models for b in m.buffers()]


def restore_buffers(snapshot) -> None:
    with torch.no_grad():
        for buffer, saved in snapshot:
            buffer.copy_(saved)


class StopRequest:
    """SIGINT/SIGTERM set a flag that the loop reads between steps, so an interrupted run
    ends with a checkpoint instead of losing everything since the last one. Every process
    must agree to stop (a checkpoint is a collective), so the flag is summed across them."""

    def __init__(self):
        self.flag = False
        self._previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. called from a notebook worker)
                pass

    def _handle(self, signum, frame) -> None:
        self.flag = True

    def requested(self, accelerator) -> bool:
        if accelerator.num_processes == 1:
            return self.flag
        flag = torch.tensor([1.0 if self.flag else 0.0], device=accelerator.device)
        return accelerator.reduce(flag, reduction="sum").item() > 0

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
