"""What the lab report measures, as data: the metric curves over steps and seeds, the designers'
alpha, the value signal at the base model, and the in-distribution scores. vpt.lab.report turns
them into results/lab/report.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch

from vpt.data.synth import FAMILIES
from vpt.lab import paths
from vpt.lab.alpha import summarize
from vpt.lab.config import LabConfig
from vpt.lab.data import read_split
from vpt.lab.run import (conflict_alpha, conflict_masks, conflict_tokens, designer_alpha_table, lab_tokenizer,
                         load_evals, train_config)

METRICS = {"token_accuracy": "held-out answer-token accuracy (teacher-forced argmax)",
           "answer_loss": "held-out answer loss (lower is better)", "accuracy": "held-out greedy accuracy",
           "nontarget_token_accuracy": "non-target families' answer-token accuracy",
           "nontarget_answer_loss": "non-target families' answer loss (lower is better)"}
HIGHER_IS_BETTER = {"token_accuracy": True, "answer_loss": False, "accuracy": True, "nontarget_token_accuracy": True,
                    "nontarget_answer_loss": False, "conflict_token_accuracy": True}
CONFLICT_METRIC = {"conflict_token_accuracy": "held-out accuracy at the conflict's token"}


def metrics_of(cfg: LabConfig) -> dict[str, str]:
    """The report's metrics: the fixed ones, plus the conflict's token with a conflicting source."""
    return {**METRICS, **(CONFLICT_METRIC if cfg.conflict else {})}


def curves(cfg: LabConfig, out: Path) -> pd.DataFrame:
    rows = []
    for m in cfg.methods:
        for s in cfg.seeds:
            for r in load_evals(out, m, s)["evals"]:
                rows.append({"method": m, "seed": s, "step": r["step"], **{k: r[k] for k in metrics_of(cfg)}})
    return pd.DataFrame(rows)


def alpha_analysis(cfg: LabConfig, out: Path) -> dict[str, Any]:
    """Alpha of each vpt seed's final designer on alpha_docs (n documents of every family)."""
    data = paths.data_dir(out)
    docs = read_split(data, "alpha_docs")
    table = pd.concat([designer_alpha_table(cfg, data, paths.run_model(out, "vpt", s), train_config(cfg, "vpt", s), docs)
                       .assign(seed=s) for s in cfg.seeds], ignore_index=True)
    res = summarize(table)
    others = [f for f in FAMILIES if f != cfg.target]
    res["by_seed_target_minus_rest"] = {
        int(s): float(g[g.family == cfg.target].alpha.mean() - g[g.family.isin(others)].alpha.mean())
        for s, g in table.groupby("seed")
    }
    if cfg.conflict:  # alpha where the label is the conflict's token, clean vs as the conflicting source writes it
        prev, clean, bad = conflict_tokens(cfg)
        res["conflict"] = {"prev": prev, "clean": clean, "conflicting": bad,
                           "by_seed": {int(s): conflict_alpha(cfg, data, g) for s, g in table.groupby("seed")}}
    return res


def value_signal(cfg: LabConfig, out: Path) -> dict[str, Any]:
    """dV/dalpha per answer token at the base model (vpt.lab.signal), by family and, with a
    conflict, at the conflict's token: what the value signal asks the designer for."""
    from vpt.lab.data import feedback_table
    from vpt.lab.signal import alpha_gradient_table, mean_feedback_gradient
    from vpt.models.learner import load_learner
    from vpt.language.data import FeedbackSet
    from vpt.value.scope import scope_parameters

    tcfg = train_config(cfg, "vpt", cfg.seeds[0])
    data = paths.data_dir(out)
    model = load_learner(str(paths.base_model(out)), None, torch.float32, "sdpa").eval()
    tok = lab_tokenizer(data)
    params = [p for _, p in scope_parameters(model, tcfg.value.scope)]
    fb = tcfg.feedback
    fset = FeedbackSet(feedback_table(read_split(data, "feedback"), "fb"), tok, fb.n, fb.seed, fb.max_len)
    g_down = mean_feedback_gradient(model, params, fset, 8, fb.batch_size, seed=0)
    table = alpha_gradient_table(model, params, g_down, tok, read_split(data, "alpha_docs"), tcfg.designer.K)

    def agg(g: pd.DataFrame) -> dict[str, float]:
        x = g["dV_dalpha"]
        return {"mean": float(x.mean()), "share_positive": float((x > 0).mean()), "mean_abs": float(x.abs().mean()), "n": int(len(x))}

    res: dict[str, Any] = {"by_family": {f: agg(g) for f, g in table.groupby("family")}}
    if cfg.conflict:
        prev, clean, bad = conflict_tokens(cfg)
        names = {"conflicting": f"`{bad.strip()}` after `{prev.strip()}` (conflicting)",
                 "clean": f"`{clean.strip()}` after `{prev.strip()}` (clean)", "elsewhere": "every other answer token"}
        masks = conflict_masks(cfg, data, table)
        res["conflict"] = {names[k]: agg(table[masks[k]]) for k in ("conflicting", "clean", "elsewhere")}
    return res


def in_distribution(cfg: LabConfig, out: Path) -> pd.DataFrame:
    """Final answer loss and token accuracy on target-family problems from the *training*
    templates with unseen numbers (the probe split: never trained on, not in the feedback set).
    A secondary metric, added after seeing v1's held-out-template results; reported as such."""
    from vpt.lab.evaluate import answer_scores
    from vpt.models.learner import load_learner

    docs = read_split(paths.data_dir(out), "probe")
    tok = lab_tokenizer(paths.data_dir(out))

    def score(path: Path) -> dict[str, float]:
        loss, acc = answer_scores(load_learner(str(path), None, torch.float32, "sdpa").eval(), tok, docs)
        return {"id_answer_loss": float(loss.mean()), "id_token_accuracy": float(acc.mean())}

    rows = [{"method": m, "seed": s, **score(paths.run_model(out, m, s))} for m in cfg.methods for s in cfg.seeds]
    rows.append({"method": "base", "seed": -1, **score(paths.base_model(out))})
    return pd.DataFrame(rows)
