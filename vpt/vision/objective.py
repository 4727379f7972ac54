"""L_pre(theta; phi) of vision for the value estimators: the DINO loss of a meta-SSL batch seen
through the designer's masks.

    m_g   = designer(x_g)                          soft masks (b, 1, S, S) of the G global crops
    views = [soft_mask(x_g, m_g)] + locals         (the locals masked too when the designer masks every crop)
    L     = DINO(student(views), teacher targets)  teacher logits of the unmasked crops, fixed

Deterministic, as the estimators need (they compare losses at theta +- e u and differentiate
them): the crops are drawn once, the teacher's logits are computed once with the center frozen,
and the student runs in eval mode (no drop-path, no RoPE training-time augmentation). The
designer acts on the learner's *input*, so the scope-boundary replay does not apply and the loss
is not linear in outputs that are free of phi: the finite difference runs its plain two-sided form.
For `jvp` the objective gives grad_phi V itself, forward over reverse (TangentGradientObjective).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, grad, jvp

from vpt.value.flat import Vec
from vpt.value.scope import graph_only_for
from vpt.vision.backbone import eval_mode
from vpt.vision.dino import DinoLearner
from vpt.vision.masks import soft_mask

STUDENT = "student."  # the scope's names are the learner's; the student's own lack this prefix


class VisionValueObjective:
    input_untouched = False  # the masks change the student's input: no scope-boundary replay
    linear_in_outputs = False  # the loss depends on phi through the learner: no fused finite difference

    def __init__(self, learner: DinoLearner, scope: Sequence[tuple[str, nn.Parameter]], designer: nn.Module,
                 global_crops: Sequence[torch.Tensor], local_crops: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor],
                 teacher_temp: float, denominator: int, mask_all: bool) -> None:
        """`teacher`: the teacher's G (b, K) logits of the unmasked global crops; `denominator`:
        rows of the whole meta batch (micro-batch and rank losses add up to its loss)."""
        if any(not n.startswith(STUDENT) for n, _ in scope):
            raise ValueError("the vision alignment scope must lie in the student")
        self.learner, self.scope, self.designer = learner, scope, designer
        self.globals, self.locals = list(global_crops), list(local_crops)
        self.teacher = [t.detach() for t in teacher]
        self.temp, self.denominator, self.mask_all = teacher_temp, denominator, mask_all

    def masks(self, designer_params: dict[str, torch.Tensor] | None = None) -> list[torch.Tensor]:
        """The designer's (b, 1, S, S) mask of every crop it masks (the globals; every crop with mask_all)."""
        crops = self.globals + (self.locals if self.mask_all else [])
        dtype = next(self.designer.parameters()).dtype
        if designer_params is None:
            return [self.designer(c.to(dtype)) for c in crops]
        return [functional_call(self.designer, designer_params, (c.to(dtype),)) for c in crops]

    def _loss(self, student_params: dict[str, torch.Tensor] | None = None,
              designer_params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        masks = self.masks(designer_params)
        crops = self.globals + self.locals
        views = [soft_mask(c, m.to(c.dtype)) for c, m in zip(crops, masks)] + crops[len(masks):]
        student = self.learner.student
        with eval_mode(student):
            logits = student(views) if student_params is None else functional_call(student, student_params, (views,), strict=False)
        return self.learner.loss(logits, self.teacher, self.temp, self.denominator)

    def loss(self, learner_graph: bool) -> torch.Tensor:
        if learner_graph:
            return self._loss()
        with graph_only_for(self.learner, []):  # a graph to phi only: through the student's activations, not its weights
            return self._loss()

    def loss_tangent(self, direction: Vec) -> torch.Tensor:
        raise NotImplementedError("vision's jvp runs forward over reverse: tangent_gradient")

    def tangent_gradient(self, direction: Vec, designer_params: Sequence[torch.Tensor]) -> tuple[float, list[torch.Tensor]]:
        names = [n for n, _ in self.designer.named_parameters()]
        phi = {n: p.detach() for n, p in zip(names, designer_params, strict=True)}
        theta = {n[len(STUDENT):]: p.detach() for n, p in self.scope}
        tangent = {n[len(STUDENT):]: u for (n, _), u in zip(self.scope, direction, strict=True)}

        def grad_phi(th: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
            def loss_of(ph: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
                loss = self._loss(th, ph)
                return loss, loss  # the aux keeps its forward tangent: V
            g, loss = grad(loss_of, has_aux=True)(phi)
            return g, loss

        # d/de of (grad_phi L, L) at theta + e u: (grad_phi V, V)
        _, (d_grad, d_loss) = jvp(grad_phi, (theta,), (tangent,))
        return float(d_loss.detach()), [d_grad[n] for n in names]
