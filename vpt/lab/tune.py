"""Tuning on the validation split, with the same budget for every method.

lab.tuning.trials lists, per method, the same number of trials: each a dict of TrainConfig keys
over lab.train (and not lab.method_train, which is where the chosen values are then pinned).
A trial trains at lab.tuning.seed (not one of the report's seeds) and is scored on the
validation split by the primary metric at its last step; greedy decoding is skipped. The test
split is never read here.

trial(cfg, out, method, i)  -> out/tuning/<method>_t<i>/result.json
summarize(cfg, out)         -> out/tuning/tuning.json and tuning.md: every trial, the best per
                               method, and whether lab.method_train pins exactly those values
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from vpt.errors import VptError
from vpt.io import write_json, write_text
from vpt.lab import paths
from vpt.lab.config import PRIMARY_METRICS, LabConfig, trials
from vpt.lab.data import feedback_table, read_split
from vpt.lab.run import conflict_alpha, designer_alpha_table, evaluate_model, train_config
from vpt.train.config import VALUE_METHODS
from vpt.language.task import RunSpec, language_trainer


def trial(cfg: LabConfig, out: Path, method: str, i: int) -> dict[str, Any]:
    ts = trials(cfg.tuning, method)
    if not 0 <= i < len(ts):
        raise VptError(f"lab.tuning.trials.{method}: no trial {i} (it has {len(ts)})")
    data = paths.data_dir(out)
    seed = int(cfg.tuning["seed"])
    base_cfg = dataclasses.replace(cfg, method_train={})  # a trial starts from lab.train alone
    tcfg = train_config(base_cfg, method, seed, ts[i])
    tcfg.snapshot_steps = []
    rd = paths.trial_dir(out, method, i)
    spec = RunSpec(rd, paths.packed_dir(data), str(paths.tokenizer_dir(data)), learner_path=str(paths.base_model(out)),
                   feedback_table=feedback_table(read_split(data, "feedback"), "fb"))
    t0 = time.perf_counter()
    language_trainer(tcfg, spec, device="cpu").run()
    ev = evaluate_model(cfg, data, paths.final_dir(rd), "validation", greedy=False)
    result = {"method": method, "trial": i, "overrides": ts[i], "seed": seed, "split": "validation",
              "metric": cfg.primary_metric, "value": ev[cfg.primary_metric],
              "metrics": {k: v for k, v in ev.items() if not k.startswith("per_item")},
              "seconds": time.perf_counter() - t0}
    if cfg.conflict and method in VALUE_METHODS:  # did this designer single out the conflict's token?
        docs = read_split(data, "alpha_docs")
        docs = docs[docs["family"].str.startswith(cfg.target)]
        result["conflict_alpha"] = conflict_alpha(cfg, data, designer_alpha_table(cfg, data, paths.final_dir(rd), tcfg, docs))
    write_json(paths.trial_result(out, method, i), result)
    return result


def summarize(cfg: LabConfig, out: Path) -> dict[str, Any]:
    higher = PRIMARY_METRICS[cfg.primary_metric]
    res: dict[str, Any] = {"metric": cfg.primary_metric, "higher_is_better": higher, "seed": cfg.tuning.get("seed"),
                           "methods": {}}
    lines = [f"# Lab tuning: validation split, primary metric `{cfg.primary_metric}` "
             f"({'higher' if higher else 'lower'} is better), seed {cfg.tuning.get('seed')}", "",
             f"Every method had {len(trials(cfg.tuning, cfg.methods[0]))} trials. The test split was not read. Ties on the "
             "primary metric go to the higher validation answer-token accuracy.", "",
             "| method | trial | overrides of lab.train | validation " + cfg.primary_metric + " | answer loss | chosen |",
             "|---|---|---|---|---|---|"]
    for m in cfg.methods:
        rows = [json.loads(paths.trial_result(out, m, i).read_text()) for i in range(len(trials(cfg.tuning, m)))]
        # ties on the primary metric (e.g. all 0 at the conflict's token) go to the better
        # validation answer-token accuracy, then to the earlier trial
        best = max(rows, key=lambda r: ((r["value"] if higher else -r["value"]), r["metrics"].get("token_accuracy", 0.0), -r["trial"]))
        pinned = cfg.method_train.get(m, {})
        res["methods"][m] = {"trials": rows, "best": best["trial"], "best_overrides": best["overrides"],
                             "pinned": pinned, "pinned_is_best": pinned == best["overrides"]}
        for r in rows:
            lines.append(f"| {m} | {r['trial']} | `{json.dumps(r['overrides'])}` | {r['value']:.4f} | "
                         f"{r['metrics']['answer_loss']:.4f} | {'**yes**' if r is best else ''} |")
    if cfg.conflict:
        lines += ["", "At the conflict's token on the validation split: the learner's mean probability of the clean and "
                  "the conflicting token, and (value methods) the designer's mean alpha where the label is clean, "
                  "conflicting, and elsewhere (alpha documents).", "",
                  "| method | trial | p(clean) | p(conflicting) | alpha clean | alpha conflicting | alpha elsewhere |",
                  "|---|---|---|---|---|---|---|"]
        for m in cfg.methods:
            for r in res["methods"][m]["trials"]:
                a = r.get("conflict_alpha")
                al = f"{a['clean']:.3f} | {a['conflicting']:.3f} | {a['elsewhere']:.3f}" if a else " | | "
                lines.append(f"| {m} | {r['trial']} | {r['metrics'].get('conflict_p_clean', float('nan')):.3f} | "
                             f"{r['metrics'].get('conflict_p_conflicting', float('nan')):.3f} | {al} |")
    lines += ["", "lab.method_train pins the chosen values: " + ", ".join(
        f"{m} {'yes' if v['pinned_is_best'] else 'NO'}" for m, v in res["methods"].items()), ""]
    write_json(paths.tuning_json(out), res)
    write_text(paths.tuning_md(out), "\n".join(lines) + "\n")
    return res
