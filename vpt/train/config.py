"""Training configuration: one dataclass per concern, built from the `train:` section."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from vpt.config import deep_update, section_defaults
from vpt.errors import VptError
from vpt.train.methods import LANGUAGE_METHODS, METHOD_REGISTRY

# Derived from the method registry (vpt.train.methods); kept as names for the code that imports them.
# METHODS: the language methods (the grid, the probe and the lab train only those); vision's
# methods (VISION_METHODS) are trained by `vpt train --vision-base` and the vision runs.
METHODS = LANGUAGE_METHODS
VALUE_METHODS = METHOD_REGISTRY.where(lambda m: m.designer)  # methods with a designer and meta-updates
SOFT_METHODS = METHOD_REGISTRY.where(lambda m: m.soft)


# The fields have no defaults: every default of the `train:` section is written once, in the
# schema (workflow/schemas/config.schema.yaml), and from_dict fills a partial section from there.


@dataclass
class DesignerSection:
    K: int
    alpha_max: float
    n_layer: int
    n_embd: int
    n_head: int
    lr: float
    weight_decay: float
    grad_clip: float


@dataclass
class ValueSection:
    meta_every: int
    burn_in: int
    estimator: str  # autograd | jvp | finite_difference
    scope: str  # last:<k> | all | adapters
    kind: str  # dot | cosine
    fd_eps: float
    meta_batch_size: int | None  # vision: rows of the meta-SSL batch (None: batch_size)
    fd_fused: bool  # fast path: one designer pass on the differenced learner outputs
    scope_cache: bool  # fast path: meta-step learner forwards start at the scope (vpt.value.boundary)
    feedback_scope_graph: bool  # fast path: the feedback forward records a graph only toward the scope


@dataclass
class FeedbackSection:
    dataset: str
    split: str
    n: int
    batch_size: int
    max_len: int
    seed: int


@dataclass
class LoraSection:
    r: int  # 0: full-parameter learner
    alpha: int
    dropout: float
    target_modules: list[str]


@dataclass
class TrainConfig:
    method: str
    steps: int
    batch_size: int  # global rows of one optimizer step
    micro_batch_size: int | None  # rows of one forward; None: the whole per-rank batch
    loss_chunk_tokens: int  # tokens per chunk of the LM head + loss (vpt.losses.chunked)
    activation_checkpointing: bool
    lr: float
    min_lr_ratio: float
    warmup_steps: int
    weight_decay: float
    beta1: float
    beta2: float
    grad_clip: float
    seed: int
    dtype: str  # auto: bfloat16 autocast on GPU, float32 on CPU; or float32 | float64
    weights: str  # float32 | bfloat16 (fp32 masters in the optimizer): vpt.train.precision
    attn_implementation: str
    fixed_alpha: float | None  # uniform_smoothing / self_distill; None: alpha_max / 2
    checkpoint_every: int
    snapshot_steps: list[int]  # evaluable models saved during training (grid eval_steps)
    keep_checkpoints: int
    log_every: int
    tensorboard: bool
    designer: DesignerSection
    value: ValueSection
    feedback: FeedbackSection
    lora: LoraSection

    def __post_init__(self) -> None:
        METHOD_REGISTRY.get(self.method)  # an unknown method: VptError listing the choices
        if self.value.estimator not in ("autograd", "jvp", "finite_difference"):
            raise VptError(f"unknown estimator {self.value.estimator!r}; choose one of: autograd, jvp, finite_difference")
        if self.weights == "bfloat16" and self.dtype not in ("auto", "bfloat16"):
            raise VptError(f"train.weights bfloat16 computes in bf16: it needs train.dtype auto or bfloat16, not {self.dtype!r}")
        if self.value.kind not in ("dot", "cosine"):
            raise VptError(f"unknown value kind {self.value.kind!r}; choose one of: dot, cosine")

    @property
    def alpha_fixed(self) -> float:
        return self.designer.alpha_max / 2 if self.fixed_alpha is None else self.fixed_alpha

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """From a `train:` section, validated or partial (the lab's): keys it lacks take the
        schema's defaults, so a partial section gives the trainer what `vpt config show` prints."""
        _check_keys("train", d, cls)
        for key, section in SECTIONS.items():
            _check_keys(f"train.{key}", d.get(key, {}), section)
        full = deep_update(section_defaults("train"), d)
        return cls(**{k: (SECTIONS[k](**v) if k in SECTIONS else v) for k, v in full.items()})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SECTIONS: dict[str, type] = {"designer": DesignerSection, "value": ValueSection, "feedback": FeedbackSection, "lora": LoraSection}


def _check_keys(name: str, d: dict[str, Any], cls: type) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise VptError(f"unknown {name} key(s) {unknown}; allowed: {', '.join(sorted(names))}")
