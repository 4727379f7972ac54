"""Where the lab reads and writes, under lab.out_dir (`out` below): one function per artefact,
used by the stages (vpt.lab.*) and by the rules (workflow/rules/lab.smk via vpt.lab.targets), so
the two never disagree. Arguments may be Snakemake wildcards ("{method}")."""

from __future__ import annotations

import os
from pathlib import Path

from vpt.paths import final_dir  # the run layout (final/, checkpoints/, snapshots/) is vpt.paths's

PathLike = str | os.PathLike[str]


def data_dir(out: PathLike) -> Path:
    return Path(out) / "data"


def data_summary(data: PathLike) -> Path:
    """Written last by the data stage (vpt.lab.data.prepare)."""
    return Path(data) / "data.json"


def split_file(data: PathLike, name: str) -> Path:
    return Path(data) / "splits" / f"{name}.jsonl"


def tokenizer_dir(data: PathLike) -> Path:
    return Path(data) / "tokenizer"


def packed_dir(data: PathLike) -> Path:
    return Path(data) / "packed"


def base_dir(out: PathLike) -> Path:
    """The base learner, pretrained from scratch (the Trainer's run directory)."""
    return Path(out) / "base"


def base_model(out: PathLike) -> Path:
    return final_dir(base_dir(out))


def base_summary(out: PathLike) -> Path:
    return base_dir(out) / "base.json"


def run_dir(out: PathLike, method: str, seed: int | str) -> Path:
    return Path(out) / "runs" / f"{method}_s{seed}"


def run_model(out: PathLike, method: str, seed: int | str) -> Path:
    """The run's final model (the Trainer's final/ directory)."""
    return final_dir(run_dir(out, method, seed))


def run_evals(out: PathLike, method: str, seed: int | str) -> Path:
    """Written last by a run (vpt.lab.run.train_run)."""
    return run_dir(out, method, seed) / "evals.json"


def run_summary(out: PathLike, method: str, seed: int | str) -> Path:
    return run_dir(out, method, seed) / "summary.json"


def trial_dir(out: PathLike, method: str, trial: int | str) -> Path:
    return Path(out) / "tuning" / f"{method}_t{trial}"


def trial_result(out: PathLike, method: str, trial: int | str) -> Path:
    return trial_dir(out, method, trial) / "result.json"


def tuning_json(out: PathLike) -> Path:
    return Path(out) / "tuning" / "tuning.json"


def tuning_md(out: PathLike) -> Path:
    return Path(out) / "tuning" / "tuning.md"


def probe_result(out: PathLike) -> Path:
    return Path(out) / "probe.json"


def report(out: PathLike) -> Path:
    return Path(out) / "report.md"


def report_summary(out: PathLike) -> Path:
    return Path(out) / "summary.json"


def figure(out: PathLike, name: str) -> Path:
    """A report figure's stem (vpt.report.figures.save_figure writes .png and .pdf)."""
    return Path(out) / name


def log(out: PathLike, name: str) -> Path:
    return Path(out) / "logs" / f"{name}.log"
