"""Run one `vpt` stage where the config says: in this process, as a local submitit job, or as a
SLURM job (`vpt launch`, used by every heavy Snakemake rule).

  inline  `python -m vpt <argv>` in the calling process (the default; no scheduler, no extra start-up)
  local   submitit's LocalExecutor: a controller subprocess with a time limit that requeues on USR2
  slurm   sbatch through submitit; this process (on the login node, under Snakemake) polls the
          queue, streams the job's log into its own stdout and fails with the log's tail

Inside a local or SLURM job, VptJob runs `python -m vpt <argv>` as a child process, so that a
time-out or preemption signal reaches a trainer that can finish its step, checkpoint and exit
with EXIT_PREEMPTED; submitit then requeues the job and the rerun resumes from the checkpoint.
Every backend runs the package's entry point, vpt/__main__.py, by name (inline through runpy), so
this module does not import vpt.cli, which imports it for `vpt launch`.
Importable without torch: the login node only needs submitit and the config.
"""

from __future__ import annotations

import codecs
import os
import re
import runpy
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from vpt.config import section_defaults
from vpt.errors import VptError
from vpt.preempt import EXIT_PREEMPTED, STOP_SIGNALS

KINDS = ("data", "train", "eval", "probe", "bench")
BACKENDS = ("inline", "local", "slurm")
TAIL_LINES = 30

# squeue states of a job that is still on its way (after a requeue it goes back to PENDING).
_ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_FED", "RESIZING",
           "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "PREEMPTED", "RESV_DEL_HOLD"}


class LaunchError(VptError):
    """A job that could not be submitted, failed, or vanished."""


class JobFailed(RuntimeError):
    """Raised inside the job when the vpt child process fails; submitit records it."""


# --------------------------------------------------------------------------- configuration


# No defaults here: the schema's `slurm` section has them (vpt.config.section_defaults).
@dataclass(frozen=True)
class Resources:
    """One job's request; `slurm.resources` entries merged default <- <kind> <- <kind>/<model>."""

    partition: str | None  # None: the cluster's default partition
    gpus: int
    cpus: int
    mem_gb: float
    time_min: int
    signal_delay_s: int  # USR2 this long before the time limit, to checkpoint
    extra: dict[str, Any]  # more sbatch options


@dataclass(frozen=True)
class Settings:
    """The `slurm:` section minus resources (it applies to the local launcher too)."""

    folder: str
    poll_s: float
    max_requeues: int
    grace_s: float

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Settings:
        section = {**section_defaults("slurm"), **(cfg.get("slurm") or {})}
        return cls(**{f.name: section[f.name] for f in fields(cls)})


def resources_for(cfg: Mapping[str, Any], kind: str, model: str | None) -> Resources:
    """The merged resources of a `kind` job for `model` (None or "-": no model)."""
    if kind not in KINDS:
        raise LaunchError(f"--kind {kind!r} is not a job kind; choose one of: {', '.join(KINDS)}")
    table = (cfg.get("slurm") or {}).get("resources") or {}
    valid = [f.name for f in fields(Resources)]
    keys = ["default", kind] + ([f"{kind}/{model}"] if model and model != "-" else [])
    merged = section_defaults("slurm", "resources", "default")  # what a validated config's `default` entry holds
    extra: dict[str, Any] = merged.pop("extra")
    for key in keys:
        entry = table.get(key) or {}
        unknown = sorted(set(entry) - set(valid))
        if unknown:
            raise LaunchError(f"key 'slurm.resources.{key}': unknown resource {unknown[0]!r}; valid keys: {', '.join(valid)}")
        merged.update({k: v for k, v in entry.items() if k != "extra"})
        extra.update(entry.get("extra") or {})  # extra options add up (account in default, qos per kind)
    return Resources(**merged, extra=extra)


# --------------------------------------------------------------------------- inside the job


