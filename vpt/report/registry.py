"""The paper's tables and figures, each registered once with what it reads and how it is built.

`vpt report NAME`, `vpt report --help`, vpt.report.build and vpt.workflow (one Snakemake rule per
report, its inputs and outputs) all read REPORT_REGISTRY. Two kinds of source:

  EvalReport   reads evaluation results of grid groups and of vision grid groups (vision.grid,
               as VisionRead); built when the config has its primary group (or vision group)
               and that group evaluates the primary task
  BenchReport  reads one benchmark's result (results/bench/<bench>.json); built when the
               config's `bench:` section has that benchmark
  LabReport    a lab's document (<results_dir>/report.md with its JSON and figures), from the
               protocol section it is named after (vision_lab); built when the config has it

Builders are named "module:function" and imported when a report is built, so listing the
reports (argparse, the Snakefile) needs neither pandas nor matplotlib.
"""

from __future__ import annotations

import importlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpt import paths
from vpt.grid import Run, checkpoint_label, group_evaluations, group_spec, model_keys
from vpt.registry import Registry, help_table
from vpt.vision.grid import VisionRun, record_group, vision_group_evaluations, vision_group_spec, vision_groups, vision_learners

Config = dict[str, Any]
EXTENSIONS = {"table": ("md", "csv", "tex"), "figure": ("png", "pdf")}


def _resolve(builder: str) -> Callable[..., Any]:
    module, function = builder.split(":")
    return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]


def model_label(key: str) -> str:
    """qwen1.5-0.5b -> 0.5B; the embedded learner 'base' -> tiny; dinov3-vitb16 -> ViT-B/16; the
    embedded base ViT -> tiny ViT."""
    if key == "base":
        return "tiny"
    if key == paths.VISION_BASE:
        return "tiny ViT"
    vit = re.fullmatch(r"vit([a-z])(\d+)", key.rsplit("-", 1)[-1])
    if vit:
        return f"ViT-{vit[1].upper()}/{vit[2]}"
    return key.rsplit("-", 1)[-1].upper()


@dataclass(frozen=True)
class VisionRead:
    """Evaluations of one vision grid group (vision.grid) that a report reads."""

    group: str
    tasks: tuple[str, ...]
    methods: tuple[str, ...] = ()  # () = every method of the group; else only these (a baseline)
    like: str | None = None  # also only the models and tasks of this vision group: a baseline drawn
    #                          beside another group's runs is read where it is shown, no more

    def evaluations(self, cfg: Config) -> list[tuple[str, VisionRun, None, str]]:
        groups = vision_groups(cfg)
        if self.group not in groups or (self.like is not None and self.like not in groups):
            return []
        tasks, models = set(self.tasks), None
        if self.like is not None:
            other = vision_group_spec(cfg, self.like)
            tasks &= set(other["tasks"])
            models = set(other["models"])
        return [(record_group(self.group), run, step, task) for run, step, task in vision_group_evaluations(cfg, self.group)
                if task in tasks and (not self.methods or run.method in self.methods) and (models is None or run.model in models)]


@dataclass(frozen=True)
class Report(ABC):
    name: str
    kind: str  # "table": results/tables/<name>.{md,csv,tex}; "figure": results/figures/<name>.{png,pdf}
    help: str  # one line, shown by `vpt report --help`

    def outputs(self, cfg: Config) -> list[str]:
        stem = paths.table_stem(cfg, self.name) if self.kind == "table" else paths.figure_stem(cfg, self.name)
        return [f"{stem}.{ext}" for ext in EXTENSIONS[self.kind]]

    @abstractmethod
    def available(self, cfg: Config) -> bool:
        """Whether this config can build it (its inputs would otherwise not exist)."""

    @abstractmethod
    def inputs(self, cfg: Config) -> list[str]:
        """The files it reads."""

    @abstractmethod
    def write(self, cfg: Config) -> tuple[list[Path], str]:
        """Build and write it: (files written, 'from <what it read>' for the log)."""


