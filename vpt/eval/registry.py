"""The evaluation tasks, each registered once by its own module in vpt.eval.evaluators.

An entry says everything the rest of the code needs about a task: the `eval.<section>` blocks it
reads (its Snakemake stamp), the (dataset, split) pairs the config must define (vpt.config's
reference check), how to build its harness task, and how to turn the harness's per-example
samples and metrics into our rows and summary (vpt.eval.run). vpt.eval.run, vpt.workflow,
vpt.config, the CLI and workflow/rules/eval.smk list tasks only through TASK_REGISTRY.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpt.registry import Registry, help_table

Config = dict[str, Any]
Row = dict[str, Any]


def _same_metrics(metrics: dict[str, Any], rows: list[Row]) -> dict[str, Any]:
    return metrics


@dataclass(frozen=True)
class EvalTask:
    help: str  # one line, shown by `vpt eval --help`
    sections: tuple[str, ...]  # the eval.<section> blocks its settings come from
    needs: Callable[[Config], list[tuple[str, str, str]]]  # eval section -> (config key, dataset, split) it reads
    build: Callable[[Config], tuple[dict[str, Any], dict[str, Any]]]  # config -> (harness task config, evaluate() options)
    row: Callable[[dict[str, Any]], Row]  # one harness sample -> the fields of its row in <task>.jsonl
    summarize: Callable[[dict[str, Any], list[Row]], dict[str, Any]] = _same_metrics  # harness metrics, rows -> metrics


@dataclass(frozen=True)
class NativeTask:
    """A task vpt evaluates itself rather than through the harness (the vision evaluators): it
    loads the saved model from a directory and returns (summary, rows) for vpt.eval.run."""

    help: str
    sections: tuple[str, ...]
    needs: Callable[[Config], list[tuple[str, str, str]]]
    evaluate: Callable[[Config, Path, str], tuple[dict[str, Any], list[Row]]]  # cfg, model dir, device -> (summary, rows)
    modality: str = "vision"
    default: bool = True  # among a vision group's tasks when it names none (a lab's own tasks are not)


TASK_REGISTRY: Registry[EvalTask | NativeTask] = Registry("evaluation task", packages=("vpt.eval.evaluators",))


def task_inputs(cfg: Config, task: str) -> list[Path]:
    """The data files a task reads: the raw splits it needs (vpt.paths.raw_split)."""
    from vpt import paths

    return sorted({paths.raw_split(cfg, d, s) for _, d, s in TASK_REGISTRY.get(task).needs(cfg["eval"])})


def tasks_help() -> str:
    """The task list of `vpt eval --help`."""
    return help_table((name, t.help) for name, t in TASK_REGISTRY.items())
