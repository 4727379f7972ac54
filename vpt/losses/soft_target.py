"""Soft-target cross-entropy over a candidate set.

Target at position t: q_t = (1 - alpha_t) delta_{y_t} + alpha_t p_t, with p_t supported on the
K candidate ids. Loss: CE(q_t, p_theta,t) averaged over labeled positions, from the log-probs of
y_t and the K candidates only (`target_logprobs`: the cross-entropy kernel, for ntp and the
feedback loss; `candidate_logprobs`: logit - logsumexp gathers); no dense [B, T, vocab] target
is formed. The loss is written
log p(y) + alpha (sum_k p_k log p(c_k) - log p(y)), so with alpha = 0 it and its gradient are
bit-identical to next-token cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vpt.data.pack import IGNORE


def candidate_logprobs(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """log softmax(logits) at `ids`. logits: (B, T, V); ids: (B, T, M) -> (B, T, M)."""
    lse = torch.logsumexp(logits, dim=-1, keepdim=True)  # (B, T, 1)
    return logits.gather(-1, ids) - lse


def target_logprobs(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T) log p_theta(y_t) by F.cross_entropy (log-softmax + NLL in one kernel); 0 where mask is 0."""
    t = target.masked_fill(mask == 0, IGNORE)
    return -F.cross_entropy(logits.flatten(0, -2), t.flatten(), ignore_index=IGNORE, reduction="none").view(target.shape)


def soft_target_ce(
    logp_y: torch.Tensor,  # (B, T) log p_theta(y_t)
    mask: torch.Tensor,  # (B, T) 1 where position t has a label
    alpha: torch.Tensor | None = None,  # (B, T)
    probs: torch.Tensor | None = None,  # (B, T, K)
    logp_c: torch.Tensor | None = None,  # (B, T, K) log p_theta of the candidates
    denom: torch.Tensor | None = None,  # labeled positions of the whole batch (micro-batches); None: mask.sum()
) -> torch.Tensor:
    per_token = logp_y
    if alpha is not None:
        assert probs is not None and logp_c is not None
        per_token = logp_y + alpha * ((probs * logp_c).sum(-1) - logp_y)  # = (1 - a) log p(y) + a sum_k p_k log p(c_k)
    d = mask.sum().clamp(min=1) if denom is None else denom.to(mask.dtype)
    return -(per_token * mask).sum() / d


def uniform_targets(cand_ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Ablation `uniform_smoothing`: p uniform over the top-K."""
    K = cand_ids.shape[-1]
    return torch.full(cand_ids.shape, 1.0 / K, dtype=dtype, device=cand_ids.device)


def self_distill_targets(topk_logits: torch.Tensor) -> torch.Tensor:
    """Ablation `self_distill`: the learner's own (detached) distribution renormalized on its top-K."""
    x = topk_logits.detach()
    low_precision = x.dtype in (torch.float16, torch.bfloat16)
    return x.softmax(-1, dtype=torch.float32 if low_precision else x.dtype)