@dataclass(frozen=True)
class EvalReport(Report):
    reads: tuple[tuple[str, tuple[str, ...]], ...]  # (grid group, tasks) of the evaluations it reads
    primary: tuple[str, str] | None  # (group, task) the config must evaluate for it to be built; None: vision only
    builder: str  # "module:function", (records, layout) -> DataFrame (table) or Figure (figure)
    vision_reads: tuple[VisionRead, ...] = ()
    vision_primary: tuple[str, str] | None = None  # (vision group, task): enough on its own too

    def available(self, cfg: Config) -> bool:
        """Either half suffices: Table 1 of a language-only (or vision-only) config is its own rows."""
        if self.primary is not None:
            group, task = self.primary
            if group in cfg["grid"] and task in group_spec(cfg, group)["tasks"]:
                return True
        if self.vision_primary is not None:
            group, task = self.vision_primary
            return group in vision_groups(cfg) and task in vision_group_spec(cfg, group)["tasks"]
        return False

    def evaluations(self, cfg: Config) -> list[tuple[str, Run | VisionRun, int | None, str]]:
        """(group, run, step, task) of every evaluation it reads; a vision group as "vision.<name>"."""
        language: list[tuple[str, Run | VisionRun, int | None, str]] = [
            (group, run, step, task) for group, tasks in self.reads if group in cfg["grid"]
            for run, step, task in group_evaluations(cfg, group) if task in tasks]
        return language + [e for read in self.vision_reads for e in read.evaluations(cfg)]

    def inputs(self, cfg: Config) -> list[str]:
        return sorted({str(paths.eval_result(cfg, r.id, t, checkpoint_label(st))) for _, r, st, t in self.evaluations(cfg)})

    def build(self) -> Callable[..., Any]:
        return _resolve(self.builder)

    def write(self, cfg: Config) -> tuple[list[Path], str]:
        from vpt.report.figures import save_figure
        from vpt.report.load import load_records
        from vpt.report.records import as_layout
        from vpt.report.render import write_table

        records = load_records(cfg, self.evaluations(cfg))
        layout = as_layout({"models": {m: model_label(m) for m in [*model_keys(cfg), *vision_learners(cfg)]}})
        built = self.build()(records, layout)
        if self.kind == "table":
            written = write_table(built, None, paths.results_dir(cfg) / "tables" / self.name)
        else:
            written = save_figure(built, paths.results_dir(cfg) / "figures" / self.name)
        return written, f"from {len(records)} evaluation records"


@dataclass(frozen=True)
class BenchReport(Report):
    bench: str  # the benchmark (a key of the config's `bench:`) whose JSON it reads
    builder: str  # "module:function", (benchmark JSON path, output stem) -> files written

    def available(self, cfg: Config) -> bool:
        return self.bench in cfg.get("bench", {})

    def inputs(self, cfg: Config) -> list[str]:
        return [str(paths.bench_result(cfg, self.bench))]

    def write(self, cfg: Config) -> tuple[list[Path], str]:
        source = paths.bench_result(cfg, self.bench)
        return _resolve(self.builder)(source, paths.table_stem(cfg, self.name)), f"from {source}"


@dataclass(frozen=True)
class LabReport(Report):
    section: str  # the config section holding the lab's protocol
    module: str  # its module: lab_inputs(cfg), lab_outputs(cfg), write_lab_report(cfg)

    def available(self, cfg: Config) -> bool:
        return self.section in cfg

    def outputs(self, cfg: Config) -> list[str]:
        return list(_resolve(f"{self.module}:lab_outputs")(cfg))

    def inputs(self, cfg: Config) -> list[str]:
        return list(_resolve(f"{self.module}:lab_inputs")(cfg))

    def evaluations(self, cfg: Config) -> list[tuple[str, Run | VisionRun, int | None, str]]:
        return list(_resolve(f"{self.module}:lab_evaluations")(cfg))

    def write(self, cfg: Config) -> tuple[list[Path], str]:
        return _resolve(f"{self.module}:write_lab_report")(cfg)  # type: ignore[no-any-return]


