"""Train the lab's learners with the project's Trainer and evaluate them.

base: ntp from scratch on the lab corpus (one model, shared by every continued run).
run(method, seed): continued pretraining from base, identical for every method except the
target construction (compute-matched: same data order per seed, batch, optimizer, schedule and
learner steps); snapshots at eval_steps are evaluated on the evaluation split and the
non-target families, written to <run>/evals.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from vpt.config import deep_update
from vpt.data.tokenizer import load_tokenizer
from vpt.io import write_json
from vpt.lab import paths
from vpt.lab.config import LabConfig
from vpt.lab.data import feedback_table, read_split
from vpt.lab.evaluate import answer_scores, greedy_correct, single_token, token_after_accuracy
from vpt.models.learner import load_learner
from vpt.train import checkpoint as ckpt
from vpt.train.config import TrainConfig
from vpt.language.task import RunSpec, language_trainer


def lab_tokenizer(data: Path) -> PreTrainedTokenizerBase:
    """The tokenizer the corpus was packed with. Not the copy saved next to a checkpoint: loaded
    from a directory that also holds the model's config.json, AutoTokenizer picks the model's
    tokenizer class (Qwen2), which splits every digit and so tokenizes " 8" unlike training."""
    return load_tokenizer(paths.tokenizer_dir(data))


def _layered(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """The layers merged in order by vpt.config.deep_update, as several -c files are."""
    out: dict[str, Any] = {}
    for layer in layers:
        deep_update(out, layer)  # copies the layer's values, so no layer is modified
    return out


def train_config(cfg: LabConfig, method: str, seed: int, trial: dict[str, Any] | None = None) -> TrainConfig:
    """lab.train, then the method's pinned lab.method_train, then a tuning trial's overrides."""
    run = {"method": method, "seed": seed, "snapshot_steps": [s for s in cfg.eval_steps if s < cfg.steps],
           "checkpoint_every": cfg.steps, "keep_checkpoints": 1}
    return TrainConfig.from_dict(_layered(cfg.train, cfg.method_train.get(method, {}), trial or {}, run))


def pretrain_base(cfg: LabConfig, out: Path) -> dict[str, Any]:
    data = paths.data_dir(out)
    tcfg = TrainConfig.from_dict(_layered(cfg.base, {"method": "ntp", "keep_checkpoints": 1}))
    spec = RunSpec(paths.base_dir(out), paths.packed_dir(data), str(paths.tokenizer_dir(data)), architecture=cfg.architecture)
    t0 = time.perf_counter()
    summary = language_trainer(tcfg, spec, device="cpu").run()
    summary["seconds"] = time.perf_counter() - t0
    write_json(paths.base_summary(out), summary)
    return summary


def train_run(cfg: LabConfig, out: Path, method: str, seed: int) -> dict[str, Any]:
    data = paths.data_dir(out)
    fb = feedback_table(read_split(data, "feedback"), "fb")
    spec = RunSpec(paths.run_dir(out, method, seed), paths.packed_dir(data), str(paths.tokenizer_dir(data)),
                   learner_path=str(paths.base_model(out)), feedback_table=fb)
    t0 = time.perf_counter()
    trainer = language_trainer(train_config(cfg, method, seed), spec, device="cpu")
    summary = trainer.run()
    summary["train_seconds"] = time.perf_counter() - t0
    evals = evaluate_run(cfg, out, method, seed)
    summary["eval_seconds"] = evals["seconds"]
    write_json(paths.run_summary(out, method, seed), summary)
    return summary


def model_at(out: Path, method: str, seed: int, step: int, steps: int) -> Path:
    return paths.run_model(out, method, seed) if step == steps else ckpt.snapshot_dir(paths.run_dir(out, method, seed), step)


def conflict_tokens(cfg: LabConfig) -> tuple[str, str, str]:
    """(prev, clean, conflicting): the tokens where the conflict's text starts to differ, and the
    one before it. " / 100 = " vs " / 10 = " gives (" /", " 100", " 10"): split on spaces, the
    first differing word."""
    a, b = cfg.conflict["find"].split(" "), cfg.conflict["replace"].split(" ")
    k = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    if k == 0:
        raise ValueError(f"lab.conflict: {cfg.conflict['find']!r} and {cfg.conflict['replace']!r} differ in their first word")
    return " " + a[k - 1], " " + a[k], " " + b[k]


def designer_alpha_table(cfg: LabConfig, data: Path, final: Path, tcfg: TrainConfig, docs: Any) -> Any:
    """vpt.lab.alpha.alpha_table of the learner and designer saved in `final`."""
    from vpt.lab.alpha import alpha_table
    from vpt.models.designer import DesignerConfig, TaskDesigner

    model = load_learner(str(final), None, torch.float32, "sdpa").eval()
    designer = TaskDesigner(DesignerConfig.for_learner(model, tcfg.designer)).eval()
    designer.load_state_dict(torch.load(final / "designer.pt", map_location="cpu"))
    return alpha_table(model, designer, lab_tokenizer(data), docs)


def conflict_masks(cfg: LabConfig, data: Path, table: Any) -> dict[str, Any]:
    """Row masks of a per-token table (prev_id, label_id): the conflict's position with the clean
    label, with the conflicting one, and every other token."""
    tok = lab_tokenizer(data)
    pid, cid, bid = (single_token(tok, t) for t in conflict_tokens(cfg))
    at = table.prev_id == pid
    return {"clean": at & (table.label_id == cid), "conflicting": at & (table.label_id == bid), "elsewhere": ~at}


def conflict_alpha(cfg: LabConfig, data: Path, table: Any) -> dict[str, float]:
    """Mean alpha at the conflict's position with the clean label, with the conflicting one, and elsewhere."""
    return {k: float(table[m].alpha.mean()) for k, m in conflict_masks(cfg, data, table).items()}


