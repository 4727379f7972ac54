"""Stopping a training run cleanly when the scheduler asks.

SLURM (and submitit's local executor) announce a time-out or preemption with SIGUSR2, SIGTERM
or both, some time before killing the job. `vpt train` installs `stop_signals()`: a signal only
sets a flag, and the trainer checks it after each completed learner step, writes a checkpoint
at that step boundary and raises `Preempted`. The CLI turns that into EXIT_PREEMPTED, which
vpt.launch reads as "requeue me", and the requeued run resumes from that checkpoint exactly.

Torch-free, so vpt.launch (on the login node) can share the exit code without importing torch.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

# EX_TEMPFAIL of sysexits.h ("temporary failure, try again later"): not an error, not a success.
EXIT_PREEMPTED = 75
STOP_SIGNALS = (signal.SIGUSR2, signal.SIGTERM)

_requested: int | None = None  # the first stop signal received, if any


class Preempted(Exception):
    """The run stopped at a step boundary on request; `checkpoint` resumes it."""

    def __init__(self, step: int, checkpoint: Path) -> None:
        super().__init__(f"stopped on request after step {step}; checkpoint {checkpoint} (rerun to resume)")
        self.step, self.checkpoint = step, checkpoint


def request(signum: int = signal.SIGUSR2) -> None:
    """Ask the running trainer to stop at its next step boundary (what the handler does)."""
    global _requested
    if _requested is None:
        _requested = signum


def requested() -> bool:
    return _requested is not None


def reset() -> None:
    global _requested
    _requested = None


def _handler(signum: int, frame: FrameType | None) -> None:
    # Only a flag: the step in progress finishes, so the checkpoint is a consistent state.
    # Repeated signals are expected (SLURM signals every process of the step, and vpt.launch
    # forwards the same signal to us) and change nothing.
    request(signum)


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Within the block, SIGUSR2 and SIGTERM request a stop instead of killing the process;
    the previous handlers come back afterwards (the CLI may run in-process, e.g. in tests)."""
    if threading.current_thread() is not threading.main_thread():  # signal.signal would raise
        yield
        return
    reset()
    previous = {sig: signal.signal(sig, _handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        reset()  # a stop request belongs to this block's run only
