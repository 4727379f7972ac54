"""Estimators of the value V = u^T grad_S L_pre(theta; phi) and of its gradient in phi.

Modality-agnostic: a task provides a ValueObjective (how to evaluate L_pre for the current
designer), a direction u over the alignment scope S (g_down, or a random vector for the
ablation), and the designer's parameters. Three interchangeable estimators:

- `autograd`: grad_S L with create_graph, dotted with u, backpropagated to phi (a
  Hessian-vector product; needs double-backward kernels, i.e. the math attention backend).
  The reference.
- `jvp`: the forward-mode directional derivative dL/de of L(theta + e u) at e = 0, which is V,
  backpropagated to phi (or, for an objective whose phi acts through the learner, the
  forward-mode derivative of grad_phi L: TangentGradientObjective). Exact; needs forward-AD
  kernels (math attention backend).
- `finite_difference`: [grad_phi L(theta + e u) - grad_phi L(theta - e u)] / 2e and
  V ~ [L(theta + e u) - L(theta - e u)] / 2e (DARTS-style). Two learner forwards without a
  graph, no learner backward, any attention kernel (flash included).
  e = fd_eps / |u|, so the step in parameter space has length fd_eps.
  Fused (default) when the objective declares linear_in_outputs (a LinearValueObjective, e.g.
  language soft targets): the two sides are differenced first,
  D = [out(theta + e u) - out(theta - e u)] / 2e, and the designer runs forward and backward
  once on D instead of once per side. Same number up to rounding (tests/test_value.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from vpt.errors import VptError
from vpt.value.flat import Vec, dot, norm

ESTIMATORS = ("autograd", "jvp", "finite_difference")


class ValueObjective(Protocol):
    """L_pre(theta; phi) of one unlabeled batch, with what the fast paths may rely on declared:

    - input_untouched: the designer changes the learner's *target*, never its input, so every
      learner forward of the meta step sees the same input below the scope (enables the
      scope-boundary replay, vpt.value.boundary). Learned views (vision masks) are not.
    - linear_in_outputs: L is linear in learner outputs that do not depend on phi (enables the
      fused finite difference: learner_outputs / loss_of_outputs below).
    """

    input_untouched: bool
    linear_in_outputs: bool

    def loss(self, learner_graph: bool) -> torch.Tensor:
        """L_pre(theta; phi), differentiable in phi; differentiable in the scope iff learner_graph."""

    def loss_tangent(self, direction: Vec) -> torch.Tensor:
        """dL_pre(theta + e u; phi)/de at e = 0 by forward-mode AD, differentiable in phi."""


class TangentGradientObjective(ValueObjective, Protocol):
    """An objective whose phi reaches L through the learner (vision's masked views). Reverse mode
    over a forward-mode tangent fails in PyTorch's softmax, so the `jvp` estimator takes the
    forward-over-reverse route from the objective itself: the directional derivative along u of
    grad_phi L (torch.func.jvp of torch.func.grad), which is grad_phi V, exactly."""

    def tangent_gradient(self, direction: Vec, designer_params: Sequence[torch.Tensor]) -> tuple[float, list[torch.Tensor]]:
        """(V = dL/de, grad_phi V) at e = 0."""


class LinearValueObjective(ValueObjective, Protocol):
    """An objective with linear_in_outputs = True."""

    def learner_outputs(self) -> torch.Tensor:
        """The learner's outputs that L is linear in, at the current theta, without a graph."""

    def loss_of_outputs(self, outputs: torch.Tensor) -> torch.Tensor:
        """L with the learner's outputs replaced by `outputs`, differentiable in phi (linear in outputs)."""


@dataclass
class MetaGradient:
    value: float  # V = u^T g_pre
    grads: list[torch.Tensor]  # grad_phi V, one per designer parameter


@contextlib.contextmanager
def math_attention() -> Iterator[None]:
    """Second-order and forward-mode AD need the plain math attention kernel."""
    with sdpa_kernel(SDPBackend.MATH):
        yield


@contextlib.contextmanager
def perturbed(params: Sequence[torch.Tensor], direction: Vec, scale: float) -> Iterator[None]:
    """theta_S + scale * u in place, restored exactly from a copy (x + e - e != x in floating point)."""
    saved = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, u in zip(params, direction, strict=True):
            p.add_(u, alpha=scale)
    try:
        yield
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)


def _grad(out: torch.Tensor, params: Sequence[torch.Tensor], **kw: bool) -> list[torch.Tensor]:
    grads = torch.autograd.grad(out, list(params), allow_unused=True, **kw)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)]


Objective = ValueObjective | Sequence[ValueObjective]  # one batch, or its micro-batches (losses that add up)


def parts_of(objective: Objective) -> list[ValueObjective]:
    """The micro-batch objectives whose losses sum to L_pre. Every estimator is linear in L, so it
    runs part by part and adds up: one micro-batch's graph at a time, the same V and gradient."""
    return list(objective) if isinstance(objective, (list, tuple)) else [objective]  # type: ignore[list-item]


