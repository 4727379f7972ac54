"""On the login node, after submitting: wait streams a local or SLURM job's log into this
process's stdout while polling its state (squeue for SLURM), cancels it when Snakemake stops us,
and turns a failed or lost job into a LaunchError that names the job and shows the log's tail.

A job of several tasks has one log and one result file per task (<id>_<task>_log.out,
<id>_<task>_result.pkl; task 0's log also holds the batch script's output): every log is
streamed, each line prefixed `[task K] `, and the job is done when every task left a result.
The first task to fail fails the job at once: the rest is cancelled (its peers would otherwise
wait on it in a collective until the time limit) and the error shows that task's log.
"""

from __future__ import annotations

import codecs
import pickle
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
    """Copies what a growing file gains into a stream (the file may not exist yet); with a
    prefix, whole lines only, each prefixed (the rest waits for its newline, or the last pump)."""

    def __init__(self, path: Path, out: TextIO, prefix: str = "") -> None:
        self.path, self.out, self.offset, self.prefix, self.partial = path, out, 0, prefix, ""
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def pump(self, final: bool = False) -> None:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            data = b""
        self.offset += len(data)
        text = self.decoder.decode(data)
        if self.prefix:
            lines = (self.partial + text).split("\n")
            self.partial = lines.pop()  # after the last newline: a line still being written
            if final and self.partial:
                lines.append(self.partial)
                self.partial = ""
            text = "".join(f"{self.prefix}{line}\n" for line in lines)
        if text:
            self.out.write(text)
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


def _first_failure(results: list[Path]) -> tuple[int, str] | None:
    """(task, traceback) of the first task whose result file (submitit's ("error", traceback)
    or ("success", value), written atomically) records a failure; None while none does."""
    for k, path in enumerate(results):
        try:
            with path.open("rb") as f:
                outcome, value = pickle.load(f)
        except FileNotFoundError:
            continue
        if outcome == "error":
            return k, str(value)
    return None


def _failure_cause(trace: str) -> str:
    """The last line of the job's traceback (the exception that failed it)."""
    lines = [line.strip() for line in trace.splitlines() if line.strip()]
    return lines[-1] if lines else "no traceback"


def wait(job: Any, cfg: Mapping[str, Any], backend: str, name: str, out: TextIO | None = None) -> int:
    """Wait for a submitted job, streaming its log(s) into `out`; 0 on success, else LaunchError.

    Without an accounting database nobody records how a SLURM job ended, so submitit's result
    files are the only evidence: a job that is no longer queued and left no result for
    slurm.grace_s (at most 10 s for a local job, whose result is written before it exits) is
    reported as lost. SIGINT/SIGTERM (Snakemake stopping) cancel the job.
    """
    settings = Settings.from_config(cfg)
    out = out or sys.stdout
    tasks = [job.task(k) for k in range(job.num_tasks)]
    logs, results = [Path(t.paths.stdout) for t in tasks], [Path(t.paths.result_pickle) for t in tasks]
    tails = [_LogTail(log, out, f"[task {k}] " if len(tasks) > 1 else "") for k, log in enumerate(logs)]
    grace = settings.grace_s if backend == "slurm" else min(settings.grace_s, 10.0)
    in_main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, _raise_cancelled) for s in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    shown: tuple[str | None, str] | None = None
    gone_since: float | None = None
    try:
        while not all(r.exists() for r in results) and _first_failure(results) is None:
            for tail in tails:
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
                                  f"({state or 'gone from squeue'} for over {grace:g} s); log {logs[0]}:\n{_tail(logs[0])}")
            time.sleep(settings.poll_s)
    except _Cancelled as e:
        job.cancel(check=False)
        raise LaunchError(f"{e} received: cancelled {backend} job {job.job_id} ({name}); log {logs[0]}") from None
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
    failure = _first_failure(results)
    if failure is not None:
        task, trace = failure
        if not all(r.exists() for r in results):
            job.cancel(check=False)  # the other tasks would wait on the failed one
        for tail in tails:
            tail.pump(final=True)
        which = f" (task {task} of {len(tasks)})" if len(tasks) > 1 else ""
        raise LaunchError(f"{backend} job {job.job_id} ({name}) failed{which}: {_failure_cause(trace)}\n"
                          f"  log: {logs[task]}\n  last lines:\n{_tail(logs[task])}")
    job.results()  # every task succeeded; a local job's controller exits
    for tail in tails:
        tail.pump(final=True)
    print(f"vpt launch: {backend} job {job.job_id} ({name}) finished", file=out, flush=True)
    return 0
