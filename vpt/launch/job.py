"""Inside a local or SLURM job: VptJob, the submitit callable that runs `python -m vpt <argv>`
as a child process, forwards stop signals to it and has the job requeued when the stage stops
to checkpoint (EXIT_PREEMPTED, or killed by SIGTERM/SIGUSR2).

VptJob is pickled by submitit on the login node and unpickled in the job, so it holds only the
command; the running child is module state (_CHILD, _SIGNALLED).

Distributed jobs (nodes x tasks_per_node > 1): submitit starts one task per rank (srun on SLURM,
the LocalExecutor's controller locally), each runs VptJob, and each VptJob spawns its own child
with the torch.distributed environment of submitit.helpers.TorchDistributedEnvironment:
MASTER_ADDR (the job's first node), MASTER_PORT (seeded by the job id, so every task agrees),
RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, plus OMP_NUM_THREADS = the task's cpus unless
set (as torchrun does: otherwise every rank starts one thread per core of the node). The child
reads them as under torchrun (`init_process_group()` with env://). CUDA_VISIBLE_DEVICES is left
as the scheduler set it (all the node's GPUs of the job, torchrun's convention): a rank picks
`cuda:LOCAL_RANK`. A one-task job's child gets the job's environment unchanged.

Preemption and time-outs with several tasks: the signal (USR2) reaches every task, but
submitit's handler checkpoints and requeues only on global rank 0 (on other ranks it logs and
returns). So on ranks > 0 VptJob installs its own handler, which runs checkpoint() (stop the
child at a step boundary, kill it after stop_timeout_s) and exits the task cleanly without a
result; rank 0 requeues the whole job (scontrol requeue; locally its exit code 144 makes the
controller restart every task once all have exited).
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from vpt.preempt import EXIT_PREEMPTED, STOP_SIGNALS


class JobFailed(RuntimeError):
    """Raised inside the job when the vpt child process fails; submitit records it."""


# Named by the package, where it is imported from: a failed job reports the last line of its
# traceback as the cause ("failed: vpt.launch.JobFailed: `vpt ...` exited with code 2").
JobFailed.__module__ = "vpt.launch"


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


# torch.distributed's env:// variables, as torchrun sets them; a distributed job's children get them.
DIST_VARS = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")

# The child of the current job. Module level, not an attribute: VptJob must stay picklable, and
# the checkpoint handler should not depend on being called on the same instance as __call__.
_CHILD: _Child | None = None
_SIGNALLED = False  # this job process received a stop signal


def _submitit_signal() -> int:
    """The signal submitit's handler requeues on (SUBMITIT_PREEMPT_SIGNAL, USR2 by default)."""
    return int(signal.Signals["SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")])


def task_env(cpus: int | None) -> tuple[int, dict[str, str]]:
    """(global rank, the variables to add to the child's environment) of this task: (0, {})
    outside a submitit job or in a one-task job, whose child sees the job's environment as is."""
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return 0, {}
    import submitit

    if submitit.JobEnvironment().num_tasks == 1:
        return 0, {}
    dist = submitit.helpers.TorchDistributedEnvironment()  # reads the job's environment; exports nothing
    values = (dist.master_addr, dist.master_port, dist.rank, dist.world_size, dist.local_rank, dist.local_world_size)
    env = {var: str(value) for var, value in zip(DIST_VARS, values, strict=True)}
    if cpus and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(cpus)
    return dist.rank, env


def _forward(signum: int, frame: FrameType | None) -> None:
    global _SIGNALLED
    _SIGNALLED = True
    if _CHILD is not None:
        _CHILD.signal(signum)


class VptJob:
    """`python -m vpt <argv>` in a child process, checkpointable by submitit.

    stop_timeout_s bounds how long checkpoint() waits for the child to save and exit; it must
    end before the scheduler's kill (signal_delay_s after the signal), or the job is not requeued.
    cpus: the CPUs of one task (OMP_NUM_THREADS of a distributed job's ranks).
    """

    def __init__(self, argv: Sequence[str], stop_timeout_s: float = 60.0, cpus: int | None = None) -> None:
        self.argv = list(argv)
        self.stop_timeout_s = stop_timeout_s
        self.cpus = cpus

    def __call__(self) -> int:
        global _CHILD, _SIGNALLED
        sys.stdout.flush()
        sys.stderr.flush()
        rank, dist = task_env(self.cpus)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **dist}  # unbuffered: the log streams as the stage prints
        cmd = [sys.executable, "-m", "vpt", *self.argv]
        where = f" as rank {rank} of {dist['WORLD_SIZE']}" if dist else ""
        print(f"vpt launch: running {shlex.join(cmd)}{where}", file=sys.stderr, flush=True)
        _SIGNALLED = False
        _CHILD = child = _Child(os.posix_spawn(sys.executable, cmd, env, setsigdef=STOP_SIGNALS))
        # submitit's handler keeps SIGUSR2 (it calls checkpoint()) on rank 0; SIGTERM, which
        # submitit only logs, is passed on so the trainer starts checkpointing as early as possible.
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _forward) if in_main else None
        stop_sig, own_stop = _submitit_signal(), in_main and rank != 0
        previous_stop = signal.signal(stop_sig, self._stop_task) if own_stop else None
        try:
            while (code := child.poll()) is None:
                time.sleep(0.2)
            if code == EXIT_PREEMPTED or code in (-signal.SIGTERM, -signal.SIGUSR2):
                if rank != 0:  # the stage stopped to checkpoint; rank 0 requeues the job
                    print(f"vpt launch: the stage stopped (code {code}) on rank {rank}; rank 0 requeues the job",
                          file=sys.stderr, flush=True)
                    raise SystemExit(0)
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
            if own_stop:
                signal.signal(stop_sig, signal.SIG_DFL if previous_stop is None else previous_stop)

    def _stop_task(self, signum: int, frame: FrameType | None) -> None:
        """The stop signal on a rank > 0, where submitit's handler would only log it: stop the
        child as rank 0 does, then end this task without a result (rank 0 requeues the job)."""
        global _SIGNALLED
        _SIGNALLED = True
        print(f"vpt launch: {signal.Signals(signum).name} on a rank > 0: stopping the stage; rank 0 requeues the job",
              file=sys.stderr, flush=True)
        self.checkpoint()
        raise SystemExit(0)

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
        return submitit.helpers.DelayedSubmission(VptJob(self.argv, self.stop_timeout_s, self.cpus))