REPORT_REGISTRY: Registry[Report] = Registry("report")


def _add(report: Report) -> None:
    REPORT_REGISTRY.register(report.name, report)


_GSM8K = ("gsm8k",)
_MAIN = ("dino", "vpt")  # the vision rows of Tables 1-2: Baseline and V-Pretraining
_DENSE = ("ade20k", "nyuv2")
_add(EvalReport("table1", "table", "GSM8K Pass@1 per size, and NYUv2 RMSE / ADE20K mIoU / ImageNet top-1 per ViT, "
                "Baseline vs V-Pretraining, best lr, mean +- std over seeds",
                (("main", _GSM8K),), ("main", "gsm8k"), "vpt.report.tables:table1",
                (VisionRead("main", ("ade20k", "nyuv2", "imagenet_linear"), _MAIN),), ("main", "ade20k")))
_add(EvalReport("table1b_decontaminated", "table", "the same on the decontaminated corpus (section 4.5)",
                (("decontaminated", _GSM8K),), ("decontaminated", "gsm8k"), "vpt.report.tables:table_decontaminated"))
_add(EvalReport("table2", "table", "OMEGA ID / OOD and MMLU, R-Oxford5k / R-Paris6k mAP, at Table 1's learning rates",
                (("main", ("gsm8k", "omega_id", "omega_ood", "mmlu")),), ("main", "omega_id"), "vpt.report.tables:table2",
                (VisionRead("main", ("ade20k", "roxford5k", "rparis6k"), _MAIN),), ("main", "roxford5k")))
_add(BenchReport("table3", "table", "computational overhead, from results/bench/overhead.json (vpt bench overhead)",
                 "overhead", "vpt.report.table3:write_table3"))
_add(EvalReport("table4", "table", "ablations (value / random feedback / uniform smoothing / self distillation), early stopping",
                (("ablation", _GSM8K),), ("ablation", "gsm8k"), "vpt.report.tables:table4"))
_add(EvalReport("table4_vision", "table", "vision ablation: value feedback / random feedback / random masks (and DINO), "
                "ADE20K mIoU, NYUv2 RMSE, ImageNet top-1", (), None, "vpt.report.vision:table4_vision",
                (VisionRead("ablation", ("ade20k", "nyuv2", "imagenet_linear")),
                 VisionRead("main", ("ade20k", "nyuv2", "imagenet_linear"), ("dino",), like="ablation")), ("ablation", "ade20k")))
_add(EvalReport("figure2_tokens", "figure", "GSM8K Pass@1 against unlabeled tokens, raw and best-so-far",
                (("tokens", _GSM8K),), ("tokens", "gsm8k"), "vpt.report.figures:plot_tokens"))
_add(EvalReport("figure2_pareto", "figure", "vision: ADE20K mIoU against NYUv2 -RMSE per feedback weighting and designer, "
                "the Pareto front", (), None, "vpt.report.pareto:plot_pareto",
                (VisionRead("pareto", _DENSE), VisionRead("main", _DENSE, ("dino",), like="pareto")), ("pareto", "ade20k")))
_add(EvalReport("figure3_coverage", "figure", "GSM8K Pass@1 against the number of feedback examples",
                (("coverage", _GSM8K), ("main", _GSM8K)), ("coverage", "gsm8k"), "vpt.report.figures:plot_coverage"))
_add(EvalReport("figure3_passk", "figure", "Pass@k against k per size",
                (("main", ("gsm8k", "gsm8k_passk")),), ("main", "gsm8k_passk"), "vpt.report.figures:plot_passk"))


_add(LabReport("lab_vision", "document", "the vision lab (config/lab_vision.yaml): tuning, paired tests against the "
                "baselines, mask statistics, the positive control -> <results_dir>/report.md", "vision_lab",
                "vpt.report.lab_vision"))


def reports_help() -> str:
    """The report list of `vpt report --help`."""
    return help_table((name, r.help) for name, r in REPORT_REGISTRY.items())
