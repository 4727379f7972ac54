"""On the login node, after submitting: wait streams a local or SLURM job's log into this
process's stdout while polling its state (squeue for SLURM), cancels it when Snakemake stops us,
and turns a failed or lost job into a LaunchError that names the job and shows the log's tail.
"""

from __future__ import annotations

import codecs
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from vpt.launch.settings import LaunchError, Settings

TAIL_LINES = 30

# squeue states of a job that is still on its way (after a requeue it goes back to PENDING).
_ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_FED", "RESIZING",
           "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "PREEMPTED", "RESV_DEL_HOLD"}


class _LogTail:
    """Copies what a growing file gains into a stream (the file may not exist yet)."""

    def __init__(self, path: Path, out: TextIO) -> None:
        self.path, self.out, self.offset = path, out, 0
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def pump(self) -> None:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        if data:
            self.offset += len(data)
            self.out.write(self.decoder.decode(data))
            self.out.flush()


def _tail(path: Path, n: int = TAIL_LINES) -> str:
    """The last lines the stage printed: submitit's own traceback of the failure (which only
    says the child exited non-zero, and is already summarized in the error) is cut off."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "  (no log written)"
    cut = next((i for i, line in enumerate(lines) if "Submitted job triggered an exception" in line), len(lines))
    return "\n".join(f"  | {line}" for line in lines[:cut][-n:]) or "  (empty log)"


def _slurm_state(job_id: str) -> tuple[str | None, str]:
    """(state, reason) from squeue; state None when the job is unknown to the controller.
    squeue, not sacct: the cluster may have no accounting database."""
    r = subprocess.run(["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T|%r"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        if "Invalid job id" in r.stderr:
            return None, ""
        return "UNKNOWN", r.stderr.strip()  # controller busy or unreachable: not evidence of loss
    line = r.stdout.strip().splitlines()[0] if r.stdout.strip() else ""
    if not line:
        return None, ""
    state, _, reason = line.partition("|")
    return state, reason


class _Cancelled(Exception):
    pass


def _raise_cancelled(signum: int, frame: FrameType | None) -> None:
    raise _Cancelled(signal.Signals(signum).name)


def _state(job: Any, backend: str) -> tuple[str | None, str]:
    if backend == "slurm":
        return _slurm_state(str(job.job_id))
    return ("RUNNING" if job.state == "RUNNING" else None), ""  # LocalJob: its controller process lives


def _failure_cause(error: Exception) -> str:
    """The last line of the job's traceback inside submitit's error message (between dashed lines)."""
    parts = re.split(r"\n-{10,}\n", str(error))
    text = parts[1] if len(parts) >= 3 else str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def wait(job: Any, cfg: Mapping[str, Any], backend: str, name: str, out: TextIO | None = None) -> int:
    """Wait for a submitted job, streaming its log into `out`; 0 on success, else LaunchError.

    Without an accounting database nobody records how a SLURM job ended, so submitit's result
    file is the only evidence: a job that is no longer queued and left no result for
    slurm.grace_s (at most 10 s for a local job, whose result is written before it exits) is
    reported as lost. SIGINT/SIGTERM (Snakemake stopping) cancel the job.
    """
    settings = Settings.from_config(cfg)
    out = out or sys.stdout
    log, result_file = Path(job.paths.stdout), Path(job.paths.result_pickle)
    tail = _LogTail(log, out)
    grace = settings.grace_s if backend == "slurm" else min(settings.grace_s, 10.0)
    in_main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, _raise_cancelled) for s in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    shown: tuple[str | None, str] | None = None
    gone_since: float | None = None
    try:
        while not result_file.exists():
            tail.pump()
            state, reason = _state(job, backend)
            if backend == "slurm" and (state, reason) != shown:  # PENDING (BeginTime) after a requeue, ...
                why = f" ({reason})" if reason and reason != "None" else ""
                print(f"vpt launch: job {job.job_id} {state or 'is gone from squeue'}{why}", file=out, flush=True)
                shown = (state, reason)
            if state in _ACTIVE or state == "UNKNOWN":
                gone_since = None
            elif gone_since is None:
                gone_since = time.monotonic()
            elif time.monotonic() - gone_since > grace:
                raise LaunchError(f"{backend} job {job.job_id} ({name}) ended without a result "
                                  f"({state or 'gone from squeue'} for over {grace:g} s); log {log}:\n{_tail(log)}")
            time.sleep(settings.poll_s)
    except _Cancelled as e:
        job.cancel(check=False)
        raise LaunchError(f"{e} received: cancelled {backend} job {job.job_id} ({name}); log {log}") from None
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
    try:
        result = job.result()
    except Exception as e:  # submitit's FailedJobError, with the job's traceback
        tail.pump()
        raise LaunchError(f"{backend} job {job.job_id} ({name}) failed: {_failure_cause(e)}\n"
                          f"  log: {log}\n  last lines:\n{_tail(log)}") from None
    tail.pump()
    print(f"vpt launch: {backend} job {job.job_id} ({name}) finished", file=out, flush=True)
    return int(result or 0)
