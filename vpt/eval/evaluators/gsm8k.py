"""GSM8K: greedy Pass@1 (gsm8k) and sampled unbiased Pass@k (gsm8k_passk), both with the
few-shot demonstrations of eval.gsm8k."""

from __future__ import annotations

from typing import Any

from vpt import paths
from vpt.eval.registry import TASK_REGISTRY, Config, EvalTask, Row


def _needs(e: Config) -> list[tuple[str, str, str]]:
    g = e["gsm8k"]
    needs = [("eval.gsm8k", g["dataset"], g["split"])]
    if g["n_shot"] > 0:
        needs.append(("eval.gsm8k", g["dataset"], g["fewshot_split"]))
    return needs


def _splits(cfg: Config) -> tuple[Any, Any]:
    g = cfg["eval"]["gsm8k"]
    return paths.raw_split(cfg, g["dataset"], g["split"]), paths.raw_split(cfg, g["dataset"], g["fewshot_split"])


def _build(cfg: Config) -> tuple[dict[str, Any], dict[str, Any]]:
    from vpt.eval import tasks

    g = cfg["eval"]["gsm8k"]
    tc = tasks.gsm8k(*_splits(cfg), g["prompt"], g["max_gen_toks"], g["stop"])
    return tc, {"limit": g["limit"], "num_fewshot": g["n_shot"], "seed": g["seed"]}


def _build_passk(cfg: Config) -> tuple[dict[str, Any], dict[str, Any]]:
    from vpt.eval import tasks

    g, p = cfg["eval"]["gsm8k"], cfg["eval"]["passk"]
    tc = tasks.gsm8k_passk(*_splits(cfg), g["prompt"], g["max_gen_toks"], g["stop"], p["n"], p["ks"], p["temperature"], p["top_p"])
    return tc, {"limit": p["limit"], "num_fewshot": g["n_shot"], "seed": g["seed"]}


def _row(s: dict[str, Any]) -> Row:
    from vpt.eval.answers import extract_gsm8k, normalize_number

    out = s["filtered_resps"][0]
    return {"completion": out, "extracted": extract_gsm8k(out), "gold": normalize_number(s["doc"]["final_answer"]),
            "correct": bool(s["exact_match"])}


def _row_passk(s: dict[str, Any]) -> Row:
    from vpt.eval.answers import extract_gsm8k, normalize_number

    outs = s["filtered_resps"][0]
    return {"completions": outs, "extracted": [extract_gsm8k(o) for o in outs], "gold": normalize_number(s["doc"]["final_answer"]),
            **{k: v for k, v in s.items() if k.startswith("pass@")}}


TASK_REGISTRY.register("gsm8k", EvalTask(
    "greedy Pass@1, exact match of the final number after normalization", ("gsm8k",), _needs, _build, _row))
TASK_REGISTRY.register("gsm8k_passk", EvalTask(
    "n samples per problem, unbiased Pass@k for k in eval.passk.ks", ("gsm8k", "passk"), _needs, _build_passk, _row_passk))
