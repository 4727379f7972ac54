"""The DINO learner as one module: student and EMA teacher (backbone + projection head each) and
the loss with its center.

Keeping all three in one nn.Module is what makes a run resume exactly: the trainer checkpoints
the learner's state dict (sharded) and steps only the parameters that require a gradient, so
the teacher's weights (requires_grad=False) and the center (a buffer) are saved and restored
with the student, on any number of ranks, and the optimizer sees the student alone. Every forward
goes through `DinoLearner.forward`, so FSDP's root hooks gather the teacher's shards too.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from vpt.losses.dino import DINOLoss
from vpt.vision.backbone import tokens
from vpt.vision.head import DINOHead


class DinoNet(nn.Module):
    """A backbone and its projection head: crops -> head logits of their CLS tokens."""

    def __init__(self, backbone: nn.Module, head: DINOHead) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, crops: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """V crops (B, 3, S_v, S_v) -> V (B, K) logits; crops of one size share a backbone pass."""
        out: list[torch.Tensor | None] = [None] * len(crops)
        by_size: dict[tuple[int, ...], list[int]] = {}
        for i, c in enumerate(crops):
            by_size.setdefault(tuple(c.shape[-2:]), []).append(i)
        for idx in by_size.values():
            x = torch.cat([crops[i] for i in idx])  # (len(idx) * B, 3, S, S)
            logits = self.head(tokens(self.backbone, x)["cls"])  # (len(idx) * B, K)
            for i, part in zip(idx, logits.chunk(len(idx))):
                out[i] = part
        return out  # type: ignore[return-value]


class DinoLearner(nn.Module):
    def __init__(self, backbone: nn.Module, head: DINOHead, loss: DINOLoss) -> None:
        super().__init__()
        self.student = DinoNet(backbone, head)
        self.teacher = copy.deepcopy(self.student)  # DINO starts the teacher at the student's weights
        self.teacher.requires_grad_(False)
        self.loss = loss

    def train(self, mode: bool = True) -> DinoLearner:
        super().train(mode)
        self.teacher.eval()  # no stochastic depth or RoPE augmentation in the targets
        return self

    def forward(self, global_crops: Sequence[torch.Tensor], local_crops: Sequence[torch.Tensor], teacher_temp: float,
                denominator: int | None = None, student_views: Sequence[torch.Tensor] | None = None,
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(DINO loss, the teacher's global-crop logits, detached: the center update's input).
        `student_views`: what the student sees instead of global + local crops (the masked views
        of a designer: the teacher always sees the unmasked global crops)."""
        with torch.no_grad():
            teacher = self.teacher(global_crops)  # G x (B, K)
        student = self.student(student_views if student_views is not None else [*global_crops, *local_crops])  # (G + L) x (B, K)
        return self.loss(student, teacher, teacher_temp, denominator), teacher

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """theta_t <- m theta_t + (1 - m) theta_s, parameter by parameter (sharded alike under FSDP)."""
        t = list(self.teacher.parameters())
        s = list(self.student.parameters())
        torch._foreach_lerp_(t, s, 1.0 - momentum)
