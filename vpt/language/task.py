"""Language as a task of the value trainer (vpt.train.task): a causal LM learner on packed rows,
soft targets over its top-K from the designer, and GSM8K-style feedback through one evaluator.

Per learner step, for each micro-batch of the packed batch (train.micro_batch_size): learner
forward to the last hidden states -> top-K candidates (chunked LM head) -> the designer's soft
target (detached; as the designer was before this step's meta update) -> CE(q, p_theta) through
the chunked head, normalised by the whole batch's labeled count -> backward. The micro-batch
losses and gradients add up to the whole batch's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from vpt.dist import World, rank_rows, sum_scalar
from vpt.errors import VptError
from vpt.io import fingerprint
from vpt.language.data import FeedbackSet, PackedBatches
from vpt.language.objective import (LanguageValueObjective, Shifted, StepTargets, chunked_learner_loss, hidden_of, labeled,
                                    ntp_loss, targets_from_topk)
from vpt.losses.chunked import Head, head_topk
from vpt.models.designer import DesignerConfig, TaskDesigner
from vpt.models.learner import add_lora, build_from_architecture, load_learner
from vpt.train.config import VALUE_METHODS, TrainConfig
from vpt.train.loop import Trainer
from vpt.train.precision import cast_parameters
from vpt.train.task import Autocast, Backward, LearnerStep, Phase, Scope, micro_batches
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
    """L_down: the answer-token loss of a batch of feedback examples (the only use of their labels).
    `micro_batch`: rows per forward (None: all); `chunk`: tokens per chunk of the LM head (None: full logits)."""

    name = "feedback"

    def __init__(self, learner: nn.Module, feedback: FeedbackSet, batch_size: int, device: torch.device,
                 weight: float = 1.0, micro_batch: int | None = None, chunk: int | None = None,
                 world: World | None = None) -> None:
        self.learner, self.feedback, self.batch_size, self.device, self.weight = learner, feedback, batch_size, device, weight
        self.micro_batch, self.chunk, self.world = micro_batch, chunk, world or World()
        rank_rows(batch_size, self.world, "train.feedback.batch_size")

    def update_head(self, generator: torch.Generator) -> dict[str, float]:
        return {}  # the LM head is the learner's own

    def losses(self, generator: torch.Generator) -> Iterator[torch.Tensor]:
        ids, labels = self.feedback.sample(self.batch_size, generator)  # the same batch on every rank
        denom = labeled(ids, labels).to(self.device)  # of the whole batch: the ranks' losses add up
        mine = rank_rows(len(ids), self.world, "train.feedback.batch_size")
        ids, labels = ids[mine], labels[mine]
        for rows in micro_batches(len(ids), self.micro_batch):
            yield ntp_loss(self.learner, ids[rows].to(self.device), labels[rows].to(self.device), self.chunk, denom)


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

    def build(self, device: torch.device, param_dtype: torch.dtype, world: World) -> None:
        """The learner from its initial weights (a resumed run's come from the checkpoint, loaded
        by the trainer onto whatever sharding this run has), data, feedback and designer."""
        from vpt.data.tokenizer import load_tokenizer

        cfg, spec = self.cfg, self.spec
        self.device, self.param_dtype, self.world = device, param_dtype, world
        self.tok = load_tokenizer(spec.tokenizer_path, spec.tokenizer_revision)
        self.data = PackedBatches(spec.packed_dir, cfg.batch_size, cfg.seed)  # the global batch, on every rank
        rank_rows(cfg.batch_size, world)  # a batch that does not split over the ranks: an error now, not at step 1
        self.units_per_batch = self.data.tokens_per_batch
        self.learner = self._learner().to(device)
        self.learner.train()
        if cfg.activation_checkpointing:  # recompute each block in backward: activations of one block at a time
            self.learner.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if cfg.method in VALUE_METHODS:
            self._init_value()

    def _learner(self) -> nn.Module:
        cfg, spec = self.cfg, self.spec
        if spec.architecture is not None:
            pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
            model = build_from_architecture(spec.architecture, len(self.tok), self.tok.eos_token_id, pad, cfg.attn_implementation)
            if self.param_dtype == torch.bfloat16:
                cast_parameters(model, self.param_dtype)  # buffers stay fp32, as a bf16 from_pretrained leaves them
            else:
                model = model.to(self.param_dtype)
        else:
            if spec.learner_path is None:
                raise VptError("no learner: set a learner path or an architecture")
            model = load_learner(spec.learner_path, spec.learner_revision, self.param_dtype, cfg.attn_implementation)
        if cfg.lora.r > 0:
            model = add_lora(model, cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout, cfg.lora.target_modules)
        return model

    def _init_value(self) -> None:
        cfg = self.cfg
        if self.spec.feedback_table is None:
            raise VptError(f"method {cfg.method!r} needs a feedback set (train.feedback)")
        if cfg.value.meta_batch_size is not None:
            raise VptError("train.value.meta_batch_size is read by the vision runs only: language's value objective "
                           "is the learner step's own batch (set it to null)")
        fb = cfg.feedback
        feedback = FeedbackSet(self.spec.feedback_table, self.tok, fb.n, fb.seed, fb.max_len)
        self.evaluators = [FeedbackEvaluator(self.learner, feedback, fb.batch_size, self.device,
                                             micro_batch=cfg.micro_batch_size, chunk=cfg.loss_chunk_tokens, world=self.world)]
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

    def learner_step(self, batch: tuple[torch.Tensor, torch.Tensor], meta: bool, autocast: Autocast,
                     phase: Phase, backward: Backward) -> LearnerStep:
        cfg = self.cfg
        ids_all, labels_all = batch  # the global batch
        denom = labeled(ids_all, labels_all).to(self.device)  # of the whole batch: micro-batch and rank losses add up
        mine = rank_rows(len(ids_all), self.world)
        ids_all, labels_all = ids_all[mine], labels_all[mine]
        losses, ces, alphas, parts = [], [], [], []
        for rows in micro_batches(len(ids_all), cfg.micro_batch_size):
            ids, labels = ids_all[rows].to(self.device), labels_all[rows].to(self.device)
            keep = self.boundary.capture(ids) if meta and self.boundary is not None else contextlib.nullcontext()
            with autocast(), keep:
                h = hidden_of(self.learner, ids)  # (b, T, H)
                head = Head.of(self.learner, cfg.loss_chunk_tokens)  # in the forward's dtypes
            b = Shifted.of(ids, labels, head.loss_dtype)
            with phase("soft_targets"):
                targets = self._targets(h, head, b)
            loss, ce = chunked_learner_loss(h, head, b, targets, denom)
            backward(loss)
            losses.append(loss.detach())
            ces.append(ce)
            if targets.alpha is not None:
                alphas.append(targets.alpha[b.mask.bool()])
            parts.append((ids, labels, targets.cand))
        loss, metrics = _total(losses), {"ce": _total(ces)}
        if alphas:
            metrics.update(_alpha_stats(torch.cat(alphas), self.world))
        if self.world.distributed:  # this rank's shares -> the batch's values
            loss, metrics["ce"] = (torch.tensor(sum_scalar(x), dtype=torch.float64) for x in (loss, metrics["ce"]))
        return LearnerStep(loss, metrics, (parts, denom) if meta else None)

    def _targets(self, h: torch.Tensor, head: Head, b: Shifted) -> StepTargets:
        if self.cfg.method == "ntp":
            return StepTargets(None, None, None)
        top_vals, cand = head_topk(h, head, self.cfg.designer.K)  # (b, T, K)
        return targets_from_topk(self.cfg.method, top_vals, cand, b, self.cfg.alpha_fixed, self.designer, head.loss_dtype)

    def value_objective(self, step: LearnerStep, scope: Scope, fast_paths: bool = True) -> list[LanguageValueObjective]:
        """One objective per micro-batch of the step (their losses add up to the batch's).
        `fast_paths=False`: without the scope-boundary replay (the benchmark's plain reference)."""
        assert self.designer is not None and step.context is not None, "value_objective needs a step taken with meta=True"
        parts, denom = step.context
        return [LanguageValueObjective(self.learner, scope, self.designer, ids, labels, cand,
                                       self.boundary if fast_paths else None, denom, self.cfg.loss_chunk_tokens)
                for ids, labels, cand in parts]

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

    def tensor_state(self) -> dict[str, Any]:
        return {}  # the feedback evaluator has no head of its own

    def load_tensor_state(self, state: dict[str, Any]) -> None:
        pass

    def save_model(self, path: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """A directory AutoModelForCausalLM / AutoTokenizer load (and evaluation reads).
        `state_dict`: the full weights (gathered from the ranks under FSDP); None: the learner's own."""
        kw = {} if state_dict is None else {"state_dict": _retied(self.learner, state_dict)}
        self.learner.save_pretrained(path, safe_serialization=True, **kw)
        self.tok.save_pretrained(path)


def _retied(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A gathered state dict holds tied weights (Qwen's embeddings and head) as separate copies;
    give every alias its first name's tensor, so save_pretrained writes it once, as it does
    for the model's own state dict."""
    first: dict[int, str] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        primary = first.setdefault(id(p), name)
        if primary != name and name in state_dict and primary in state_dict:
            state_dict[name] = state_dict[primary]
    return state_dict


def _alpha_stats(a: torch.Tensor, world: World) -> dict[str, torch.Tensor]:
    """Mean and (unbiased) std of the labeled positions' alpha over the batch (every rank's)."""
    if not world.distributed:
        return {"alpha_mean": a.mean(), "alpha_std": a.std() if a.numel() > 1 else torch.zeros(())}
    n, s1, s2 = (sum_scalar(x) for x in (a.numel(), a.double().sum(), a.double().square().sum()))
    var = (s2 - s1 * s1 / n) / (n - 1) if n > 1 else 0.0
    return {"alpha_mean": torch.tensor(s1 / n, dtype=torch.float64), "alpha_std": torch.tensor(max(var, 0.0) ** 0.5, dtype=torch.float64)}


def _total(xs: list[torch.Tensor]) -> torch.Tensor:
    """The sum of per-micro-batch parts (one part: itself, bit for bit)."""
    return xs[0] if len(xs) == 1 else torch.stack(xs).sum()


def language_trainer(cfg: TrainConfig, spec: RunSpec, device: str | torch.device | None = None) -> Trainer:
    """The value trainer on the language task of `spec`."""
    return Trainer(cfg, LanguageTask(cfg, spec), spec.run_dir, device)
