"""Positive control for the designer: when the value signal does discriminate between tokens, the
real designer, trained by the real estimator on V = g_down^T g_pre, learns a discriminating alpha.

A two-rule world: after token A the corpus continues with X, after token B with Y. The feedback
agrees on A (A -> X) and disagrees on B (B -> Z). Learning Y after B then works against the
feedback, so raising alpha there (moving target mass from Y to the learner's other candidates)
raises V, and lowering it after A raises V too. The learner stays fixed: this checks the
meta-gradient and the designer, not the learner's training.

It is the control for the lab's finding (results/lab/report.md) that on its corpus the designer
moves alpha uniformly: the machinery can steer per token, the lab's value signal just does not
ask it to.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from vpt.models.designer import DesignerConfig, TaskDesigner
from vpt.language.objective import LanguageValueObjective, logits_of, ntp_loss
from vpt.value.meta import DesignerStep, DesignerStepConfig, downstream_gradient
from vpt.value.scope import scope_parameters

V, K, A, B, X, Y, Z = 24, 4, 3, 4, 10, 11, 12


def _rows(pairs: list[tuple[int, int]], n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 2 * 8) rows of 8 random (context, continuation) pairs; only continuations are labeled."""
    idx = torch.randint(0, len(pairs), (n, 8), generator=gen)
    table = torch.tensor(pairs)  # (P, 2)
    ids = table[idx].reshape(n, 16)
    labels = ids.clone()
    labels[:, 0::2] = -100
    return ids, labels


class RuleFeedback:
    """The feedback evaluator of the two-rule world: A -> X agrees with the corpus, B -> Z does not."""

    name, weight = "rules", 1.0

    def __init__(self, model: GPT2LMHeadModel) -> None:
        self.model = model

    def update_head(self, generator: torch.Generator) -> dict[str, float]:
        return {}

    def losses(self, generator: torch.Generator) -> Iterator[torch.Tensor]:
        yield ntp_loss(self.model, *_rows([(A, X), (B, Z)], 8, generator))


def _train_designer(method: str, meta_steps: int = 40) -> tuple[float, float]:
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=V, n_embd=32, n_layer=2, n_head=2, n_positions=32, resid_pdrop=0,
                                       embd_pdrop=0, attn_pdrop=0, bos_token_id=0, eos_token_id=0)).eval()
    designer = TaskDesigner(DesignerConfig(vocab_size=V, n_layer=1, n_embd=32, n_head=2, K=K))
    opt = torch.optim.AdamW(designer.parameters(), lr=1e-2, weight_decay=0.0)
    # the trainer's own designer update (vpt.value.meta), unclipped here
    update = DesignerStep(list(designer.parameters()), opt, DesignerStepConfig(
        "finite_difference", random_direction=method == "random_feedback", grad_clip=float("inf")))
    scope = scope_parameters(model, "last:1")
    params = [p for _, p in scope]
    for _ in range(meta_steps):
        ids, labels = _rows([(A, X), (B, Y)], 8, gen)  # the unlabeled stream
        g_down, _ = downstream_gradient([RuleFeedback(model)], model, params, gen)
        with torch.no_grad():
            cand = logits_of(model, ids).topk(K, dim=-1).indices
        update(LanguageValueObjective(model, scope, designer, ids, labels, cand), params, g_down, gen)
    ids, labels = _rows([(A, X), (B, Y)], 8, gen)
    with torch.no_grad():
        cand = logits_of(model, ids).topk(K, dim=-1).indices
        obj = LanguageValueObjective(model, scope, designer, ids, labels, cand)
        alpha = designer(obj.b.context, obj.b.target, cand).alpha  # (n, 15)
    ctx = obj.b.context
    labeled = obj.b.mask.bool()
    return float(alpha[labeled & (ctx == A)].mean()), float(alpha[labeled & (ctx == B)].mean())


def test_designer_raises_alpha_where_the_corpus_disagrees_with_the_feedback() -> None:
    a_agree, a_disagree = _train_designer("vpt")
    # alpha starts at alpha_max / 2 = 0.25 everywhere; the value signal splits it
    assert a_disagree > 0.35 and a_agree < 0.15, (a_agree, a_disagree)


def test_random_feedback_does_not_split_alpha_by_rule() -> None:
    a_agree, a_disagree = _train_designer("random_feedback")
    assert abs(a_disagree - a_agree) < 0.1, (a_agree, a_disagree)
