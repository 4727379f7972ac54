"""Target-building logic for the Snakefile: which files each rule reads and writes, from the
validated config. Kept here (and tested) so that the .smk files stay thin."""

from __future__ import annotations

import glob
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vpt import paths, runs
from vpt.eval.registry import TASK_REGISTRY, NativeTask, task_inputs
from vpt.grid import (FEEDBACK_METHODS, RUN_ID_PATTERN, Run, all_runs, checkpoint_label, default_run, evaluations,
                      group_evaluations, group_spec, parse_run, run_train_section)
from vpt.io import write_text
from vpt.report.registry import REPORT_REGISTRY, EvalReport, LabReport
from vpt.vision.grid import VisionRun, is_vision_run_id, parse_vision_run, vision_evaluations, vision_group_runs, vision_runs  # noqa: F401
from vpt.vision.targets import (vision_base_inputs, vision_base_output, vision_base_settings, vision_model_targets,  # noqa: F401
                                vision_run_settings, vision_train_inputs)

Config = dict[str, Any]


def resolved_config_file(cfg: Config, directory: str | Path = ".snakemake/vpt") -> Path:
    """Write the validated config (defaults filled, --config overrides applied) under a
    content-addressed name and return it: every job runs the stage CLI on exactly this file."""
    text = yaml.safe_dump(cfg, sort_keys=True)
    path = Path(directory) / f"config-{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
    if not path.exists():
        write_text(path, text)
    return path


def download_inputs(cfg: Config, dataset: str) -> list[str]:
    """Local files a download reads (globs expanded now), so Snakemake reruns when they change
    and schedules the synth rule first when a file is a synthetic corpus."""
    spec = cfg["datasets"][dataset]
    files: list[str] = []
    for pattern in spec.get("data_files", {}).values():
        files += sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    if spec["schema"] == "revisitop" and "root" in spec:  # the release layout; a rendered one comes from its synth rule
        files.append(str(Path(spec["root"]) / f"gnd_{spec.get('name') or dataset}.pkl"))
    return files


def download_outputs(cfg: Config, dataset: str) -> list[str]:
    spec = cfg["datasets"][dataset]
    outs = [str(paths.raw_split(cfg, dataset, s)) for s in paths.dataset_splits(spec)]
    return outs + [str(paths.raw_manifest(cfg, dataset))]


def decontaminate_inputs(cfg: Config) -> list[str]:
    dc = cfg["decontaminate"]
    refs = [dc["corpus"], *dc["references"]]
    return sorted({str(paths.raw_split(cfg, r["dataset"], r["split"])) for r in refs})


def decontaminate_outputs(cfg: Config) -> list[str]:
    c = cfg["decontaminate"]["corpus"]
    return [
        str(paths.decontaminated_split(cfg, c["dataset"], c["split"])),
        str(paths.decontamination_report(cfg, c["dataset"])),
    ]


def tokenizer_inputs(cfg: Config) -> list[str]:
    t = cfg["tokenizer"].get("train")
    return [str(paths.raw_split(cfg, t["dataset"], t["split"]))] if t else []


def tokenizer_outputs(cfg: Config) -> list[str]:
    d = paths.tokenizer_dir(cfg)
    return [str(d / "tokenizer.json"), str(d / "tokenizer_config.json")]


def pack_inputs(cfg: Config, variant: str) -> list[str]:
    p = cfg["pack"]
    return [str(paths.corpus_split(cfg, p["dataset"], p["split"], variant)), *tokenizer_outputs(cfg)]


def pack_outputs(cfg: Config, variant: str) -> list[str]:
    d = paths.packed_dir(cfg, variant)
    return [str(d / "input_ids.bin"), str(d / "labels.bin"), str(d / "meta.json")]


def data_targets(cfg: Config) -> list[str]:
    """Everything the data stages produce: every download, the decontamination, each pack."""
    out: list[str] = []
    for dataset in cfg["datasets"]:
        out.append(str(paths.raw_manifest(cfg, dataset)))
    out.append(decontaminate_outputs(cfg)[1])
    for variant in cfg["pack"]["variants"]:
        out.append(str(paths.packed_meta(cfg, variant)))
    return out




