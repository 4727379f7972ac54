"""The DINO CLS-token loss (Caron et al. 2021), with softmax or Sinkhorn-Knopp centering of the teacher.

For student crops s_v (v = 0..V-1, the global crops first) and teacher global crops t_g
(g = 0..G-1), each (B, K) logits of the projection head:

    q_g = softmax((t_g - c) / tau_t)              teacher targets, centred by c (1, K)
    p_v = log_softmax(s_v / tau_s)                student log-probabilities
    L   = mean over pairs (g, v) with v != g of  mean_b  -sum_k q_g[b, k] p_v[b, k]

The same-view pairs (the student's and the teacher's view of one global crop) are skipped. The
center c lives in a buffer (checkpointed with the module) and is updated by an explicit call,
`update_center`, after the optimizer step: forward is a pure function of its inputs and c, so the
loss can be recomputed at the same state (micro-batches, the value estimators' objectives).

centering="sinkhorn_knopp" (SwAV, DINOv2/v3) replaces the centred softmax by a balanced
assignment: Q = exp(T / tau_t) over the teacher rows of all G crops of one forward (and of every
rank), rescaled `sk_iterations` times so that each prototype gets an equal share of the rows
and each row sums to 1. It needs no running state: the balance is enforced within the batch.
Unlike the softmax targets, these depend on which rows are normalised together, so a forward
over one micro-batch gives that micro-batch's assignment, not a share of the whole batch's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vpt.dist import all_reduce_sum_
from vpt.errors import VptError

CENTERINGS = ("softmax", "sinkhorn_knopp")  # the schema's vision.ssl.centering enum


def _wide(x: torch.Tensor) -> torch.Tensor:
    """At least float32 (logits under bf16 autocast); float64 stays float64."""
    return x if x.dtype == torch.float64 else x.float()


class DINOLoss(nn.Module):
    center: torch.Tensor

    def __init__(self, out_dim: int, student_temp: float = 0.1, center_momentum: float = 0.9,
                 centering: str = "softmax", sk_iterations: int = 3) -> None:
        super().__init__()
        if centering not in CENTERINGS:
            raise VptError(f"vision.ssl.centering is {centering!r}; choose one of {', '.join(CENTERINGS)}")
        if sk_iterations < 1:
            raise VptError(f"vision.ssl.sk_iterations must be >= 1, got {sk_iterations}")
        self.student_temp, self.center_momentum = student_temp, center_momentum
        self.centering, self.sk_iterations = centering, sk_iterations
        # kept under Sinkhorn-Knopp too (unused, zero): one state-dict layout for both centerings
        self.register_buffer("center", torch.zeros(1, out_dim))

    def teacher_targets(self, teacher: torch.Tensor, teacher_temp: float) -> torch.Tensor:
        """Sharpened teacher probabilities of (N, K) logits (no gradient flows to the teacher):
        softmax of the centred logits per row, or the Sinkhorn-Knopp assignment of all N rows
        (pass every global crop's rows together, (G * B, K), as forward does)."""
        if self.centering == "sinkhorn_knopp":
            return self._sinkhorn_knopp(_wide(teacher.detach()) / teacher_temp)
        return F.softmax((_wide(teacher.detach()) - self.center) / teacher_temp, dim=-1)

    @torch.no_grad()
    def _sinkhorn_knopp(self, scores: torch.Tensor) -> torch.Tensor:
        """scores (N, K) -> Q (N, K): rows sum to 1, columns to ~N_all / K (N_all: rows of all ranks).

        Each iteration divides every prototype's column by its sum (times K), then every row by
        its sum (times N_all); the column sums are all-reduced, so the ranks normalise one global
        matrix (rows are local). Computed in float64: exp(scores) stays finite while |scores| <
        709, i.e. for the head's cosine logits at any teacher temperature above 0.0015 (float32
        would overflow below 0.0114), and the result is returned in the scores' dtype."""
        q = torch.exp(scores.double())  # (N, K)
        n_all = q.new_tensor([float(q.shape[0])])
        total = q.sum().reshape(1)
        all_reduce_sum_([n_all, total])
        q = q / total
        k = q.shape[1]
        for _ in range(self.sk_iterations):
            cols = q.sum(dim=0, keepdim=True)  # (1, K): each prototype's mass
            all_reduce_sum_([cols])
            q = q / cols / k
            q = q / q.sum(dim=1, keepdim=True) / n_all
        return (q * n_all).to(scores.dtype)

    def forward(self, student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor], teacher_temp: float,
                denominator: int | None = None) -> torch.Tensor:
        """student: V crops' (B, K) logits, the G global crops first; teacher: G crops' (B, K).
        `denominator`: rows the per-pair mean divides by (default B; the global batch when this
        call sees one micro-batch or one rank's share, so that the parts add up to the whole)."""
        if self.centering == "sinkhorn_knopp":  # one assignment over every global crop's rows
            joint = self.teacher_targets(torch.cat(list(teacher)), teacher_temp)  # (G * B, K)
            targets = list(joint.split([t.shape[0] for t in teacher]))
        else:
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
        (summed over ranks: `rows` is the global batch's rows; default this process's).
        A no-op under Sinkhorn-Knopp: its targets are balanced within each batch by the iteration
        itself, so there is no running center to keep (the buffer stays zero)."""
        if self.centering == "sinkhorn_knopp":
            return
        stacked = torch.cat([t.detach().to(self.center.dtype) for t in teacher])  # (G * b, K)
        batch_sum = stacked.sum(dim=0, keepdim=True)  # (1, K)
        all_reduce_sum_([batch_sum])
        n = len(teacher) * (rows if rows is not None else teacher[0].shape[0])
        self.center.mul_(self.center_momentum).add_(batch_sum / n, alpha=1 - self.center_momentum)
