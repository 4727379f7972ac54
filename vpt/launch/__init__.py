"""Run one `vpt` stage where the config says: in this process, as a local submitit job, or as a
SLURM job (`vpt launch`, used by every heavy Snakemake rule).

  inline  `python -m vpt <argv>` in the calling process (the default; no scheduler, no extra start-up)
  local   submitit's LocalExecutor: a controller subprocess with a time limit that requeues on USR2
  slurm   sbatch through submitit; this process (on the login node, under Snakemake) polls the
          queue, streams the job's log into its own stdout and fails with the log's tail

A distributed stage (slurm.resources nodes x tasks_per_node > 1, one task per GPU) is still one
job and one `vpt launch` call for Snakemake: local or slurm start one task per rank, each task's
child gets the torch.distributed environment (vpt.launch.job), and the client streams every
task's log. Inline runs one process and refuses such a job.

Inside a local or SLURM job, VptJob runs `python -m vpt <argv>` as a child process, so that a
time-out or preemption signal reaches a trainer that can finish its step, checkpoint and exit
with EXIT_PREEMPTED; submitit then requeues the job and the rerun resumes from the checkpoint.
Every backend runs the package's entry point, vpt/__main__.py, by name (inline through runpy), so
this package does not depend on the CLI module (which depends on it for `vpt launch`).
Importable without torch: the login node only needs submitit and the config.

The package: settings (job kinds, launchers, the `slurm:` settings and resources merging), job
(VptJob, what runs inside a job), backends (inline, and submitit's local and SLURM executors),
monitor (waiting for a submitted job and streaming its log), and here `launch`, which picks one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vpt.launch import job as _job
from vpt.launch.backends import make_executor, run_inline, submit
from vpt.launch.job import JobFailed, VptJob
from vpt.launch.monitor import TAIL_LINES, wait
from vpt.launch.settings import BACKENDS, KINDS, LaunchError, Resources, Settings, resources_for

__all__ = [
    "BACKENDS", "KINDS", "TAIL_LINES", "JobFailed", "LaunchError", "Resources", "Settings", "VptJob",
    "launch", "make_executor", "resources_for", "run_inline", "submit", "wait",
]


def __getattr__(name: str) -> Any:
    """The running job's state, read live from vpt.launch.job: VptJob rebinds these globals there,
    so a copy bound here at import time would always be None."""
    if name in ("_CHILD", "_SIGNALLED"):
        return getattr(_job, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def launch(argv: Sequence[str], cfg: Mapping[str, Any], kind: str, model: str | None, name: str,
           backend: str | None = None) -> int:
    """Run `vpt <argv>` with the config's launcher (or `backend`); the exit code, 0 on success."""
    backend = backend or cfg.get("launcher", "inline")
    if backend not in BACKENDS:
        raise LaunchError(f"key 'launcher': {backend!r} is not a launcher; choose one of: {', '.join(BACKENDS)}")
    if not argv:
        raise LaunchError("nothing to launch: give the vpt command after `--`, e.g. `-- train --config C`")
    res = resources_for(cfg, kind, model)  # the same errors whatever the backend
    if backend == "inline":
        if res.num_tasks > 1:
            raise LaunchError(f"a {kind} job{f' for {model}' if model and model != '-' else ''} has {res.num_tasks} tasks "
                              f"(slurm.resources nodes {res.nodes} x tasks_per_node {res.tasks_per_node}) and the inline "
                              "launcher runs one process: use launcher local or slurm (`vpt launch --launcher local`)")
        return run_inline(argv)
    job = submit(argv, cfg, kind, model, name, backend)
    return wait(job, cfg, backend, name)
