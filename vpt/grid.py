"""The experiment grid: named groups of training runs, each run a point
(model, method, learning rate, seed, feedback examples, corpus variant).

A run's id is its path under results/runs/ and names everything it produces:

    qwen1.5-4b/vpt/lr1e-05_s0_fb1024_raw      a value method: feedback_n is part of the id
    qwen1.5-4b/ntp/lr1e-05_s0_raw             no feedback: runs that differ only in
                                              feedback_n are one run, trained once

Groups overlap freely (Table 4's vpt run can be a Table 1 run); a run is trained once and
evaluated once per (checkpoint, task) however many groups list it. The reports know the group
names `main`, `ablation`, `tokens`, `coverage` and `decontaminated` (vpt.report).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from vpt.errors import VptError
from vpt.paths import FINAL, checkpoint_label, parse_checkpoint_label  # noqa: F401  (re-exported: the layout is vpt.paths')
from vpt.train.methods import METHOD_REGISTRY

Config = dict[str, Any]

FEEDBACK_METHODS = METHOD_REGISTRY.where(lambda m: m.feedback)  # methods that read the feedback set

RUN_ID_PATTERN = r"[^/]+/[a-z_]+/lr[0-9.e+-]+_s\d+(?:_fb\d+)?_[a-z_]+"  # a Snakemake wildcard constraint
_ID = re.compile(r"^(?P<model>[^/]+)/(?P<method>[a-z_]+)/lr(?P<lr>[0-9.e+-]+)_s(?P<seed>\d+)(?:_fb(?P<fb>\d+))?_(?P<corpus>[a-z_]+)$")


@dataclass(frozen=True, order=True)
class Run:
    model: str  # a key of `models`, or "base" (the embedded tiny learner)
    method: str
    lr: float
    seed: int
    feedback_n: int | None  # None for methods without feedback
    corpus: str  # pack variant: raw | decontaminated

    @property
    def id(self) -> str:
        fb = f"_fb{self.feedback_n}" if self.feedback_n is not None else ""
        return f"{self.model}/{self.method}/lr{self.lr!r}_s{self.seed}{fb}_{self.corpus}"

    @classmethod
    def parse(cls, run_id: str) -> Run:
        m = _ID.match(run_id)
        if not m:
            raise VptError(f"run id {run_id!r} is malformed; expected <model>/<method>/lr<lr>_s<seed>[_fb<n>]_<corpus>, "
                           "e.g. qwen1.5-4b/vpt/lr1e-05_s0_fb1024_raw")
        fb = m["fb"]
        return cls(m["model"], m["method"], float(m["lr"]), int(m["seed"]), int(fb) if fb else None, m["corpus"])


def train_steps(cfg: Config) -> int:
    return int(cfg["train"]["steps"])


def model_keys(cfg: Config) -> list[str]:
    """Learners a run may name: the config's `models`, plus "base" with the embedded base model."""
    return (["base"] if "base_model" in cfg else []) + list(cfg["models"])


def run_choices(cfg: Config) -> dict[str, list[str]]:
    """What a run's model and corpus may be: a learner of the config, a packed variant. The one
    rule behind both run ids (parse_run) and the grid's groups (check_grid)."""
    return {"model": model_keys(cfg), "corpus": list(cfg["pack"]["variants"])}


def parse_run(cfg: Config, run_id: str) -> Run:
    """The run a run id names, checked against the config (Run.parse checks only its form)."""
    run = Run.parse(run_id)
    for field, choices in run_choices(cfg).items():
        value = getattr(run, field)
        if value not in choices:
            what = "is not in the config" if field == "model" else "is not packed"
            raise VptError(f"run {run_id!r}: {field} {value!r} {what}; choose one of: {', '.join(choices)}")
    return run


def default_corpus(cfg: Config) -> str:
    """The packed variant a group trains on unless it says: raw when packed (the paper's main
    runs), else the only one there is."""
    variants = cfg["pack"]["variants"]
    return "raw" if "raw" in variants else variants[0]


def make_run(cfg: Config, model: str, method: str, lr: float, seed: int, feedback_n: int | None, corpus: str) -> Run:
    return Run(model, method, float(lr), int(seed), int(feedback_n) if method in FEEDBACK_METHODS and feedback_n else None, corpus)


