# The CPU lab (vpt.lab, config/lab.yaml): data -> base learner -> one job per method x seed ->
# the A.6 probe -> results/lab/report.md. Each job's settings are stamped (vpt.workflow.stamp),
# so editing e.g. lab.train reruns the runs and the report but not the data or the base model.
import sys

from vpt import workflow as W
from vpt.train.config import METHODS

LAB = config["lab"]
LAB_OUT = LAB.get("out_dir", "results/lab")
LAB_PY = f"'{sys.executable}' -m vpt.lab"
# the resolved lab section (--config overrides included), content-addressed: what every job reads
LAB_CONFIG = W.stamp("lab/config", {"name": config.get("name", "lab"), "lab": LAB})
_DATA_KEYS = ("target", "target_share", "heldout_templates", "corpus", "feedback", "validation", "test",
              "nontarget", "probe", "alpha_docs", "vocab_size", "seq_len")
_DATA = {k: LAB.get(k) for k in _DATA_KEYS}
if LAB.get("conflict"):  # only when set, so configs without one keep their stamps
    _DATA["conflict"] = LAB["conflict"]
_BASE = {"data": _DATA, "architecture": LAB.get("architecture"), "base": LAB.get("base")}
_RUN = {**_BASE, **{k: LAB.get(k) for k in ("train", "method_train", "eval_steps", "eval_split", "max_new_tokens")}}


def _lab(key, default):
    return LAB.get(key, default)


rule lab_report:
    input:
        evals=expand(f"{LAB_OUT}/runs/{{method}}_s{{seed}}/evals.json",
                     method=_lab("methods", list(METHODS)),
                     seed=_lab("seeds", [0, 1, 2, 3, 4])),
        probe=f"{LAB_OUT}/probe.json",
        tuning=f"{LAB_OUT}/tuning/tuning.md",  # the report states the tuning its runs come from
        stamp=W.stamp("lab/report", {**_RUN, "primary_metric": LAB.get("primary_metric"),
                                     "bootstrap": LAB.get("bootstrap"), "methods": LAB.get("methods"),
                                     "seeds": LAB.get("seeds")}),
    output:
        f"{LAB_OUT}/report.md",
    log:
        f"{LAB_OUT}/logs/report.log",
    shell:
        "{LAB_PY} report --config {LAB_CONFIG} > {log} 2>&1"


rule lab_data:
    input:
        stamp=W.stamp("lab/data", _DATA),
    output:
        f"{LAB_OUT}/data/data.json",
    log:
        f"{LAB_OUT}/logs/data.log",
    shell:
        "{LAB_PY} data --config {LAB_CONFIG} > {log} 2>&1"


rule lab_base:
    input:
        f"{LAB_OUT}/data/data.json",
        stamp=W.stamp("lab/base", _BASE),
    output:
        f"{LAB_OUT}/base/base.json",
    threads: 2
    log:
        f"{LAB_OUT}/logs/base.log",
    shell:
        "{LAB_PY} base --threads {threads} --config {LAB_CONFIG} > {log} 2>&1"


rule lab_run:
    input:
        f"{LAB_OUT}/base/base.json",
        stamp=W.stamp("lab/run", _RUN),
    output:
        f"{LAB_OUT}/runs/{{method}}_s{{seed}}/evals.json",
    wildcard_constraints:
        method=W.alternatives(METHODS),
        seed=r"\d+",
    threads: 1
    log:
        f"{LAB_OUT}/logs/run_{{method}}_s{{seed}}.log",
    shell:
        "{LAB_PY} run --method {wildcards.method} --seed {wildcards.seed} --config {LAB_CONFIG} > {log} 2>&1"


rule lab_probe:
    input:
        f"{LAB_OUT}/runs/{_lab('probe_runs', {}).get('method', 'vpt')}_s{_lab('probe_runs', {}).get('seed', 0)}/evals.json",
        stamp=W.stamp("lab/probe", {**_RUN, "probe_runs": LAB.get("probe_runs")}),
    output:
        f"{LAB_OUT}/probe.json",
    log:
        f"{LAB_OUT}/logs/probe.log",
    shell:
        "{LAB_PY} probe --config {LAB_CONFIG} > {log} 2>&1"


# Tuning (validation split only): its own target, run once before the report's runs; the chosen
# values are pinned in lab.method_train, which tuning.md checks.
_TUNE = {**_BASE, "train": LAB.get("train"), "tuning": LAB.get("tuning"), "primary_metric": LAB.get("primary_metric")}


def _trial_stamp(wildcards):
    """A trial's own settings only, so appending trials to the grid leaves the finished ones alone."""
    trials = _lab("tuning", {}).get("trials", {}).get(wildcards.method, [])
    i = int(wildcards.trial)
    if i >= len(trials):
        raise ValueError(f"lab.tuning.trials.{wildcards.method}: no trial {i} (it has {len(trials)})")
    return W.stamp("lab/tune", {**_BASE, "train": LAB.get("train"), "primary_metric": LAB.get("primary_metric"),
                                "seed": _lab("tuning", {}).get("seed"), "trial": trials[i]})


def _tuning_trials():
    trials = _lab("tuning", {}).get("trials", {})
    return [f"{LAB_OUT}/tuning/{m}_t{i}/result.json" for m in _lab("methods", []) for i in range(len(trials.get(m, [])))]


rule lab_tuning:
    input:
        _tuning_trials(),
        stamp=W.stamp("lab/tuning", {**_TUNE, "method_train": LAB.get("method_train")}),
    output:
        f"{LAB_OUT}/tuning/tuning.md",
    log:
        f"{LAB_OUT}/logs/tuning.log",
    shell:
        "{LAB_PY} tuning --config {LAB_CONFIG} > {log} 2>&1"


rule lab_tune:
    input:
        f"{LAB_OUT}/base/base.json",
        stamp=_trial_stamp,
    output:
        f"{LAB_OUT}/tuning/{{method}}_t{{trial}}/result.json",
    wildcard_constraints:
        method=W.alternatives(METHODS),
        trial=r"\d+",
    threads: 1
    log:
        f"{LAB_OUT}/logs/tune_{{method}}_t{{trial}}.log",
    shell:
        "{LAB_PY} tune --method {wildcards.method} --trial {wildcards.trial} --config {LAB_CONFIG} > {log} 2>&1"
