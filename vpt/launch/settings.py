"""What a job asks for: the job kinds and launchers, the `slurm:` settings (Settings) and one
job's merged `slurm.resources` request (Resources, resources_for), and LaunchError.

Read from the config only; importable without torch or submitit (the CLI reads KINDS for
`vpt launch --kind`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from vpt.config import section_defaults
from vpt.errors import VptError

KINDS = ("data", "train", "eval", "probe", "bench")
BACKENDS = ("inline", "local", "slurm")


class LaunchError(VptError):
    """A job that could not be submitted, failed, or vanished."""


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
    nodes: int
    tasks_per_node: int  # processes per node, one torch.distributed rank each (one per GPU)
    extra: dict[str, Any]  # more sbatch options

    @property
    def num_tasks(self) -> int:
        """The job's processes (its torch.distributed world size)."""
        return self.nodes * self.tasks_per_node


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
    res = Resources(**merged, extra=extra)
    _check_one_task_per_gpu(res, [k for k in keys if {"gpus", "tasks_per_node"} & set(table.get(k) or {})])
    return res


def _check_one_task_per_gpu(res: Resources, setting: list[str]) -> None:
    """Several tasks share a node's GPUs one each (rank LOCAL_RANK drives GPU LOCAL_RANK), so a
    GPU job with several tasks per node needs exactly one task per GPU. `setting`: the entries
    that set gpus or tasks_per_node, the most specific last (the one named in the error)."""
    if res.tasks_per_node > 1 and res.gpus > 0 and res.gpus != res.tasks_per_node:
        key = setting[-1] if setting else "default"
        raise LaunchError(f"key 'slurm.resources.{key}': tasks_per_node {res.tasks_per_node} with gpus {res.gpus}; "
                          f"a distributed job runs one task per GPU: set tasks_per_node to {res.gpus} "
                          f"(or gpus to {res.tasks_per_node}, or to 0 for a CPU job)")
