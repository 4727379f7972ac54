"""A lab preset: the `lab:` section that vpt.config validated and completed against
workflow/schemas/lab.schema.yaml (every key, its type and its default), as a typed view.

vpt.lab.checks.check_lab holds the checks across keys that a schema cannot express; vpt.config.validate_config
runs it after the schema and reports its problems the same way (file, key, what is allowed).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vpt.config import load_config, validate_config
from vpt.data.synth import FAMILIES, N_TEMPLATES

DEFAULT_CONFIG = "config/lab.yaml"

# metric -> True where higher is better (vpt.lab.evaluate); the schema's primary_metric enum
PRIMARY_METRICS: dict[str, bool] = {"token_accuracy": True, "answer_loss": False, "accuracy": True,
                                    "conflict_token_accuracy": True}
SPLITS = ("corpus", "feedback", "validation", "test", "nontarget", "probe", "alpha_docs")


@dataclass
class SplitSpec:
    """One generated split: n problems from the seeded generator."""

    n: int
    seed: int


@dataclass
class LabConfig:
    """The validated `lab:` section; lab.schema.yaml describes each field and holds its default."""

    out_dir: str
    target: str
    target_share: float
    heldout_templates: list[int]
    corpus: SplitSpec
    feedback: SplitSpec
    validation: SplitSpec
    test: SplitSpec
    nontarget: SplitSpec
    probe: SplitSpec
    alpha_docs: SplitSpec
    vocab_size: int
    seq_len: int
    architecture: dict[str, Any]
    base: dict[str, Any]
    train: dict[str, Any]
    methods: list[str]
    seeds: list[int]
    eval_steps: list[int]
    eval_split: str
    max_new_tokens: int
    conflict: dict[str, Any]
    method_train: dict[str, dict[str, Any]]
    primary_metric: str
    tuning: dict[str, Any]
    probe_runs: dict[str, Any]
    bootstrap: int

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
    def from_dict(cls, lab: Mapping[str, Any]) -> LabConfig:
        """From a validated `lab:` section (load_lab / lab_config)."""
        kw = {k: (SplitSpec(**v) if k in SPLITS else copy.deepcopy(v)) for k, v in lab.items()}
        return cls(**kw)


def load_lab(paths: Iterable[str | os.PathLike[str]]) -> LabConfig:
    """The lab preset of one or more YAML files (later ones override earlier, as vpt.config)."""
    return LabConfig.from_dict(load_config(paths, kind="lab")["lab"])


def lab_config(lab: Mapping[str, Any], source: str = "lab") -> LabConfig:
    """A bare `lab:` section, validated and completed as a preset's (tests and pilots)."""
    return LabConfig.from_dict(validate_config({"name": "lab", "lab": copy.deepcopy(dict(lab))}, source, kind="lab")["lab"])


def trials(tuning: Mapping[str, Any], method: str) -> list[dict[str, Any]]:
    """One method's trials of a lab.tuning section ([] without tuning)."""
    return list(tuning.get("trials", {}).get(method, []))