def stamp(name: str, payload: Any, directory: str | Path = ".snakemake/vpt/stamps") -> str:
    """A small file holding exactly the settings a job uses, named by their hash and created
    when first needed.

    Jobs list it as an input, so an edit that changes a job's settings gives it a new, newer
    input file: the job reruns on modification time alone, and jobs whose settings did not
    change are left alone. This needs no .snakemake/metadata, so it also works in a fresh
    clone after `dvc pull` + `snakemake --touch`. Content addressing (rather than rewriting
    one file) keeps a dry run with an edited config from marking the real state stale; going
    back to settings that were applied before is caught by Snakemake's input-set trigger."""
    text = json.dumps(payload, sort_keys=True, indent=1) + "\n"
    path = Path(directory) / name / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"
    if not path.exists():
        write_text(path, text)
    return str(path)


def base_train_section(cfg: Config) -> dict[str, Any]:
    """The settings the base pretraining actually uses (vpt.runs.base_train_section and the
    architecture: its stamp), so editing e.g. train.lr alone (overridden by base_model.train) or
    the designer does not retrain the base."""
    return {"train": runs.base_train_section(cfg), "architecture": cfg["base_model"]["architecture"]}


def run_settings(cfg: Config, run: Run) -> dict[str, Any]:
    """Everything a grid run's training reads from the config (its stamp)."""
    learner = "base" if run.model == "base" else cfg["models"][run.model]
    return {"train": run_train_section(cfg, run), "learner": learner, "corpus": run.corpus}


def feedback_split(cfg: Config) -> str:
    fb = cfg["train"]["feedback"]
    return str(paths.raw_split(cfg, fb["dataset"], fb["split"]))


def base_inputs(cfg: Config) -> list[str]:
    ins = pack_outputs(cfg, paths.train_variant(cfg))
    if "train" in cfg["tokenizer"]:
        ins += tokenizer_outputs(cfg)
    return ins


def base_output(cfg: Config) -> str:
    return str(paths.final_state(paths.base_run_dir(cfg)))


def train_inputs(cfg: Config, run: Run) -> list[str]:
    """What a run's training reads: its packed corpus, the tokenizer, the base model (embedded)
    and, for the value methods, the feedback split."""
    ins = pack_outputs(cfg, run.corpus)
    if "train" in cfg["tokenizer"]:
        ins += tokenizer_outputs(cfg)
    if run.model == "base":
        ins.append(base_output(cfg))
    if run.method in FEEDBACK_METHODS:
        ins.append(feedback_split(cfg))
    return ins


def train_output(cfg: Config, run: Run | VisionRun) -> str:
    return str(paths.final_state(paths.run_dir(cfg, run.id)))


def run_model(cfg: Config, run_id: str) -> str:
    """The model key of a language or vision run id (slurm.resources sizes its jobs by it)."""
    return parse_vision_run(cfg, run_id).model if is_vision_run_id(run_id) else parse_run(cfg, run_id).model


def model_targets(cfg: Config) -> list[str]:
    return [train_output(cfg, r) for r in all_runs(cfg)]


def probe_inputs(cfg: Config, method: str) -> list[str]:
    run = default_run(cfg, method)
    return [train_output(cfg, run), *pack_outputs(cfg, run.corpus), feedback_split(cfg)]


def probe_targets(cfg: Config) -> list[str]:
    return [str(paths.probe_result(cfg, m)) for m in cfg["probe"]["methods"]]


def alternatives(names: Iterable[str]) -> str:
    """A Snakemake wildcard constraint matching exactly these names (e.g. a registry's)."""
    return "|".join(re.escape(n) for n in names)


def eval_settings(cfg: Config, task: str) -> dict[str, Any]:
    """The part of `eval` a task reads (its stamp): shared settings plus the task's own blocks."""
    e, entry = cfg["eval"], TASK_REGISTRY.get(task)
    if isinstance(entry, NativeTask):  # reads only its own blocks (the harness settings are not its)
        return {k: e[k] for k in entry.sections}
    return {"batch_size": e["batch_size"], "max_length": e["max_length"], **{k: e[k] for k in entry.sections}}


