"""Language: learner losses for the five methods, the feedback loss, and the value objective
whose meta-gradient trains the designer.

Two paths to the same numbers: training goes through the decoder's hidden states and the chunked
LM head (vpt.losses.chunked: the (tokens, vocab) logits exist one chunk at a time); the plain path
(`logits_of`, full logits) is the reference, and the one the second-order and forward-mode
value estimators differentiate through."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.autograd.forward_ad as fwAD
from torch import nn
from torch.func import functional_call

from vpt.data.pack import IGNORE
from vpt.losses.chunked import Head, head_logprobs, soft_target_head_loss
from vpt.losses.soft_target import (candidate_logprobs, self_distill_targets, soft_target_ce, target_logprobs,
                                    uniform_targets)
from vpt.models.designer import DesignerOutput, TaskDesigner
from vpt.value.boundary import ScopeBoundary
from vpt.value.flat import Vec


@dataclass
class Shifted:
    """A batch in prediction space: position t of `context` predicts `target[t]`.

    Full length T, with the last position masked (it has no next token; its target is a
    placeholder), so the model's logits are used as they come: a [:, :-1] slice of the
    (B, T, vocab) logits would cost a vocab-sized zero-fill and copy in every backward.
    """

    context: torch.Tensor  # (B, T) input ids
    target: torch.Tensor  # (B, T) next ids (last column: a placeholder)
    mask: torch.Tensor  # (B, T) 1.0 where the target is labeled

    @classmethod
    def of(cls, ids: torch.Tensor, labels: torch.Tensor, dtype: torch.dtype) -> Shifted:
        mask = (labels.roll(-1, dims=1) != IGNORE).to(dtype)
        mask[:, -1] = 0
        return cls(ids, ids.roll(-1, dims=1), mask)


def logits_of(model: nn.Module, ids: torch.Tensor, params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """(B, T, V) next-token logits (the last position's are unused: masked in Shifted)."""
    kwargs = {"input_ids": ids, "use_cache": False}  # no KV cache while training
    out = model(**kwargs) if params is None else functional_call(model, params, (), kwargs)
    return out.logits


def hidden_of(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """(B, T, H) the decoder's last hidden states (after the final norm): the LM head's input.

    Through the model's own forward, with the head run on the last position only, not the
    decoder called directly: under FSDP the root module's forward is what gathers the
    embeddings and the head (the chunked loss then reads the gathered head weight)."""
    kept: list[torch.Tensor] = []
    hook = model.get_decoder().register_forward_hook(  # type: ignore[operator]
        lambda _m, _a, out: kept.append(out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]))
    try:
        model(input_ids=ids, use_cache=False, **({"logits_to_keep": 1} if _keeps_logits(model) else {}))
    finally:
        hook.remove()
    return kept[-1]


def _keeps_logits(model: nn.Module) -> bool:
    """Whether the model's forward takes `logits_to_keep` (transformers' causal LMs do)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a peft wrapper passes it on
    return _forward_takes_logits_to_keep(type(base))


@functools.cache
def _forward_takes_logits_to_keep(cls: type) -> bool:
    """Per model class, once: this runs on every learner forward."""
    return "logits_to_keep" in inspect.signature(cls.forward).parameters


def labeled(ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The number of labeled predictions of a batch: the denominator of its mean loss (at least 1)."""
    return Shifted.of(ids, labels, torch.float64).mask.sum().clamp(min=1)


def ntp_loss(model: nn.Module, ids: torch.Tensor, labels: torch.Tensor, chunk: int | None = None,
             denom: torch.Tensor | None = None) -> torch.Tensor:
    """Answer-token cross-entropy; also the feedback loss L_down. `chunk`: tokens per chunk of the
    LM head (None: the plain full-logits path). `denom`: the labeled count of the whole batch this
    micro-batch belongs to (None: its own), so that micro-batch losses add up to the batch's."""
    if chunk is None:
        logits = logits_of(model, ids)
        b = Shifted.of(ids, labels, logits.dtype)
        return soft_target_ce(target_logprobs(logits, b.target, b.mask), b.mask, denom=denom)
    h = hidden_of(model, ids)
    head = Head.of(model, chunk)
    b = Shifted.of(ids, labels, head.loss_dtype)
    return chunked_learner_loss(h, head, b, StepTargets(None, None, None), denom)[0]


@dataclass
class StepTargets:
    """The (detached) soft target of one learner step."""

    alpha: torch.Tensor | None  # None: one-hot (ntp)
    probs: torch.Tensor | None
    cand: torch.Tensor | None  # (B, T, K) candidate ids


def learner_loss(logits: torch.Tensor, b: Shifted, t: StepTargets,
                 denom: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(training loss, plain next-token CE of the same batch: comparable across methods), from full logits."""
    if t.alpha is None:
        loss = soft_target_ce(target_logprobs(logits, b.target, b.mask), b.mask, denom=denom)
        return loss, loss.detach()
    # one log-softmax, as in the baseline's cross-entropy kernel, read at the label and the K
    # candidates in one gather (its backward zero-fills one vocab-sized gradient, not two)
    logp = logits.log_softmax(-1).gather(-1, torch.cat([b.target[..., None], t.cand], dim=-1))  # (B, T, 1+K)
    logp_y = logp[..., 0]
    loss = soft_target_ce(logp_y, b.mask, t.alpha, t.probs, logp[..., 1:], denom=denom)
    return loss, soft_target_ce(logp_y.detach(), b.mask, denom=denom)


def chunked_learner_loss(h: torch.Tensor, head: Head, b: Shifted, t: StepTargets,
                         denom: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """learner_loss from the hidden states h (B, T, H) through the chunked head: the same loss
    written as CE(q, p_theta) with q over [y, candidates] (vpt.losses.chunked)."""
    if t.alpha is None:
        ids, q = b.target[..., None], torch.ones(b.target.shape + (1,), dtype=head.loss_dtype, device=h.device)
    else:
        assert t.probs is not None and t.cand is not None
        ids = torch.cat([b.target[..., None], t.cand], dim=-1)  # (B, T, 1+K)
        a = t.alpha.to(head.loss_dtype)[..., None]
        q = torch.cat([1 - a, a * t.probs.to(head.loss_dtype)], dim=-1)  # (B, T, 1+K), rows sum to 1
    mask = b.mask.to(head.loss_dtype)
    scale = mask / (mask.sum().clamp(min=1) if denom is None else denom.to(head.loss_dtype))
    return soft_target_head_loss(h, head, ids, q, scale)


def step_targets(
    method: str, logits: torch.Tensor, b: Shifted, K: int, fixed_alpha: float, designer: TaskDesigner | None
) -> StepTargets:
    """The step's targets from full logits (the plain path)."""
    if method == "ntp":
        return StepTargets(None, None, None)
    top_vals, cand = logits.detach().topk(K, dim=-1)  # (B, T, K)
    return targets_from_topk(method, top_vals, cand, b, fixed_alpha, designer, logits.dtype)


def targets_from_topk(
    method: str, top_vals: torch.Tensor, cand: torch.Tensor, b: Shifted, fixed_alpha: float,
    designer: TaskDesigner | None, dtype: torch.dtype,
) -> StepTargets:
    """The soft target of a non-ntp method from the learner's top-K logits (values, ids: (B, T, K))."""
    shape = b.target.shape
    if method in ("vpt", "random_feedback"):
        assert designer is not None
        with torch.no_grad(), torch.autocast(cand.device.type, enabled=False):
            out = designer(b.context, b.target, cand)
        return StepTargets(out.alpha.to(dtype), out.probs.to(dtype), cand)
    alpha = torch.full(shape, fixed_alpha, dtype=dtype, device=cand.device)
    if method == "uniform_smoothing":
        return StepTargets(alpha, uniform_targets(cand, dtype), cand)
    if method == "self_distill":
        return StepTargets(alpha, self_distill_targets(top_vals).to(dtype), cand)
    raise ValueError(method)


class LanguageValueObjective:
    """L_pre(theta; phi) on one unlabeled batch with candidates fixed, for the estimators.

    L is linear in the learner's log-probs at the 1+K ids, and the designer does not depend on
    theta, so it also offers the split the fused finite difference uses: the learner's log-probs
    (no graph) and the loss of any such tensor as a function of phi. With a `boundary` that
    captured this batch's learner forward, learner forwards start at the alignment scope.
    """

    input_untouched = True  # the designer shapes targets only: the scope boundary may be replayed
    linear_in_outputs = True  # L is linear in the learner's log-probs: the fused finite difference applies

    def __init__(
        self, model: nn.Module, scope: Sequence[tuple[str, nn.Parameter]], designer: TaskDesigner,
        ids: torch.Tensor, labels: torch.Tensor, cand: torch.Tensor, boundary: ScopeBoundary | None = None,
        denom: torch.Tensor | None = None, chunk: int | None = None,
    ) -> None:
        """`denom`: the labeled count of the whole batch this micro-batch is part of (None: its own),
        so the parts' losses add up to the batch's. `chunk`: tokens per chunk of the LM head in the
        forwards without a graph (None: full logits)."""
        self.model, self.scope, self.designer = model, scope, designer
        self.ids, self.cand, self.denom, self.chunk = ids, cand, denom, chunk
        self.boundary = boundary if boundary is not None and boundary.holds(ids) else None
        self.b = Shifted.of(ids, labels, next(designer.parameters()).dtype)
        self.all_ids = torch.cat([self.b.target[..., None], cand], dim=-1)  # (B, T, 1+K)

    def _designer(self) -> DesignerOutput:
        return self.designer(self.b.context, self.b.target, self.cand)

    def _combine(self, lp: torch.Tensor, out: DesignerOutput) -> torch.Tensor:
        lp = lp.to(out.probs.dtype)
        return soft_target_ce(lp[..., 0], self.b.mask, out.alpha, out.probs, lp[..., 1:], denom=self.denom)

    def _learner_logprobs(self, params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """(B, T, 1+K) learner log-probs at the label and the candidates."""
        replay = self.boundary.replay(self.ids) if self.boundary is not None else contextlib.nullcontext()
        with replay:
            if self.chunk is not None and params is None and not torch.is_grad_enabled():
                return head_logprobs(hidden_of(self.model, self.ids), Head.of(self.model, self.chunk), self.all_ids)
            return candidate_logprobs(logits_of(self.model, self.ids, params), self.all_ids)

    def loss(self, learner_graph: bool) -> torch.Tensor:
        out = self._designer()
        with torch.set_grad_enabled(learner_graph):
            lp = self._learner_logprobs()
        return self._combine(lp, out)

    def learner_outputs(self) -> torch.Tensor:
        with torch.no_grad():
            return self._learner_logprobs()

    def loss_of_outputs(self, lp: torch.Tensor) -> torch.Tensor:
        return self._combine(lp, self._designer())

    def loss_tangent(self, direction: Vec) -> torch.Tensor:
        out = self._designer()
        # dL/de = soft_target_ce with log-probs replaced by their directional derivatives D:
        # L is linear in log p, and the designer does not depend on theta.
        with torch.no_grad(), fwAD.dual_level():
            params = {n: fwAD.make_dual(p.detach(), u) for (n, p), u in zip(self.scope, direction, strict=True)}
            D = fwAD.unpack_dual(self._learner_logprobs(params)).tangent
        return self._combine(D, out)