@dataclass
class _Child:
    """The running `python -m vpt` child, reaped with waitpid directly: the submitit signal
    handler may poll it while the main loop is itself polling, which subprocess.Popen's
    internal lock does not allow (a nested wait would stall until its timeout)."""

    pid: int
    code: int | None = None

    def poll(self) -> int | None:
        if self.code is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by the frame this signal handler interrupted
                return -1
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
        return self.code

    def signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout_s: float) -> int | None:
        end = time.monotonic() + timeout_s
        while self.poll() is None and time.monotonic() < end:
            time.sleep(0.1)
        return self.poll()


# The child of the current job. Module level, not an attribute: VptJob must stay picklable, and
# the checkpoint handler should not depend on being called on the same instance as __call__.
_CHILD: _Child | None = None
_SIGNALLED = False  # this job process received a stop signal


def _submitit_signal() -> int:
    """The signal submitit's handler requeues on (SUBMITIT_PREEMPT_SIGNAL, USR2 by default)."""
    return int(signal.Signals["SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")])


def _forward(signum: int, frame: FrameType | None) -> None:
    global _SIGNALLED
    _SIGNALLED = True
    if _CHILD is not None:
        _CHILD.signal(signum)


class VptJob:
    """`python -m vpt <argv>` in a child process, checkpointable by submitit.

    stop_timeout_s bounds how long checkpoint() waits for the child to save and exit; it must
    end before the scheduler's kill (signal_delay_s after the signal), or the job is not requeued.
    """

    def __init__(self, argv: Sequence[str], stop_timeout_s: float = 60.0) -> None:
        self.argv = list(argv)
        self.stop_timeout_s = stop_timeout_s

    def __call__(self) -> int:
        global _CHILD, _SIGNALLED
        sys.stdout.flush()
        sys.stderr.flush()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # the log streams as the stage prints
        cmd = [sys.executable, "-m", "vpt", *self.argv]
        print(f"vpt launch: running {shlex.join(cmd)}", file=sys.stderr, flush=True)
        _SIGNALLED = False
        _CHILD = child = _Child(os.posix_spawn(sys.executable, cmd, env, setsigdef=STOP_SIGNALS))
        # submitit's handler keeps SIGUSR2 (it calls checkpoint()); SIGTERM, which submitit only
        # logs, is passed on so the trainer starts checkpointing as early as possible.
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _forward) if in_main else None
        try:
            while (code := child.poll()) is None:
                time.sleep(0.2)
            if code == EXIT_PREEMPTED or code in (-signal.SIGTERM, -signal.SIGUSR2):
                self._requeue_after_child_stopped(code)
            if code != 0:
                raise JobFailed(f"`vpt {' '.join(self.argv)}` exited with code {code}")
            return 0
        finally:
            if child.poll() is None:  # we are being killed or cancelled: do not leave it running
                child.signal(signal.SIGKILL)
                child.wait(5)
            _CHILD = None
            if in_main:
                signal.signal(signal.SIGTERM, previous)

    def _requeue_after_child_stopped(self, code: int) -> None:
        """The child stopped on a signal before submitit's handler ran in this process (it got
        the signal first, or only it did). Give the handler a moment to arrive; if it does not,
        raise it ourselves so submitit checkpoints and requeues the usual way."""
        sig = _submitit_signal()
        if not callable(signal.getsignal(sig)):
            raise JobFailed(f"`vpt {' '.join(self.argv)}` stopped on a signal (code {code}) outside a submitit job")
        end = time.monotonic() + (10.0 if _SIGNALLED else 2.0)
        while time.monotonic() < end:
            time.sleep(0.1)  # submitit's handler interrupts this and exits the process
        print(f"vpt launch: the stage stopped (code {code}) without a requeue signal; requeueing", file=sys.stderr, flush=True)
        signal.raise_signal(sig)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit's signal handler: let the child checkpoint and exit, then ask to
        be submitted again with the same command (the rerun resumes from the checkpoint)."""
        import submitit

        child = _CHILD
        if child is not None and child.poll() is None:
            child.signal(signal.SIGUSR2)
            if child.wait(self.stop_timeout_s) is None:
                print(f"vpt launch: the stage did not stop within {self.stop_timeout_s:.0f} s; killing it "
                      "(the rerun resumes from its previous checkpoint)", file=sys.stderr, flush=True)
                child.signal(signal.SIGKILL)
                child.wait(10)
        return submitit.helpers.DelayedSubmission(VptJob(self.argv, self.stop_timeout_s))


# --------------------------------------------------------------------------- on the login node


def _job_dir_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "job"


def make_executor(backend: str, settings: Settings, res: Resources, name: str) -> Any:
    """A submitit executor for `backend` (local or slurm) with `res` mapped onto its parameters."""
    import submitit

    folder = Path(settings.folder) / _job_dir_name(name) / "%j"
    ex: Any
    if backend == "slurm":
        ex = submitit.SlurmExecutor(folder, max_num_timeout=settings.max_requeues)
        mem = f"{int(res.mem_gb)}G" if float(res.mem_gb).is_integer() else f"{int(res.mem_gb * 1024)}M"
        params: dict[str, Any] = dict(job_name=name, time=res.time_min, cpus_per_task=res.cpus, mem=mem,
                                      signal_delay_s=res.signal_delay_s)
        if res.gpus > 0:  # no --gpus-per-node=0: clusters without GPU gres reject it
            params["gpus_per_node"] = res.gpus
        if res.partition:
            params["partition"] = res.partition
        if res.extra:
            params["additional_parameters"] = dict(res.extra)
    else:
        ex = submitit.LocalExecutor(folder, max_num_timeout=settings.max_requeues)
        # timeout_min is required in practice: submitit's local default kills a job after 2 min.
        # gpus_per_node 0 hides the GPUs (CUDA_VISIBLE_DEVICES=""), as a CPU job on SLURM would.
        params = dict(timeout_min=res.time_min, signal_delay_s=res.signal_delay_s, gpus_per_node=res.gpus)
    # One log file, stdout and stderr interleaved in order: it is streamed and its tail is shown.
    ex.update_parameters(stderr_to_stdout=True, **params)
    return ex


def submit(argv: Sequence[str], cfg: Mapping[str, Any], kind: str, model: str | None, name: str, backend: str) -> Any:
    """Submit `vpt <argv>` as a local or SLURM job and return the submitit Job."""
    if backend not in ("local", "slurm"):
        raise LaunchError(f"cannot submit with launcher {backend!r}; choose local or slurm")
    res = resources_for(cfg, kind, model)
    settings = Settings.from_config(cfg)
    ex = make_executor(backend, settings, res, name)
    # Leave time before the kill to finish the step, save and requeue (see VptJob).
    job = ex.submit(VptJob(argv, stop_timeout_s=max(1.0, 0.75 * res.signal_delay_s)))
    print(f"vpt launch: submitted {name} as {backend} job {job.job_id} "
          f"({res.gpus} GPU, {res.cpus} CPU, {res.mem_gb:g} GB, {res.time_min} min"
          f"{', partition ' + res.partition if res.partition and backend == 'slurm' else ''}); log: {job.paths.stdout}",
          flush=True)
    return job


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


def run_inline(argv: Sequence[str]) -> int:
    """`python -m vpt <argv>` in this process, as a job runs it in a child: vpt/__main__.py under
    runpy with sys.argv set to it; the code it exits with (argparse's 2 for bad arguments too)."""
    saved = sys.argv
    sys.argv = ["vpt", *argv]
    try:
        runpy.run_module("vpt", run_name="__main__")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = saved
    return 0


def launch(argv: Sequence[str], cfg: Mapping[str, Any], kind: str, model: str | None, name: str,
           backend: str | None = None) -> int:
    """Run `vpt <argv>` with the config's launcher (or `backend`); the exit code, 0 on success."""
    backend = backend or cfg.get("launcher", "inline")
    if backend not in BACKENDS:
        raise LaunchError(f"key 'launcher': {backend!r} is not a launcher; choose one of: {', '.join(BACKENDS)}")
    if not argv:
        raise LaunchError("nothing to launch: give the vpt command after `--`, e.g. `-- train --config C`")
    resources_for(cfg, kind, model)  # the same errors whatever the backend
    if backend == "inline":
        return run_inline(argv)
    job = submit(argv, cfg, kind, model, name, backend)
    return wait(job, cfg, backend, name)
