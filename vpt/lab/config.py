"""The `lab:` section of config/lab.yaml as dataclasses, checked on load."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vpt.data.synth import FAMILIES, N_TEMPLATES
from vpt.errors import VptError
from vpt.train.config import METHODS


# metric -> True where higher is better (vpt.lab.evaluate)
PRIMARY_METRICS: dict[str, bool] = {"token_accuracy": True, "answer_loss": False, "accuracy": True,
                                    "conflict_token_accuracy": True}


@dataclass
class SplitSpec:
    """One generated split: n problems from the seeded generator."""

    n: int
    seed: int


@dataclass
class LabConfig:
    out_dir: str = "results/lab"
    target: str = "percent"  # the downstream skill: feedback and evaluation use only this family
    target_share: float = 0.15  # its share of the unlabeled stream (a known minority)
    heldout_templates: list[int] = field(default_factory=lambda: [3])  # target templates never trained on
    corpus: SplitSpec = field(default_factory=lambda: SplitSpec(6000, 100))
    feedback: SplitSpec = field(default_factory=lambda: SplitSpec(256, 200))  # labeled, training templates
    validation: SplitSpec = field(default_factory=lambda: SplitSpec(128, 300))  # tuning only
    test: SplitSpec = field(default_factory=lambda: SplitSpec(128, 400))  # fixed before any tuning
    nontarget: SplitSpec = field(default_factory=lambda: SplitSpec(128, 500))  # other families: trade-off
    probe: SplitSpec = field(default_factory=lambda: SplitSpec(128, 600))  # A.6 held-out probe batches
    alpha_docs: SplitSpec = field(default_factory=lambda: SplitSpec(32, 700))  # per family, for the alpha analysis
    vocab_size: int = 1024
    seq_len: int = 128
    architecture: dict[str, Any] = field(default_factory=dict)
    base: dict[str, Any] = field(default_factory=dict)  # TrainConfig keys of the from-scratch ntp pretraining
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig keys shared by every method
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    eval_steps: list[int] = field(default_factory=list)  # learner steps evaluated (the last one is final)
    eval_split: str = "test"  # test for the report; validation while tuning
    max_new_tokens: int = 48
    # a conflicting source (the positive control, config/lab_conflict.yaml): in a seeded `share`
    # of the target family's corpus documents, the solution's `find` is written as `replace`.
    # Feedback, validation and test stay clean. {} for none.
    conflict: dict[str, Any] = field(default_factory=dict)
    # per-method TrainConfig keys over `train` (the values the tuning chose, pinned here)
    method_train: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the pre-registered primary metric (lab.evaluate): the goal check and the tuning read it
    primary_metric: str = "token_accuracy"
    # tuning on the validation split: per method a list of trials (train-key overrides), the
    # same number of trials for every method (equal budget), run at one seed not in `seeds`
    tuning: dict[str, Any] = field(default_factory=dict)
    probe_runs: dict[str, Any] = field(default_factory=lambda: {"probes": 64, "etas": [1e-3, 1e-2, 1e-1], "batch_size": 8, "method": "vpt", "seed": 0})
    bootstrap: int = 2000

    def __post_init__(self) -> None:
        if self.target not in FAMILIES:
            raise VptError(f"lab.target: {self.target!r} is not a synth family ({', '.join(FAMILIES)})")
        n = N_TEMPLATES[self.target]
        if not self.heldout_templates or not set(self.heldout_templates) < set(range(n)):
            raise VptError(f"lab.heldout_templates: {self.heldout_templates} must be a proper subset of 0..{n - 1}")
        if not 0 < self.target_share < 1:
            raise VptError(f"lab.target_share: {self.target_share} must be in (0, 1)")
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            raise VptError(f"lab.methods: unknown {bad}; choose from {', '.join(METHODS)}")
        if len(set(self.seeds)) < 2:
            raise VptError(f"lab.seeds: {self.seeds}; a paired test needs at least 2 seeds")
        if self.conflict:
            keys = {"share", "find", "replace", "seed"}
            if set(self.conflict) != keys:
                raise VptError(f"lab.conflict: needs exactly the keys {sorted(keys)}; got {sorted(self.conflict)}")
            if not 0 < float(self.conflict["share"]) < 1 or self.conflict["find"] == self.conflict["replace"]:
                raise VptError(f"lab.conflict: share must be in (0, 1) and find != replace; got {self.conflict}")
        if self.primary_metric not in PRIMARY_METRICS:
            raise VptError(f"lab.primary_metric: {self.primary_metric!r}; choose from {', '.join(PRIMARY_METRICS)}")
        bad = sorted(set(self.method_train) - set(self.methods))
        if bad:
            raise VptError(f"lab.method_train: {bad} not in lab.methods {self.methods}")
        trials = self.tuning.get("trials", {})
        if trials:
            missing = [m for m in self.methods if m not in trials]
            sizes = {m: len(t) for m, t in trials.items()}
            if missing or len(set(sizes.values())) != 1:
                raise VptError(f"lab.tuning.trials: every method needs the same number of trials (equal budget); "
                               f"got {sizes}, missing {missing}")
            if int(self.tuning.get("seed", -1)) in self.seeds:
                raise VptError(f"lab.tuning.seed: {self.tuning.get('seed')} is one of lab.seeds {self.seeds}; tune on another seed")
        if self.primary_metric == "conflict_token_accuracy" and not self.conflict:
            raise VptError("lab.primary_metric: conflict_token_accuracy needs a lab.conflict")
        if self.train and (not self.eval_steps or self.eval_steps[-1] != int(self.train.get("steps", 0))):
            raise VptError(f"lab.eval_steps: {self.eval_steps}; must end at the last learner step, lab.train.steps "
                           f"({self.train.get('steps')}), which the report's final comparison reads")
        if self.eval_split not in ("test", "validation"):
            raise VptError(f"lab.eval_split: {self.eval_split!r}; choose test or validation")

    @property
    def train_templates(self) -> list[int]:
        return [t for t in range(N_TEMPLATES[self.target]) if t not in self.heldout_templates]

    @property
    def steps(self) -> int:
        return int(self.train["steps"])

    @property
    def families(self) -> dict[str, float]:
        """Sampling weights that give the target exactly target_share of documents in expectation."""
        others = [f for f in FAMILIES if f != self.target]
        w = self.target_share * len(others) / (1 - self.target_share)
        return {**{f: 1.0 for f in others}, self.target: w}

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "lab") -> LabConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise VptError(f"{source}: unknown lab key(s) {unknown}; allowed: {', '.join(sorted(names))}")
        kw = {k: (SplitSpec(**v) if isinstance(v, dict) and k in _SPLITS else v) for k, v in d.items()}
        return cls(**kw)


_SPLITS = ("corpus", "feedback", "validation", "test", "nontarget", "probe", "alpha_docs")


def _set(d: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for k in parents:
        d = d.setdefault(k, {})
    d[last] = value


def load_lab(path: str | Path, overrides: list[str] | None = None) -> LabConfig:
    """The lab section of `path`, with KEY=YAML overrides (pilots and tuning runs)."""
    raw = yaml.safe_load(Path(path).read_text())
    if not isinstance(raw, dict) or "lab" not in raw:
        raise VptError(f"{path}: no `lab:` section")
    lab = raw["lab"]
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise VptError(f"override {item!r}: expected KEY=VALUE")
        _set(lab, key, yaml.safe_load(value))
    return LabConfig.from_dict(lab, f"{path}: lab")
