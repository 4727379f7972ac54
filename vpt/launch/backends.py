"""The backends that run a stage: inline (run_inline, in this process) and submitit's local and
SLURM executors (make_executor maps a job's Resources onto their parameters; submit submits a
VptJob with them). Waiting for a submitted job is vpt.launch.monitor.

A distributed job (nodes x tasks_per_node > 1) is one submitit job of several tasks: on SLURM
`--nodes`/`--ntasks-per-node`, the tasks started by srun; locally the LocalExecutor's
tasks_per_node processes on this machine (one node only). Inline runs one process and refuses it.
"""

from __future__ import annotations

import re
import runpy
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vpt.launch.job import VptJob
from vpt.launch.settings import LaunchError, Resources, Settings, resources_for


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
                                      signal_delay_s=res.signal_delay_s, nodes=res.nodes,
                                      ntasks_per_node=res.tasks_per_node)
        if res.num_tasks > 1:  # srun of SLURM 22.05 does not inherit sbatch's --cpus-per-task: a rank would get 1 CPU
            params["srun_args"] = [f"--cpus-per-task={res.cpus}"]
        if res.gpus > 0:  # no --gpus-per-node=0: clusters without GPU gres reject it
            params["gpus_per_node"] = res.gpus
        if res.partition:
            params["partition"] = res.partition
        if res.extra:
            params["additional_parameters"] = dict(res.extra)
    else:
        if res.nodes > 1:
            raise LaunchError(f"job {name!r} asks for {res.nodes} nodes (slurm.resources nodes); the local launcher "
                              "runs on this machine only: use launcher slurm, or nodes 1")
        ex = submitit.LocalExecutor(folder, max_num_timeout=settings.max_requeues)
        # timeout_min is required in practice: submitit's local default kills a job after 2 min.
        # gpus_per_node 0 hides the GPUs (CUDA_VISIBLE_DEVICES=""), as a CPU job on SLURM would.
        params = dict(timeout_min=res.time_min, signal_delay_s=res.signal_delay_s, gpus_per_node=res.gpus,
                      tasks_per_node=res.tasks_per_node)
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
    job = ex.submit(VptJob(argv, stop_timeout_s=max(1.0, 0.75 * res.signal_delay_s), cpus=res.cpus))
    if res.num_tasks == 1:
        size, logs = f"{res.gpus} GPU, {res.cpus} CPU, {res.mem_gb:g} GB", f"log: {job.paths.stdout}"
    else:  # one log per task, <id>_<task>_log.out
        size = (f"{res.nodes} node x {res.tasks_per_node} tasks, {res.gpus} GPU and {res.mem_gb:g} GB per node, "
                f"{res.cpus} CPU per task")
        logs = f"logs: {job.task(0).paths.stdout} to {job.task(res.num_tasks - 1).paths.stdout.name}"
    print(f"vpt launch: submitted {name} as {backend} job {job.job_id} ({size}, {res.time_min} min"
          f"{', partition ' + res.partition if res.partition and backend == 'slurm' else ''}); {logs}", flush=True)
    return job


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
