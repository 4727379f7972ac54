"""Loading evaluation records: the long-format table every report is computed from, one row per
(group, run, checkpoint, task, metric), read from results/eval/<run>/<checkpoint>/<task>.json."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from vpt import paths
from vpt.grid import Run, checkpoint_label, train_steps

COLUMNS = ["group", "model", "method", "lr", "seed", "feedback_n", "corpus", "run", "step", "final", "tokens", "task", "metric", "value"]


def tokens_per_step(cfg: dict[str, Any]) -> int:
    """Unlabeled tokens a learner step consumes: batch_size x seq_len (no gradient accumulation)."""
    return int(cfg["train"]["batch_size"]) * int(cfg["pack"]["seq_len"])


def load_records(cfg: dict[str, Any], evaluations: list[tuple[str, Run, int | None, str]]) -> pd.DataFrame:
    """Rows for every listed (group, run, step or None for final, task) whose result file exists
    (feedback_n 0: a method without feedback);
    scalar metrics only (per-subject / per-config breakdowns stay in the JSON)."""
    rows: list[dict[str, Any]] = []
    last = train_steps(cfg)
    per_step = tokens_per_step(cfg)
    for group, run, step, task in evaluations:
        path = paths.eval_result(cfg, run.id, task, checkpoint_label(step))
        if not path.exists():
            continue
        summary = json.loads(path.read_text())
        at = last if step is None else step
        for metric, value in summary["metrics"].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and metric != "subjects":
                rows.append({"group": group, "model": run.model, "method": run.method, "lr": run.lr, "seed": run.seed,
                             "feedback_n": run.feedback_n or 0, "corpus": run.corpus, "run": run.id, "step": at,
                             "final": step is None, "tokens": at * per_step, "task": task, "metric": metric, "value": float(value)})
    return pd.DataFrame(rows, columns=COLUMNS)
