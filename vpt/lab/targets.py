"""Target-building logic for workflow/rules/lab.smk: which files each lab rule reads and writes
and which settings it stamps, from the validated lab preset. Kept here (and tested in
tests/test_lab.py) so that the rule file stays thin, as vpt.workflow is for the pipeline.

A rule's stamp (vpt.workflow.stamp) holds exactly the lab keys its stage reads, so editing e.g.
lab.train reruns the runs and the report but not the data or the base model, and appending a
tuning trial leaves the finished trials alone.
"""

from __future__ import annotations

from typing import Any

from vpt.lab import paths
from vpt.lab.config import trials
from vpt.train.config import METHODS

Config = dict[str, Any]

METHOD_PATTERN = "|".join(METHODS)  # the {method} wildcard of the run and tune rules
# what the data stage reads (vpt.lab.data); a conflict only when set, so configs without one
# keep their stamps
DATA_KEYS = ("target", "target_share", "heldout_templates", "corpus", "feedback", "validation", "test",
             "nontarget", "probe", "alpha_docs", "vocab_size", "seq_len")
# what a run reads over the base model's settings (vpt.lab.run.train_config and evaluate_run)
RUN_KEYS = ("train", "method_train", "eval_steps", "eval_split", "max_new_tokens")


def out_dir(cfg: Config) -> str:
    return str(cfg["lab"]["out_dir"])


def data_settings(cfg: Config) -> dict[str, Any]:
    lab = cfg["lab"]
    data = {k: lab[k] for k in DATA_KEYS}
    if lab["conflict"]:
        data["conflict"] = lab["conflict"]
    return data


def base_settings(cfg: Config) -> dict[str, Any]:
    return {"data": data_settings(cfg), "architecture": cfg["lab"]["architecture"], "base": cfg["lab"]["base"]}


def run_settings(cfg: Config) -> dict[str, Any]:
    return {**base_settings(cfg), **{k: cfg["lab"][k] for k in RUN_KEYS}}


def probe_settings(cfg: Config) -> dict[str, Any]:
    return {**run_settings(cfg), "probe_runs": cfg["lab"]["probe_runs"]}


def report_settings(cfg: Config) -> dict[str, Any]:
    lab = cfg["lab"]
    return {**run_settings(cfg), **{k: lab[k] for k in ("primary_metric", "bootstrap", "methods", "seeds")}}


def tuning_settings(cfg: Config) -> dict[str, Any]:
    """The tuning summary's: every trial's settings and the pins it checks (lab.method_train)."""
    lab = cfg["lab"]
    return {**base_settings(cfg), **{k: lab[k] for k in ("train", "tuning", "primary_metric", "method_train")}}


def trial_settings(cfg: Config, method: str, trial: int) -> dict[str, Any]:
    """One tuning trial's own settings only (not lab.method_train, which a trial ignores)."""
    lab = cfg["lab"]
    ts = trials(lab["tuning"], method)
    if not 0 <= trial < len(ts):
        raise ValueError(f"lab.tuning.trials.{method}: no trial {trial} (it has {len(ts)})")
    return {**base_settings(cfg), "train": lab["train"], "primary_metric": lab["primary_metric"],
            "seed": lab["tuning"].get("seed"), "trial": ts[trial]}


# Each stage's output: the file it writes last (arguments may be wildcards, "{method}").


def data_output(cfg: Config) -> str:
    return str(paths.data_summary(paths.data_dir(out_dir(cfg))))


def base_output(cfg: Config) -> str:
    return str(paths.base_summary(out_dir(cfg)))


def run_outputs(cfg: Config, method: str, seed: int | str) -> str:
    return str(paths.run_evals(out_dir(cfg), method, seed))


def trial_outputs(cfg: Config, method: str, trial: int | str) -> str:
    return str(paths.trial_result(out_dir(cfg), method, trial))


def tuning_output(cfg: Config) -> str:
    return str(paths.tuning_md(out_dir(cfg)))


def probe_output(cfg: Config) -> str:
    return str(paths.probe_result(out_dir(cfg)))


def report_output(cfg: Config) -> str:
    return str(paths.report(out_dir(cfg)))


def log(cfg: Config, name: str) -> str:
    return str(paths.log(out_dir(cfg), name))


def probe_inputs(cfg: Config) -> list[str]:
    """The probed run (lab.probe_runs method and seed)."""
    pr = cfg["lab"]["probe_runs"]
    return [run_outputs(cfg, pr["method"], pr["seed"])]


def tuning_inputs(cfg: Config) -> list[str]:
    """Every trial of every method."""
    lab = cfg["lab"]
    return [trial_outputs(cfg, m, i) for m in lab["methods"] for i in range(len(trials(lab["tuning"], m)))]


def report_inputs(cfg: Config) -> list[str]:
    """Every method x seed run, the probe, and the tuning summary the report states."""
    lab = cfg["lab"]
    runs = [run_outputs(cfg, m, s) for m in lab["methods"] for s in lab["seeds"]]
    return [*runs, probe_output(cfg), tuning_output(cfg)]
