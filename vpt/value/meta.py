"""The meta step, in one place: g_down from the evaluators, the direction, the estimator, the ascent.

    g_down    = sum_i w_i grad_S L_down,i(theta)        (evaluator heads updated first; labels only here)
    direction = g_down, or a fresh random vector of the same norm (the random_feedback ablation)
    V         = direction^T grad_S L_pre(theta; phi)     (or the cosine), by the configured estimator
    phi      <- AdamW step on -V + regulariser(phi)      (clipped, finite-checked)

The trainer, the overhead benchmark, the probe, the lab and the tests all call these functions,
so the sign of the ascent and the composition of g_down are written once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from vpt.dist import all_reduce_sum_, gradient_by_backward, sum_scalar
from vpt.errors import NonFiniteError, VptError
from vpt.value.estimators import Objective, value_gradient
from vpt.value.flat import Vec, norm, random_like
from vpt.value.scope import graph_only_for


class Evaluator(Protocol):
    """A downstream feedback loss; g_down = sum_i weight_i * grad_S loss_i."""

    name: str
    weight: float

    def update_head(self, generator: torch.Generator) -> dict[str, float]:
        """Train the evaluator's own head on labeled data before g_down ({} when it has none)."""

    def losses(self, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """The downstream loss of one labeled batch, differentiable in the learner, as the losses of
        its micro-batches (they add up to the batch's; one is held at a time)."""


def downstream_gradient(
    evaluators: Sequence[Evaluator], learner: nn.Module, scope: Sequence[nn.Parameter], generator: torch.Generator,
    scope_graph: bool = True, by_backward: bool = False,
) -> tuple[list[torch.Tensor], dict[str, float]]:
    """(g_down over the scope, head metrics). `scope_graph`: the forwards record a graph only toward
    the scope (same gradient, fewer saved activations; vpt.value.scope.graph_only_for).
    `by_backward`: through loss.backward() into .grad (the learner's own .grad set aside), as FSDP
    needs (its reduce-scatter over ranks runs in backward hooks, which autograd.grad skips); each
    rank's losses are its share of the batch's, so the summed shards are the whole gradient."""
    if not evaluators:
        raise VptError("a value method needs at least one downstream evaluator")
    total: list[torch.Tensor] | None = None
    metrics: dict[str, float] = {}
    for ev in evaluators:
        metrics.update({f"{ev.name}/{k}": v for k, v in ev.update_head(generator).items()})
        g: list[torch.Tensor] | None = None
        only = graph_only_for(learner, scope) if scope_graph else contextlib.nullcontext()
        with only:
            if by_backward:
                g = [x.detach() for x in gradient_by_backward(lambda ev=ev: ev.losses(generator), scope, learner)]
            else:
                for loss in ev.losses(generator):  # one micro-batch's graph at a time
                    gi = [x.detach() for x in torch.autograd.grad(loss, list(scope))]
                    g = gi if g is None else [a + b for a, b in zip(g, gi)]
        assert g is not None, f"evaluator {ev.name!r} gave no loss"
        part = [ev.weight * x for x in g]  # weight 1.0 leaves g bit for bit as it is
        total = part if total is None else [a + b for a, b in zip(total, part)]
    assert total is not None
    return total, metrics


@dataclass
class DesignerStepConfig:
    estimator: str  # autograd | jvp | finite_difference
    kind: str = "dot"  # dot | cosine
    fd_eps: float = 1e-3
    fd_fused: bool = True
    random_direction: bool = False  # the random_feedback ablation
    grad_clip: float = 1.0


class DesignerStep:
    """One designer update on -V (+ an optional regulariser), from a given g_down."""

    def __init__(self, params: Sequence[nn.Parameter], optimizer: torch.optim.Optimizer, cfg: DesignerStepConfig) -> None:
        self.params, self.opt, self.cfg = list(params), optimizer, cfg

    def __call__(
        self, objective: Objective, scope: Sequence[torch.Tensor], g_down: Vec, generator: torch.Generator,
        regulariser: Callable[[], torch.Tensor | None] | None = None, step: int = 0,
    ) -> dict[str, float]:
        c = self.cfg
        g_norm = norm(g_down)
        if g_norm.item() == 0.0:
            raise VptError(f"step {step}: the feedback gradient is exactly zero (no labeled answer tokens "
                           f"in the feedback batch?); check train.feedback")
        direction = random_like(g_down, g_norm, generator) if c.random_direction else g_down
        mg = value_gradient(c.kind, c.estimator, objective, scope, direction, self.params, c.fd_eps, c.fd_fused)
        # Several ranks: each holds V and grad_phi V of its share of the batch (the designer is
        # replicated); the sums are the whole batch's. No-ops on one process.
        all_reduce_sum_(mg.grads)
        value = sum_scalar(mg.value) if torch.distributed.is_initialized() else mg.value
        grads = [-g for g in mg.grads]  # ascend V: descend -V
        reg = regulariser() if regulariser is not None else None
        if reg is not None:
            extra = torch.autograd.grad(reg, self.params, allow_unused=True)
            grads = [g if e is None else g + e for g, e in zip(grads, extra)]
        for p, g in zip(self.params, grads):
            p.grad = g
        d_norm = torch.nn.utils.clip_grad_norm_(self.params, c.grad_clip)
        if not torch.isfinite(d_norm):
            raise NonFiniteError(f"step {step}: non-finite designer gradient (V = {value})")
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        out = {"value": value, "g_down_norm": g_norm.item(), "designer_grad_norm": d_norm.item()}
        if reg is not None:
            out["designer_regulariser"] = reg.item()
        return out
