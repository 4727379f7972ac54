"""The DINO CLS-token loss (Caron et al. 2021), with softmax centering of the teacher.

For student crops s_v (v = 0..V-1, the global crops first) and teacher global crops t_g
(g = 0..G-1), each (B, K) logits of the projection head:

    q_g = softmax((t_g - c) / tau_t)              teacher targets, centred by c (1, K)
    p_v = log_softmax(s_v / tau_s)                student log-probabilities
    L   = mean over pairs (g, v) with v != g of  mean_b  -sum_k q_g[b, k] p_v[b, k]

The same-view pairs (the student's and the teacher's view of one global crop) are skipped. The
center c lives in a buffer (checkpointed with the module) and is updated by an explicit call,
`update_center`, after the optimizer step: forward is a pure function of its inputs and c, so the
loss can be recomputed at the same state (micro-batches, the value estimators' objectives).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vpt.dist import all_reduce_sum_


def _wide(x: torch.Tensor) -> torch.Tensor:
    """At least float32 (logits under bf16 autocast); float64 stays float64."""
    return x if x.dtype == torch.float64 else x.float()


class DINOLoss(nn.Module):
    center: torch.Tensor

    def __init__(self, out_dim: int, student_temp: float = 0.1, center_momentum: float = 0.9) -> None:
        super().__init__()
        self.student_temp, self.center_momentum = student_temp, center_momentum
        self.register_buffer("center", torch.zeros(1, out_dim))

    def teacher_targets(self, teacher: torch.Tensor, teacher_temp: float) -> torch.Tensor:
        """Centred, sharpened teacher probabilities (no gradient flows to the teacher)."""
        return F.softmax((_wide(teacher.detach()) - self.center) / teacher_temp, dim=-1)

    def forward(self, student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor], teacher_temp: float,
                denominator: int | None = None) -> torch.Tensor:
        """student: V crops' (B, K) logits, the G global crops first; teacher: G crops' (B, K).
        `denominator`: rows the per-pair mean divides by (default B; the global batch when this
        call sees one micro-batch or one rank's share, so that the parts add up to the whole)."""
        targets = [self.teacher_targets(t, teacher_temp) for t in teacher]  # G x (B, K)
        logps = [F.log_softmax(_wide(s) / self.student_temp, dim=-1) for s in student]  # V x (B, K)
        rows = denominator if denominator is not None else student[0].shape[0]
        total, pairs = logps[0].new_zeros(()), 0
        for g, q in enumerate(targets):
            for v, logp in enumerate(logps):
                if v == g:  # the same view seen by both networks: no prediction task
                    continue
                total = total + (-(q * logp).sum(dim=-1)).sum() / rows
                pairs += 1
        return total / pairs

    @torch.no_grad()
    def update_center(self, teacher: Sequence[torch.Tensor], rows: int | None = None) -> None:
        """c <- m c + (1 - m) mean of the teacher logits over every global crop of the batch
        (summed over ranks: `rows` is the global batch's rows; default this process's)."""
        stacked = torch.cat([t.detach().to(self.center.dtype) for t in teacher])  # (G * b, K)
        batch_sum = stacked.sum(dim=0, keepdim=True)  # (1, K)
        all_reduce_sum_([batch_sum])
        n = len(teacher) * (rows if rows is not None else teacher[0].shape[0])
        self.center.mul_(self.center_momentum).add_(batch_sum / n, alpha=1 - self.center_momentum)