def eval_inputs(cfg: Config, run_id: str, checkpoint: str, task: str) -> list[str]:
    """The run's finished training (snapshots are written before final/) and the task's data."""
    from vpt.eval.run import task_config

    model = vision_base_output(cfg) if run_id == paths.VISION_BASE else str(paths.final_state(paths.run_dir(cfg, run_id)))
    if isinstance(TASK_REGISTRY.get(task), NativeTask):
        return [model, *map(str, task_inputs(cfg, task))]
    task_cfg, _ = task_config(cfg, task)
    return [model, *sorted(set(task_cfg["dataset_kwargs"]["data_files"].values()))]


def eval_output(cfg: Config, run: Run | VisionRun, step: int | None, task: str) -> str:
    return str(paths.eval_result(cfg, run.id, task, checkpoint_label(step)))


def eval_targets(cfg: Config) -> list[str]:
    return [eval_output(cfg, r, st, t) for r, st, t in [*evaluations(cfg), *vision_evaluations(cfg)]]


# Evaluation jobs: one per run and set of readers, running in one process every (checkpoint, task)
# of the run that the same reports read (and `all` asks for), so the libraries (~12 s of imports
# and set-up on a CPU) load once per job, not once per task, while a report's target (`snakemake
# results/tables/table1.md`) still builds only what the report reads. Jobs of the same checkpoints
# and tasks share a rule (an EvalSuite) whose `run` wildcard matches exactly their runs.
@dataclass(frozen=True)
class EvalSuite:
    labels: tuple[str, ...]  # checkpoint labels: snapshots in step order, then final
    tasks: tuple[str, ...]  # registry order
    runs: tuple[str, ...]  # run ids (or vision_base), sorted

    @property
    def rule(self) -> str:
        """eval_<tasks> (final only) or eval_<tasks>_at_<step>_..._final."""
        at = "" if self.labels == (paths.FINAL,) else "_at_" + "_".join(
            label if label == paths.FINAL else str(int(label.rpartition("_")[2])) for label in self.labels)
        return "eval_" + "_".join(self.tasks) + at


def eval_jobs(cfg: Config) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """(run id, checkpoint labels, tasks) of every evaluation job."""
    readers: dict[tuple[str, str, str], set[str]] = {}
    for run, step, task in [*evaluations(cfg), *vision_evaluations(cfg)]:
        readers.setdefault((run.id, checkpoint_label(step), task), set())
    for name in reports(cfg):
        for _, run, step, task in report_evaluations(cfg, name):
            readers.setdefault((run.id, checkpoint_label(step), task), set()).add(name)
    for task in vision_eval_tasks(cfg):
        readers.setdefault((paths.VISION_BASE, paths.FINAL, task), set())
    order = TASK_REGISTRY.names()
    tasks_of: dict[tuple[str, frozenset[str], str], list[str]] = {}
    for (run_id, label, task), names in readers.items():
        tasks_of.setdefault((run_id, frozenset(names), label), []).append(task)
    labels_of: dict[tuple[str, frozenset[str], tuple[str, ...]], list[str]] = {}
    for (run_id, names, label), tasks in tasks_of.items():
        labels_of.setdefault((run_id, names, tuple(sorted(tasks, key=order.index))), []).append(label)
    return sorted((run_id, tuple(sorted(labels, key=label_order)), tasks) for (run_id, _, tasks), labels in labels_of.items())


def label_order(label: str) -> tuple[int, str]:
    """Snapshots (step_NNNNNNN, zero-padded) in step order, final last."""
    return (1, label) if label == paths.FINAL else (0, label)


def eval_suites(cfg: Config) -> list[EvalSuite]:
    """The evaluation rules: the jobs grouped by their checkpoints and tasks."""
    by_kind: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] = {}
    for run_id, labels, tasks in eval_jobs(cfg):
        by_kind.setdefault((labels, tasks), []).append(run_id)
    return [EvalSuite(labels, tasks, tuple(sorted(runs))) for (labels, tasks), runs in sorted(by_kind.items())]


