"""OMEGA explorative: in-distribution (omega_id) and out-of-distribution (omega_ood) test sets,
paper A.4 protocol, with accuracy per problem config."""

from __future__ import annotations

from typing import Any

from vpt import paths
from vpt.eval.registry import TASK_REGISTRY, Config, EvalTask, Row


def _row(s: dict[str, Any]) -> Row:
    from vpt.eval.answers import extract_omega, normalize_omega

    doc, out = s["doc"], s["filtered_resps"][0]
    return {"config": doc.get("config"), "completion": out, "extracted": extract_omega(out),
            "gold": normalize_omega(doc["ground_truth"]), "correct": bool(s["exact_match"])}


def _summarize(metrics: dict[str, Any], rows: list[Row]) -> dict[str, Any]:
    import numpy as np

    by_config: dict[str, list[bool]] = {}
    for r in rows:
        by_config.setdefault(str(r["config"]), []).append(r["correct"])
    metrics["per_config"] = {c: float(np.mean(v)) for c, v in sorted(by_config.items())}
    return metrics


def _register(task: str, what: str, key: str) -> None:
    """One task per test set: they differ only in the eval.omega key naming the split."""

    def needs(e: Config) -> list[tuple[str, str, str]]:
        return [("eval.omega", e["omega"]["dataset"], e["omega"][key])]

    def build(cfg: Config) -> tuple[dict[str, Any], dict[str, Any]]:
        from vpt.eval import tasks

        o = cfg["eval"]["omega"]
        split = o[key]
        tc = tasks.omega(paths.raw_split(cfg, o["dataset"], split), split, o["prompt"], o["max_gen_toks"])
        return tc, {"limit": o["limit"], "num_fewshot": 0, "seed": 0}

    TASK_REGISTRY.register(task, EvalTask(f"OMEGA explorative {what} (eval.omega.{key}), paper A.4 protocol", ("omega",),
                                          needs, build, _row, _summarize))


_register("omega_id", "test_in", "id_split")
_register("omega_ood", "test_out", "ood_split")
