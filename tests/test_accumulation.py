"""Gradient accumulation and the chunked LM-head loss (issue 14, items 1-2): the same losses and
updates at any micro-batch size, the same values and gradients as the full-logits loss, and no
(tokens, vocab)-sized tensor beyond one chunk's."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from vpt.language.objective import (Shifted, chunked_learner_loss, hidden_of, learner_loss, logits_of, step_targets,
                                    targets_from_topk)
from vpt.losses.chunked import Head, head_logprobs, head_topk, soft_target_head_loss
from vpt.losses.soft_target import candidate_logprobs
from vpt.train.config import METHODS

from test_train import make, params, world  # noqa: F401  (world: the module-scoped fixture)

F64 = {"dtype": "float64"}


@pytest.mark.parametrize("method", METHODS)
def test_chunked_loss_equals_the_full_logits_loss_in_float64(world: dict, method: str) -> None:  # noqa: F811
    t = make(world, f"ch-{method}", method, **F64)
    ids, labels = t.task.data.next()
    K = t.cfg.designer.K

    def grads(loss: torch.Tensor) -> list[torch.Tensor]:
        return [g.clone() for g in torch.autograd.grad(loss, t.params)]

    logits = logits_of(t.model, ids)  # (B, T, V): the reference
    b = Shifted.of(ids, labels, logits.dtype)
    ref_targets = step_targets(method, logits, b, K, t.cfg.alpha_fixed, t.designer)
    ref, ref_ce = learner_loss(logits, b, ref_targets)
    ref_grads = grads(ref)

    h = hidden_of(t.model, ids)
    head = Head.of(t.model, chunk=7)  # 7 does not divide B * T: a short last chunk
    targets = step_targets(method, logits, b, K, t.cfg.alpha_fixed, t.designer)
    if method != "ntp":
        top_vals, cand = head_topk(h, head, K)
        assert torch.equal(cand, ref_targets.cand)
        targets = targets_from_topk(method, top_vals, cand, b, t.cfg.alpha_fixed, t.designer, head.loss_dtype)
    loss, ce = chunked_learner_loss(h, head, b, targets)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-12)
    assert ce.item() == pytest.approx(ref_ce.item(), rel=1e-12)
    for g, r in zip(grads(loss), ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)
    all_ids = torch.cat([b.target[..., None], torch.randint(0, logits.shape[-1], ids.shape + (3,))], -1)
    with torch.no_grad():
        torch.testing.assert_close(head_logprobs(h, head, all_ids), candidate_logprobs(logits, all_ids), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_the_same_at_any_micro_batch_size(world: dict, method: str) -> None:  # noqa: F811
    """Float64, global batch 4: micro-batches of 1, 2 and 3 rows (3: a short last one) against the
    whole batch, over steps that include vpt's meta updates (steps 1 and 3)."""
    runs = {}
    for m in (None, 1, 2, 3):
        t = make(world, f"mb{m}-{method}", method, steps=4, micro_batch_size=m, **F64)
        t.run()
        runs[m] = (t.metrics.rows, params(t), [] if t.designer is None else [p.detach() for p in t.d_params])
    rows, theta, phi = runs.pop(None)
    for m, (rows_m, theta_m, phi_m) in runs.items():
        for key in ("loss", "ce", "grad_norm", "value", "g_down_norm", "designer_grad_norm", "alpha_mean", "alpha_std"):
            got = [r[key] for r in rows_m if key in r]
            assert got == pytest.approx([r[key] for r in rows if key in r], rel=1e-9, abs=1e-13), (m, key)
        if method in ("vpt", "random_feedback"):
            assert sum("value" in r for r in rows_m) == 2
        for p, q in zip(theta_m + phi_m, theta + phi, strict=True):
            torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-12)


class _LargestOutput(TorchDispatchMode):
    """Records the largest tensor any op produces (forward and backward)."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        for x in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(x, torch.Tensor):
                self.largest = max(self.largest, x.numel())
        return out


def test_the_chunked_loss_never_forms_the_whole_logits() -> None:
    """N tokens, vocabulary V, chunk c: no op output exceeds max(c x V, the head weight's V x H),
    whatever N is, while the full-logits loss forms N x V tensors."""
    torch.manual_seed(0)
    N, H, V, K, c = 256, 16, 1024, 8, 32
    w = torch.randn(V, H, requires_grad=True)
    h = torch.randn(N, H, requires_grad=True)
    ids = torch.randint(0, V, (N, 1 + K))
    q = torch.softmax(torch.randn(N, 1 + K), -1)
    scale = torch.full((N,), 1.0 / N)
    head = Head(w, torch.float32, torch.float32, c)
    with _LargestOutput() as mode:
        loss, _ = soft_target_head_loss(h, head, ids, q, scale)
        loss.backward()
    assert mode.largest <= max(c * V, V * H)
    with _LargestOutput() as full:
        logp = (h @ w.t()).log_softmax(-1).gather(-1, ids)
        (-(scale * (q * logp).sum(-1)).sum()).backward()
    assert full.largest >= N * V


def test_activation_checkpointing_trains_the_same_run(world: dict) -> None:  # noqa: F811
    """Recomputing each block in backward changes memory, not numbers (float64, with meta steps)."""
    runs = {}
    for ac in (False, True):
        t = make(world, f"ac-{ac}", "vpt", steps=4, activation_checkpointing=ac, **F64)
        t.run()
        runs[ac] = (t.metrics.rows, params(t))
    for key in ("loss", "grad_norm", "value"):
        assert [r[key] for r in runs[True][0] if key in r] == pytest.approx([r[key] for r in runs[False][0] if key in r], rel=1e-9)
    for p, q in zip(runs[True][1], runs[False][1]):
        torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-12)
