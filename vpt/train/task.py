"""What a modality plugs into the value trainer (vpt.train.loop).

The loop owns what every modality shares: the schedule, AdamW, clipping, the finite checks, the
metrics, checkpoints and exact resume, preemption, and the meta step's order (vpt.value.meta).
A *task* owns everything that knows what a sample is:

    build        the learner, its data, the evaluators and the designer (on a device, in a dtype)
    learner_step one unlabeled batch -> the learner's loss under the designer's current task, in
                 micro-batches (train.micro_batch_size): each micro-batch's loss, normalised so
                 they add up to the batch's, goes to the loop's `backward` (finite check, backward)
    value_objective  L_pre(theta; phi) for the estimators (vpt.value.estimators): of the learner
                 step's batch, or of a separate unlabeled meta batch the task draws itself
    evaluators   the weighted downstream losses whose gradient is g_down (labels used only there)
    designer_regulariser  a term the designer adds to -V (None: none)
    after_update after each learner optimizer step (e.g. a teacher's EMA; nothing for language)
    state_dict / load_state_dict  JSON-serialisable extra state (data position, counters)
    tensor_state / load_tensor_state  replicated tensors beside the learner (vision's feedback heads
                 and their optimizers; {} for language), torch.save'd by rank 0
    save_model   a loadable model (snapshots, final/), from the full weights under FSDP

The trainer checkpoints `learner` itself (sharded, vpt.train.state) and shards it over the ranks
(FSDP2, after build); a task reads its rank's share of each batch (vpt.dist.rank_rows).

Language (vpt.language.task.LanguageTask) is the first task.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from vpt.dist import World
from vpt.value.estimators import ValueObjective
from vpt.value.meta import Evaluator

Scope = Sequence[tuple[str, nn.Parameter]]  # the named alignment-scope parameters
Phase = Callable[[str], contextlib.AbstractContextManager[Any]]  # a timer's named phase (vpt.train.timing)
Autocast = Callable[[], contextlib.AbstractContextManager[Any]]  # a fresh autocast context (or a null one) per forward
Backward = Callable[[torch.Tensor], None]  # the loop's backward of one micro-batch loss


def micro_batches(rows: int, micro: int | None) -> list[slice]:
    """Row slices of a batch of `rows` in micro-batches of `micro` rows (None: one slice; the last may be short)."""
    size = rows if micro is None else micro
    return [slice(s, min(s + size, rows)) for s in range(0, rows, size)]


@dataclass
class LearnerStep:
    """One learner forward on an unlabeled batch, before backward."""

    loss: torch.Tensor  # the learner's training loss of the whole batch (detached: backward already ran)
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)  # detached scalars for metrics.jsonl
    context: Any = None  # what the task needs to build the value objective of this batch


class Task(Protocol):
    throughput_unit: str  # metrics.jsonl reports <unit>_per_s
    units_per_batch: int
    learner: nn.Module
    designer: nn.Module | None
    evaluators: list[Evaluator]

    def record(self) -> dict[str, Any]:
        """What defines the run besides the train config: inputs and their fingerprints (resume check)."""

    def build(self, device: torch.device, param_dtype: torch.dtype, world: World) -> None:
        """The learner from its initial weights (the trainer loads a checkpoint's), data, evaluators, designer."""

    def next_batch(self) -> Any: ...

    def learner_step(self, batch: Any, meta: bool, autocast: Autocast, phase: Phase, backward: Backward) -> LearnerStep:
        """The loss of one batch, its micro-batch losses passed to `backward` one at a time.
        `meta`: a meta step follows at this theta (a task may keep state for it)."""

    def value_objective(self, step: LearnerStep, scope: Scope) -> ValueObjective:
        """L_pre(theta; phi) of the step's batch, over the named alignment scope."""

    def end_meta_step(self) -> None:
        """Drop what learner_step kept for the meta step."""

    def designer_regulariser(self) -> torch.Tensor | None: ...

    def after_update(self, step: int) -> None:
        """Called after the learner's optimizer step `step` (1-based)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def tensor_state(self) -> dict[str, Any]: ...

    def load_tensor_state(self, state: dict[str, Any]) -> None: ...

    def save_model(self, path: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None: ...