def eval_job_inputs(cfg: Config, run_id: str, tasks: Iterable[str]) -> list[str]:
    """The run's finished training (snapshots are written before final/) and every task's data."""
    return sorted({f for task in tasks for f in eval_inputs(cfg, run_id, paths.FINAL, task)})


def eval_model(cfg: Config, run_id: str) -> str:
    """The model key the launcher sizes an evaluation job by (slurm.resources)."""
    return paths.VISION_BASE if run_id == paths.VISION_BASE else run_model(cfg, run_id)


def vision_eval_tasks(cfg: Config) -> list[str]:
    """The vision evaluations of the embedded base ViT in `all` (vision.base_model.evaluate)."""
    return list(cfg.get("vision", {}).get("base_model", {}).get("evaluate", []))


def vision_eval_targets(cfg: Config) -> list[str]:
    return [str(paths.eval_result(cfg, paths.VISION_BASE, task)) for task in vision_eval_tasks(cfg)]


def all_targets(cfg: Config) -> list[str]:
    return (data_targets(cfg) + model_targets(cfg) + vision_model_targets(cfg) + probe_targets(cfg) + eval_targets(cfg) + vision_eval_targets(cfg)
            + report_targets(cfg) + bench_targets(cfg))


# Benchmarks in the DAG: the overhead benchmark (paper A.5) and Table 3 built from it.
def has_overhead_bench(cfg: Config) -> bool:
    return "overhead" in cfg.get("bench", {})


def bench_overhead_inputs(cfg: Config) -> list[str]:
    """What the benchmark's runs read: the default vpt run's inputs (learner, packed corpus, feedback)."""
    return train_inputs(cfg, default_run(cfg, "vpt"))


def bench_overhead_settings(cfg: Config) -> dict[str, Any]:
    run = default_run(cfg, "vpt")
    # bench.overhead.vision is the on-demand vision benchmark's (not in `all`): editing it must not
    # re-run the language benchmark
    bench = {k: v for k, v in cfg["bench"]["overhead"].items() if k != "vision"}
    return {"bench": bench, "run": run_settings(cfg, run)}


def bench_targets(cfg: Config) -> list[str]:
    """The benchmark results in `all` (Table 3, built from one, is a report: report_targets)."""
    return [str(paths.bench_result(cfg, "overhead"))] if has_overhead_bench(cfg) else []


# Reports (vpt.report.registry): each table / figure with what it reads. A report whose inputs the
# config does not produce (its groups or benchmark are not configured) is not built.
def report_evaluations(cfg: Config, name: str) -> list[tuple[str, Run | VisionRun, int | None, str]]:
    """(group, run, step, task) of every evaluation a report reads (none for a benchmark's report);
    a vision group's runs (VisionRun) under "vision.<group>", so eval_jobs groups them by reader too."""
    report = REPORT_REGISTRY.get(name)
    return report.evaluations(cfg) if isinstance(report, (EvalReport, LabReport)) else []


def reports(cfg: Config) -> list[str]:
    """The reports this config can build, in registry order."""
    return [name for name, report in REPORT_REGISTRY.items() if report.available(cfg)]


def report_inputs(cfg: Config, name: str) -> list[str]:
    return REPORT_REGISTRY.get(name).inputs(cfg)


def report_outputs(cfg: Config, name: str) -> list[str]:
    return REPORT_REGISTRY.get(name).outputs(cfg)


def lab_vision_tuning_inputs(cfg: Config) -> list[str]:
    """The vision lab's tuning trials' validation scores (target `lab_vision_tuning`)."""
    lab = cfg["vision_lab"]
    return [str(paths.eval_result(cfg, run.id, lab["tuning"]["task"])) for run in vision_group_runs(cfg, lab["tuning"]["group"])]


def report_targets(cfg: Config) -> list[str]:
    return [out for name in reports(cfg) for out in report_outputs(cfg, name)]
