"""Language as a task of the value trainer (vpt.train.task): a causal LM learner on packed rows,
soft targets over its top-K from the designer, and GSM8K-style feedback through one evaluator.

Per learner step: packed batch -> learner forward -> top-K candidates -> the designer's soft
target (detached; as the designer was before this step's meta update) -> CE(q, p_theta).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from vpt.errors import VptError
from vpt.io import fingerprint
from vpt.language.data import FeedbackSet, PackedBatches
from vpt.language.objective import LanguageValueObjective, Shifted, learner_loss, logits_of, ntp_loss, step_targets
from vpt.models.designer import DesignerConfig, TaskDesigner
from vpt.models.learner import add_lora, build_from_architecture, load_learner
from vpt.train.config import VALUE_METHODS, TrainConfig
from vpt.train.loop import Trainer
from vpt.train.task import LearnerStep, Phase, Scope
from vpt.value.boundary import ScopeBoundary, scope_boundary


@dataclass
class RunSpec:
    """Where a language run reads and writes, beyond the training hyper-parameters."""

    run_dir: Path
    packed_dir: Path
    tokenizer_path: str
    tokenizer_revision: str | None = None
    learner_path: str | None = None  # a hub id or local directory ...
    learner_revision: str | None = None
    architecture: dict[str, Any] | None = None  # ... or an architecture to initialize from scratch
    feedback_table: pd.DataFrame | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # recorded in config.json


class FeedbackEvaluator:
    """L_down: the answer-token loss of a batch of feedback examples (the only use of their labels)."""

    name = "feedback"

    def __init__(self, learner: nn.Module, feedback: FeedbackSet, batch_size: int, device: torch.device,
                 weight: float = 1.0) -> None:
        self.learner, self.feedback, self.batch_size, self.device, self.weight = learner, feedback, batch_size, device, weight

    def update_head(self, generator: torch.Generator) -> dict[str, float]:
        return {}  # the LM head is the learner's own

    def loss(self, generator: torch.Generator) -> torch.Tensor:
        ids, labels = (t.to(self.device) for t in self.feedback.sample(self.batch_size, generator))
        return ntp_loss(self.learner, ids, labels)


class LanguageTask:
    throughput_unit = "tokens"

    def __init__(self, cfg: TrainConfig, spec: RunSpec) -> None:
        self.cfg, self.spec = cfg, spec
        self.designer: TaskDesigner | None = None
        self.evaluators: list[FeedbackEvaluator] = []
        self.boundary: ScopeBoundary | None = None

    # ------------------------------------------------------------------ setup
    def record(self) -> dict[str, Any]:
        """Everything that defines the run besides `train`. The input fingerprints make a rebuilt
        base model or repacked corpus at the same path count as a different run (no resuming across them)."""
        s = self.spec
        return {
            "packed_dir": str(s.packed_dir), "tokenizer": [s.tokenizer_path, s.tokenizer_revision],
            "learner": [s.learner_path, s.learner_revision], "architecture": s.architecture, **s.extra,
            "inputs": {
                "packed": fingerprint(s.packed_dir),
                "tokenizer": fingerprint(s.tokenizer_path),
                "learner": fingerprint(s.learner_path) if s.learner_path else None,
                "feedback": None if s.feedback_table is None else
                pd.util.hash_pandas_object(s.feedback_table.astype(str), index=False).sum().item(),
            },
        }

    def build(self, device: torch.device, param_dtype: torch.dtype, resume_from: Path | None) -> None:
        from vpt.data.tokenizer import load_tokenizer

        cfg, spec = self.cfg, self.spec
        self.device, self.param_dtype = device, param_dtype
        self.tok = load_tokenizer(spec.tokenizer_path, spec.tokenizer_revision)
        self.data = PackedBatches(spec.packed_dir, cfg.batch_size, cfg.seed)
        self.units_per_batch = self.data.tokens_per_batch
        self.learner = self._learner(resume_from).to(device)
        self.learner.train()
        if cfg.method in VALUE_METHODS:
            self._init_value()

    def _learner(self, resume_from: Path | None) -> nn.Module:
        cfg, spec = self.cfg, self.spec
        if resume_from is not None and cfg.lora.r == 0:
            model = load_learner(str(resume_from / "learner"), None, self.param_dtype, cfg.attn_implementation)
        elif spec.architecture is not None:
            pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
            model = build_from_architecture(spec.architecture, len(self.tok), self.tok.eos_token_id, pad, cfg.attn_implementation)
            model = model.to(self.param_dtype)
        else:
            if spec.learner_path is None:
                raise VptError("no learner: set a learner path or an architecture")
            model = load_learner(spec.learner_path, spec.learner_revision, self.param_dtype, cfg.attn_implementation)
        if cfg.lora.r > 0:
            model = add_lora(model, cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout, cfg.lora.target_modules)
            if resume_from is not None:
                from peft import set_peft_model_state_dict
                from safetensors.torch import load_file

                set_peft_model_state_dict(model, load_file(str(resume_from / "learner" / "adapter_model.safetensors")))
        return model

    def _init_value(self) -> None:
        cfg = self.cfg
        if self.spec.feedback_table is None:
            raise VptError(f"method {cfg.method!r} needs a feedback set (train.feedback)")
        fb = cfg.feedback
        feedback = FeedbackSet(self.spec.feedback_table, self.tok, fb.n, fb.seed, fb.max_len)
        self.evaluators = [FeedbackEvaluator(self.learner, feedback, fb.batch_size, self.device)]
        designer_dtype = torch.float64 if self.param_dtype == torch.float64 else torch.float32  # kept in fp32
        self.designer = TaskDesigner(DesignerConfig.for_learner(self.learner, cfg.designer)).to(self.device, designer_dtype)
        if cfg.value.scope_cache:
            self.boundary = scope_boundary(self.learner, cfg.value.scope, LanguageValueObjective)

    # ------------------------------------------------------------------ steps
    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data.next()

    @property
    def _float(self) -> torch.dtype:
        return torch.float64 if self.param_dtype == torch.float64 else torch.float32

    def learner_step(self, batch: tuple[torch.Tensor, torch.Tensor], meta: bool,
                     autocast: contextlib.AbstractContextManager[Any], phase: Phase) -> LearnerStep:
        ids, labels = (t.to(self.device) for t in batch)
        keep = self.boundary.capture(ids) if meta and self.boundary is not None else contextlib.nullcontext()
        with autocast, keep:
            logits = logits_of(self.learner, ids)
        logits = logits.to(self._float)  # (B, T, vocab)
        b = Shifted.of(ids, labels, logits.dtype)
        with phase("soft_targets"):
            targets = step_targets(self.cfg.method, logits, b, self.cfg.designer.K, self.cfg.alpha_fixed, self.designer)
        loss, ce = learner_loss(logits, b, targets)
        metrics = {"ce": ce}
        if targets.alpha is not None:
            a = targets.alpha[b.mask.bool()]
            metrics.update(alpha_mean=a.mean(), alpha_std=a.std() if a.numel() > 1 else torch.zeros(()))
        return LearnerStep(loss, metrics, (ids, labels, targets.cand))

    def value_objective(self, step: LearnerStep, scope: Scope, fast_paths: bool = True) -> LanguageValueObjective:
        """`fast_paths=False`: without the scope-boundary replay (the benchmark's plain reference)."""
        assert self.designer is not None
        ids, labels, cand = step.context
        return LanguageValueObjective(self.learner, scope, self.designer, ids, labels, cand,
                                      self.boundary if fast_paths else None)

    def end_meta_step(self) -> None:
        if self.boundary is not None:
            self.boundary.clear()

    def designer_regulariser(self) -> torch.Tensor | None:
        return None

    def after_update(self, step: int) -> None:
        pass  # no teacher or other state that follows the learner

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"data": self.data.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.data.load_state_dict(state["data"])

    def save_learner(self, path: Path) -> None:
        self.learner.save_pretrained(path, safe_serialization=True)

    def save_model(self, path: Path) -> None:
        """A directory AutoModelForCausalLM / AutoTokenizer load (and evaluation reads)."""
        self.learner.save_pretrained(path, safe_serialization=True)
        self.tok.save_pretrained(path)


def language_trainer(cfg: TrainConfig, spec: RunSpec, device: str | torch.device | None = None) -> Trainer:
    """The value trainer on the language task of `spec`."""
    return Trainer(cfg, LanguageTask(cfg, spec), spec.run_dir, device)
