"""Training configuration: one dataclass per concern, built from the `train:` section."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from vpt.errors import VptError
from vpt.train.methods import METHOD_REGISTRY

# Derived from the method registry (vpt.train.methods); kept as names for the code that imports them.
METHODS = METHOD_REGISTRY.names()
VALUE_METHODS = METHOD_REGISTRY.where(lambda m: m.designer)  # methods with a designer and meta-updates
SOFT_METHODS = METHOD_REGISTRY.where(lambda m: m.soft)


@dataclass
class DesignerSection:
    K: int = 64
    alpha_max: float = 0.5
    n_layer: int = 6
    n_embd: int = 256
    n_head: int = 4
    lr: float = 1e-4
    weight_decay: float = 0.0
    grad_clip: float = 1.0


@dataclass
class ValueSection:
    meta_every: int = 8
    burn_in: int = 0
    estimator: str = "finite_difference"  # autograd | jvp | finite_difference
    scope: str = "last:2"  # last:<k> | all | adapters
    kind: str = "dot"  # dot | cosine
    fd_eps: float = 1e-3
    fd_fused: bool = True  # fast path: one designer pass on the differenced learner outputs
    scope_cache: bool = True  # fast path: meta-step learner forwards start at the scope (vpt.value.boundary)
    feedback_scope_graph: bool = True  # fast path: the feedback forward records a graph only toward the scope


@dataclass
class FeedbackSection:
    dataset: str = "gsm8k"
    split: str = "train"
    n: int = 1024
    batch_size: int = 8
    max_len: int = 512
    seed: int = 0


@dataclass
class LoraSection:
    r: int = 0  # 0: full-parameter learner
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


@dataclass
class TrainConfig:
    method: str = "ntp"
    steps: int = 100
    batch_size: int = 8
    lr: float = 1e-5
    min_lr_ratio: float = 0.1
    warmup_steps: int = 10
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    seed: int = 0
    dtype: str = "auto"  # auto: bfloat16 autocast on GPU, float32 on CPU; or float32 | float64
    attn_implementation: str = "sdpa"
    fixed_alpha: float | None = None  # uniform_smoothing / self_distill; None: alpha_max / 2
    checkpoint_every: int = 50
    snapshot_steps: list[int] = field(default_factory=list)  # evaluable models saved during training (grid eval_steps)
    keep_checkpoints: int = 2
    log_every: int = 10
    tensorboard: bool = False
    designer: DesignerSection = field(default_factory=DesignerSection)
    value: ValueSection = field(default_factory=ValueSection)
    feedback: FeedbackSection = field(default_factory=FeedbackSection)
    lora: LoraSection = field(default_factory=LoraSection)

    def __post_init__(self) -> None:
        METHOD_REGISTRY.get(self.method)  # an unknown method: VptError listing the choices
        if self.value.estimator not in ("autograd", "jvp", "finite_difference"):
            raise VptError(f"unknown estimator {self.value.estimator!r}; choose one of: autograd, jvp, finite_difference")
        if self.value.kind not in ("dot", "cosine"):
            raise VptError(f"unknown value kind {self.value.kind!r}; choose one of: dot, cosine")

    @property
    def alpha_fixed(self) -> float:
        return self.designer.alpha_max / 2 if self.fixed_alpha is None else self.fixed_alpha

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        subs = {"designer": DesignerSection, "value": ValueSection, "feedback": FeedbackSection, "lora": LoraSection}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise VptError(f"unknown train key(s) {unknown}; allowed: {', '.join(sorted(names))}")
        kw = {k: (subs[k](**v) if k in subs else v) for k, v in d.items()}
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
