"""Loading evaluation records: the long-format table every report is computed from, one row per
(group, run, checkpoint, task, metric), read from results/eval/<run>/<checkpoint>/<task>.json.
Language runs (vpt.grid.Run) and vision runs (vpt.vision.grid.VisionRun) go into one frame."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from vpt import paths
from vpt.grid import Run, checkpoint_label, train_steps
from vpt.report.records import COLUMNS, OPTIONAL_COLUMNS, report_metrics
from vpt.vision.grid import VisionRun

Evaluation = tuple[str, Run | VisionRun, int | None, str]


def tokens_per_step(cfg: dict[str, Any]) -> int:
    """Unlabeled tokens a learner step consumes: batch_size x seq_len (no gradient accumulation)."""
    return int(cfg["train"]["batch_size"]) * int(cfg["pack"]["seq_len"])


def load_records(cfg: dict[str, Any], evaluations: list[Evaluation]) -> pd.DataFrame:
    """Rows for every listed (group, run, step or None for final, task) whose result file exists.

    Language runs: scalar metrics only (per-subject / per-config breakdowns stay in the JSON);
    feedback_n 0 for a method without feedback. Vision runs (final checkpoints only): just the
    report metrics of vpt.report.records.METRICS (not the probe's losses or the example counts),
    a metric the evaluator could not score (null) left out; feedback_n 0 and corpus "" (a vision
    run's feedback pools and images are the same for every run), tokens 0 (it reads images), and
    its weighting and designer in `variant`."""
    rows: list[dict[str, Any]] = []
    for group, run, step, task in evaluations:
        path = paths.eval_result(cfg, run.id, task, checkpoint_label(step))
        if not path.exists():
            continue
        metrics = json.loads(path.read_text())["metrics"]
        rows += _vision_rows(cfg, group, run, task, metrics) if isinstance(run, VisionRun) else \
            _language_rows(cfg, group, run, step, task, metrics)
    return pd.DataFrame(rows, columns=[*COLUMNS, *OPTIONAL_COLUMNS])


def _language_rows(cfg: dict[str, Any], group: str, run: Run, step: int | None, task: str,
                   metrics: dict[str, Any]) -> list[dict[str, Any]]:
    at = train_steps(cfg) if step is None else step
    base = {"group": group, "model": run.model, "method": run.method, "lr": run.lr, "seed": run.seed,
            "feedback_n": run.feedback_n or 0, "corpus": run.corpus, "variant": "", "run": run.id, "step": at,
            "final": step is None, "tokens": at * tokens_per_step(cfg), "task": task}
    return [{**base, "metric": metric, "value": float(value)} for metric, value in metrics.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and metric != "subjects"]


def _vision_rows(cfg: dict[str, Any], group: str, run: VisionRun, task: str, metrics: dict[str, Any]) -> list[dict[str, Any]]:
    from vpt.vision.setup import vision_train_section

    steps = int(vision_train_section(cfg, run.method)["steps"])
    base = {"group": group, "model": run.model, "method": run.method, "lr": run.lr, "seed": run.seed,
            "feedback_n": 0, "corpus": "", "variant": run.variant, "run": run.id, "step": steps,
            "final": True, "tokens": 0, "task": task}
    return [{**base, "metric": metric, "value": float(metrics[metric])} for metric in report_metrics(task)
            if isinstance(metrics.get(metric), (int, float)) and not isinstance(metrics.get(metric), bool)]
