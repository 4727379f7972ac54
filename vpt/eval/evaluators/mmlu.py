"""MMLU: zero-shot multiple choice by log-likelihood; accuracy per subject, macro and micro."""

from __future__ import annotations

from typing import Any

from vpt import paths
from vpt.eval.registry import TASK_REGISTRY, Config, EvalTask, Row


def _needs(e: Config) -> list[tuple[str, str, str]]:
    return [("eval.mmlu", e["mmlu"]["dataset"], e["mmlu"]["split"])]


def _build(cfg: Config) -> tuple[dict[str, Any], dict[str, Any]]:
    from vpt.eval import tasks

    m = cfg["eval"]["mmlu"]
    return tasks.mmlu(paths.raw_split(cfg, m["dataset"], m["split"]), m["limit_per_subject"]), {"limit": None, "num_fewshot": 0, "seed": 0}


def _row(s: dict[str, Any]) -> Row:
    import numpy as np

    doc = s["doc"]
    lls = [float(r[0]) for r in s["filtered_resps"]]
    return {"subject": doc["subject"], "loglikelihoods": lls, "prediction": int(np.argmax(lls)), "gold": int(doc["answer"]),
            "correct": bool(s["acc"])}


def _summarize(metrics: dict[str, Any], rows: list[Row]) -> dict[str, Any]:
    """Micro (over examples) and macro (over subjects) accuracy instead of the harness's mean."""
    import numpy as np

    by_subject: dict[str, list[bool]] = {}
    for r in rows:
        by_subject.setdefault(r["subject"], []).append(r["correct"])
    per_subject = {s: float(np.mean(v)) for s, v in sorted(by_subject.items())}
    return {"acc_micro": float(np.mean([r["correct"] for r in rows])), "acc_macro": float(np.mean(list(per_subject.values()))),
            "subjects": len(per_subject), "per_subject": per_subject}


TASK_REGISTRY.register("mmlu", EvalTask(
    "zero-shot multiple choice by log-likelihood of ' A'..' D'; per-subject, macro, micro", ("mmlu",), _needs, _build, _row,
    _summarize))