def _accumulate(total: list[torch.Tensor] | None, grads: list[torch.Tensor]) -> list[torch.Tensor]:
    return grads if total is None else [a + b for a, b in zip(total, grads)]


def meta_gradient(
    estimator: str,
    objective: Objective,
    scope: Sequence[torch.Tensor],
    direction: Vec,
    designer_params: Sequence[torch.Tensor],
    fd_eps: float = 1e-3,
    fused: bool = True,
) -> MetaGradient:
    parts = parts_of(objective)
    value, grads = 0.0, None
    if estimator in ("autograd", "jvp"):
        with math_attention():
            for part in parts:
                if estimator == "autograd":
                    v = dot(_grad(part.loss(learner_graph=True), scope, create_graph=True), direction)
                elif hasattr(part, "tangent_gradient"):  # forward over reverse (TangentGradientObjective)
                    pv, pg = part.tangent_gradient(direction, designer_params)
                    value, grads = value + pv, _accumulate(grads, pg)
                    continue
                else:
                    v = part.loss_tangent(direction)
                value, grads = value + v.item(), _accumulate(grads, _grad(v, designer_params))
        assert grads is not None
        return MetaGradient(value, grads)
    if estimator == "finite_difference":
        e = fd_eps / norm(direction).clamp(min=1e-30).item()
        if fused and all(p.linear_in_outputs for p in parts):
            outs = []
            for sign in (1.0, -1.0):
                with perturbed(scope, direction, sign * e):
                    outs.append([p.learner_outputs() for p in parts])  # type: ignore[attr-defined]
            for part, up, down in zip(parts, *outs):
                v = part.loss_of_outputs((up - down) / (2 * e))  # type: ignore[attr-defined]
                value, grads = value + v.item(), _accumulate(grads, _grad(v, designer_params))
            assert grads is not None
            return MetaGradient(value, grads)
        sides = []
        for sign in (1.0, -1.0):
            losses, side_grads = [], None
            with perturbed(scope, direction, sign * e):
                for part in parts:
                    loss = part.loss(learner_graph=False)
                    losses.append(loss.detach())
                    side_grads = _accumulate(side_grads, _grad(loss, designer_params))
            sides.append((torch.stack(losses).sum() if len(losses) > 1 else losses[0], side_grads))
        (lp, gp), (lm, gm) = sides
        assert gp is not None and gm is not None
        return MetaGradient(((lp - lm) / (2 * e)).item(), [(a - b) / (2 * e) for a, b in zip(gp, gm)])
    raise VptError(f"unknown value estimator {estimator!r}; choose one of: {', '.join(ESTIMATORS)}")


def cosine_meta_gradient(
    estimator: str,
    objective: Objective,
    scope: Sequence[torch.Tensor],
    direction: Vec,
    g_pre: Vec,
    designer_params: Sequence[torch.Tensor],
    fd_eps: float = 1e-3,
    fused: bool = True,
) -> MetaGradient:
    """The cosine variant cos = V / (|u| |g_pre|). Its gradient needs grad_phi |g_pre|, which is
    the same directional machinery along g_pre itself:
    grad cos = [grad V(u) - (V / |g_pre|^2) grad V(g_pre)] / (|u| |g_pre|)."""
    along_u = meta_gradient(estimator, objective, scope, direction, designer_params, fd_eps, fused)
    along_g = meta_gradient(estimator, objective, scope, [g.detach() for g in g_pre], designer_params, fd_eps, fused)
    nu, ng = norm(direction).item(), norm(g_pre).item()
    denom = max(nu * ng, 1e-30)
    grads = [(a - along_u.value / max(ng * ng, 1e-30) * b) / denom for a, b in zip(along_u.grads, along_g.grads)]
    return MetaGradient(along_u.value / denom, grads)


KINDS = ("dot", "cosine")


def value_gradient(
    kind: str,
    estimator: str,
    objective: Objective,
    scope: Sequence[torch.Tensor],
    direction: Vec,
    designer_params: Sequence[torch.Tensor],
    fd_eps: float = 1e-3,
    fused: bool = True,
) -> MetaGradient:
    """V (kind `dot`) or the cosine (kind `cosine`) and its gradient in phi."""
    if kind == "dot":
        return meta_gradient(estimator, objective, scope, direction, designer_params, fd_eps, fused)
    if kind == "cosine":
        g_pre: list[torch.Tensor] | None = None
        for part in parts_of(objective):
            g_pre = _accumulate(g_pre, list(torch.autograd.grad(part.loss(learner_graph=True), list(scope))))
        assert g_pre is not None
        return cosine_meta_gradient(estimator, objective, scope, direction, g_pre, designer_params, fd_eps, fused)
    raise VptError(f"unknown value kind {kind!r}; choose one of: {', '.join(KINDS)}")