def default_run(cfg: Config, method: str) -> Run:
    """The run `vpt train --method M` means: the config's learner, train.lr, seed and feedback n."""
    t = cfg["train"]
    return make_run(cfg, cfg["learner"], method, t["lr"], t["seed"], t["feedback"]["n"], default_corpus(cfg))


def group_spec(cfg: Config, name: str) -> dict[str, Any]:
    """A grid group with its defaults resolved from the rest of the config."""
    g = cfg["grid"][name]
    t = cfg["train"]
    return {
        "models": g.get("models") or [cfg["learner"]],
        "methods": g["methods"],
        "lrs": g.get("lrs") or [t["lr"]],
        "seeds": g.get("seeds") or [t["seed"]],
        "feedback_n": g.get("feedback_n") or [t["feedback"]["n"]],
        "corpus": g.get("corpus") or default_corpus(cfg),
        "tasks": g.get("tasks") or cfg["eval"]["tasks"],
        "eval_steps": sorted(g.get("eval_steps") or []),
    }


def group_runs(cfg: Config, name: str) -> list[Run]:
    s = group_spec(cfg, name)
    runs = {make_run(cfg, mo, me, lr, seed, n, s["corpus"])
            for mo in s["models"] for me in s["methods"] for lr in s["lrs"] for seed in s["seeds"] for n in s["feedback_n"]}
    return sorted(runs)


def all_runs(cfg: Config) -> list[Run]:
    return sorted({r for g in cfg["grid"] for r in group_runs(cfg, g)})


def snapshot_steps(cfg: Config, run: Run) -> list[int]:
    """Steps at which the run saves an evaluable model: every eval_steps of a group listing it."""
    steps = {s for g in cfg["grid"] if run in group_runs(cfg, g) for s in group_spec(cfg, g)["eval_steps"]}
    return sorted(s for s in steps if s < train_steps(cfg))  # the last step is the final model


def group_evaluations(cfg: Config, name: str) -> list[tuple[Run, int | None, str]]:
    """(run, checkpoint step or None for final, task) of every evaluation one group asks for."""
    s = group_spec(cfg, name)
    steps = [None, *(st for st in s["eval_steps"] if st < train_steps(cfg))]  # the last step is the final model
    return [(run, step, task) for run in group_runs(cfg, name) for task in s["tasks"] for step in steps]


def evaluations(cfg: Config) -> list[tuple[Run, int | None, str]]:
    """Every (run, checkpoint step or None for final, task) the grid evaluates, without repeats."""
    out = {e for g in cfg["grid"] for e in group_evaluations(cfg, g)}
    return sorted(out, key=lambda e: (e[0].id, -1 if e[1] is None else e[1], e[2]))


def run_train_section(cfg: Config, run: Run) -> dict[str, Any]:
    """The `train` section this run uses: the shared one with the run's method, lr, seed,
    feedback n and snapshot steps put in."""
    import copy

    train = copy.deepcopy(cfg["train"])
    train.update(method=run.method, lr=run.lr, seed=run.seed, snapshot_steps=snapshot_steps(cfg, run))
    if run.feedback_n is not None:
        train["feedback"]["n"] = run.feedback_n
    return train


def check_grid(cfg: Config) -> list[str]:
    """Cross-references of the grid the schema cannot express (used by vpt.config)."""
    problems: list[str] = []
    choices = run_choices(cfg)
    models, variants = choices["model"], choices["corpus"]
    steps = train_steps(cfg)
    for name, g in cfg["grid"].items():
        for m in g.get("models") or [cfg["learner"]]:
            if m not in models:
                problems.append(f"key 'grid.{name}.models': {m!r} is not a model; choose one of: {', '.join(models)}")
        corpus = g.get("corpus")
        if corpus and corpus not in variants:
            problems.append(f"key 'grid.{name}.corpus': {corpus!r} is not packed; choose one of: {', '.join(variants)}")
        for s in g.get("eval_steps") or []:
            if s > steps:
                problems.append(f"key 'grid.{name}.eval_steps': step {s} is beyond train.steps = {steps}")
    return problems