def evaluate_model(cfg: LabConfig, data: Path, path: Path, split: str, greedy: bool = True) -> dict[str, Any]:
    model = load_learner(str(path), None, torch.float32, "sdpa").eval()
    tok = lab_tokenizer(data)
    ev, other = read_split(data, split), read_split(data, "nontarget")
    loss, tok_acc = answer_scores(model, tok, ev)
    other_loss, other_acc = answer_scores(model, tok, other)
    row: dict[str, Any] = {
        "answer_loss": float(loss.mean()), "token_accuracy": float(tok_acc.mean()),
        "nontarget_answer_loss": float(other_loss.mean()), "nontarget_token_accuracy": float(other_acc.mean()),
        "nontarget_by_family": {f: float(other_loss[(other["family"] == f).to_numpy()].mean()) for f in sorted(set(other["family"]))},
        "per_item_loss": loss.tolist(), "per_item_token_accuracy": tok_acc.tolist(),
    }
    if cfg.conflict:  # the positive control: the token the conflicting source writes differently
        prev, clean, bad = conflict_tokens(cfg)
        c = token_after_accuracy(model, tok, ev, prev, clean, bad)
        row.update(conflict_token_accuracy=c["accuracy"], conflict_token_count=c["count"],
                   conflict_p_clean=c["p_label"], conflict_p_conflicting=c["p_other"])
    if greedy:  # generation is most of the evaluation's time; tuning trials skip it
        correct, texts = greedy_correct(model, tok, ev, cfg.max_new_tokens)
        row.update(accuracy=float(correct.mean()), per_item_correct=correct.tolist(), completions=texts[:5])
    return row


def evaluate_run(cfg: LabConfig, out: Path, method: str, seed: int) -> dict[str, Any]:
    """Every eval step's snapshot (and step 0: the base model) on cfg.eval_split."""
    t0 = time.perf_counter()
    rows = []
    for step in [0, *cfg.eval_steps]:
        path = paths.base_model(out) if step == 0 else model_at(out, method, seed, step, cfg.steps)
        rows.append({"step": step, **evaluate_model(cfg, paths.data_dir(out), path, cfg.eval_split)})
    result = {"method": method, "seed": seed, "split": cfg.eval_split, "evals": rows, "seconds": time.perf_counter() - t0}
    write_json(paths.run_evals(out, method, seed), result)
    return result


def load_evals(out: Path, method: str, seed: int) -> dict[str, Any]:
    return json.loads(paths.run_evals(out, method, seed).read_text())


def final_metric(ev: dict[str, Any], key: str = "answer_loss") -> float:
    return float(np.asarray(ev["evals"][-1][key]))
