"""The LM head and the soft-target loss in token chunks: the (tokens, vocab) logits of a whole
micro-batch never exist at once.

For N tokens with hidden states h (N, H), head weight W (V, H), target ids (N, M) (the label
and, for soft targets, the K candidates) with weights q (N, M) and per-token scale s = mask / denom:

    L = -sum_t s_t sum_j q_tj log softmax(W h_t)[ids_tj]

which is vpt.losses.soft_target's CE(q, p_theta) with q = (1 - alpha) delta_y + alpha p over
[y, c_1..c_K] (ntp: M = 1, q = 1). Its gradient in the logits z_t = W h_t is known in closed form,
    dL/dz_t = s_t (sum_j q_tj softmax(z_t) - scatter(q_t)),
so the forward computes it chunk by chunk and keeps only dL/dh (N, H) and dL/dW (V, H); the
backward scales them. Peak memory: a few (chunk, V) buffers, whatever N is, and no extra head
matmul (the classic alternative, recomputing each chunk's logits in backward, costs one).
At alpha = 0 the soft target is exactly the one-hot one (q = [1, 0, ..., 0]: the extra terms
add exact zeros), so a soft method then reproduces ntp bit for bit.

The function is first-order only (once_differentiable): the second-order (`autograd`) and
forward-mode (`jvp`) value estimators use the plain full-logits path (vpt.language.objective).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from vpt.errors import VptError


@dataclass(frozen=True)
class Head:
    """A bias-free linear LM head, and the dtypes and chunk size it is evaluated with."""

    weight: torch.Tensor  # (V, H), the parameter itself (its gradient is dL/dW)
    compute_dtype: torch.dtype  # the matmul's (bfloat16 under autocast)
    loss_dtype: torch.dtype  # log-softmax and the loss (float32, or float64 in float64 runs)
    chunk: int  # tokens per chunk

    @classmethod
    def of(cls, model: nn.Module, chunk: int) -> Head:
        """The model's output head, evaluated as its forward would be right now (inside or outside autocast)."""
        head = model.get_output_embeddings()  # type: ignore[operator]
        if type(head) is not nn.Linear or head.bias is not None or _softcap(model):
            raise VptError(f"{type(model).__name__}: the chunked loss needs a bias-free nn.Linear LM head without logit "
                           f"soft-capping (found {type(head).__name__})")
        w = head.weight
        device = w.device.type
        compute = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else w.dtype
        return cls(w, compute, torch.promote_types(w.dtype, torch.float32), chunk)

    def logits(self, h: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        """(n, V) logits of n hidden states, in loss_dtype. `w`: the weight already in compute_dtype."""
        w = self.weight.detach().to(self.compute_dtype) if w is None else w
        with torch.autocast(h.device.type, enabled=False):
            return F.linear(h.detach().to(self.compute_dtype), w).to(self.loss_dtype)

    def spans(self, n: int) -> list[slice]:
        return [slice(s, min(s + self.chunk, n)) for s in range(0, n, self.chunk)]


def _softcap(model: nn.Module) -> bool:
    cfg = getattr(model, "config", None)
    return bool(getattr(cfg, "final_logit_softcapping", None))


@torch.no_grad()
def head_topk(h: torch.Tensor, head: Head, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, ids) of the k largest logits per token. h: (..., H) -> (..., k) each."""
    flat = h.flatten(0, -2)
    w = head.weight.detach().to(head.compute_dtype)
    vals, ids = zip(*(head.logits(flat[s], w).topk(k, dim=-1) for s in head.spans(len(flat))))
    shape = (*h.shape[:-1], k)
    return torch.cat(vals).view(shape), torch.cat(ids).view(shape)


@torch.no_grad()
def head_logprobs(h: torch.Tensor, head: Head, ids: torch.Tensor) -> torch.Tensor:
    """log softmax(W h) at `ids`, without a graph. h: (..., H), ids: (..., M) -> (..., M)."""
    flat, fid = h.flatten(0, -2), ids.flatten(0, -2)
    w = head.weight.detach().to(head.compute_dtype)
    out = []
    for s in head.spans(len(flat)):
        z = head.logits(flat[s], w)  # (c, V)
        out.append(z.gather(-1, fid[s]) - torch.logsumexp(z, dim=-1, keepdim=True))
    return torch.cat(out).view(ids.shape)


class _SoftTargetHead(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, h: torch.Tensor, weight: torch.Tensor, ids: torch.Tensor, q: torch.Tensor,
                scale: torch.Tensor, head: Head) -> tuple[torch.Tensor, torch.Tensor]:
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        w = weight.detach().to(head.compute_dtype)
        acc = torch.float64 if weight.dtype == torch.float64 else torch.float32
        gh = torch.empty_like(h) if need_h else None  # (N, H)
        gw = torch.zeros(weight.shape, dtype=acc, device=weight.device) if need_w else None  # (V, H)
        loss = torch.zeros((), dtype=head.loss_dtype, device=h.device)
        ce = torch.zeros((), dtype=head.loss_dtype, device=h.device)
        for sl in head.spans(len(h)):
            logp = head.logits(h[sl], w).log_softmax(-1)  # (c, V)
            qc, sc, ic = q[sl], scale[sl], ids[sl]  # (c, M), (c,), (c, M)
            lp = logp.gather(-1, ic)  # (c, M)
            loss -= (sc * (qc * lp).sum(-1)).sum()
            ce -= (sc * lp[:, 0]).sum()
            if gh is None and gw is None:
                continue
            g = logp.exp_()  # softmax, in place: (c, V)
            g.mul_((qc.sum(-1) * sc)[:, None]).scatter_add_(-1, ic, -(qc * sc[:, None]))
            g = g.to(head.compute_dtype)
            with torch.autocast(h.device.type, enabled=False):
                if gh is not None:
                    gh[sl] = (g @ w).to(h.dtype)
                if gw is not None:
                    gw += (g.t() @ h[sl].detach().to(head.compute_dtype)).to(acc)
        ctx.mark_non_differentiable(ce)
        ctx.weight_dtype = weight.dtype
        ctx.grads = (gh, gw)  # not save_for_backward: they are outputs of no graph, used once
        return loss, ce

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g_loss: torch.Tensor, _g_ce: torch.Tensor) -> tuple[Any, ...]:
        gh, gw = ctx.grads
        ctx.grads = (None, None)
        gh = None if gh is None else gh.mul_(g_loss.to(gh.dtype))
        gw = None if gw is None else gw.mul_(g_loss.to(gw.dtype)).to(ctx.weight_dtype)
        return gh, gw, None, None, None, None


def soft_target_head_loss(h: torch.Tensor, head: Head, ids: torch.Tensor, q: torch.Tensor,
                          scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, plain next-token CE of the same tokens), chunked. h: (..., H); ids, q: (..., M), the
    label first; scale: (...) = mask / denom. L is differentiable in h and the head weight."""
    m = ids.shape[-1]
    weight = head.weight
    if not torch.is_grad_enabled():  # apply() would still report needs_input_grad and form the gradients
        h, weight = h.detach(), weight.detach()
    return _SoftTargetHead.apply(h.flatten(0, -2), weight, ids.reshape(-1, m),
                                 q.reshape(-1, m).to(head.loss_dtype), scale.reshape(-1).to(head.loss_dtype), head)
