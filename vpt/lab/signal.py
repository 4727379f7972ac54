"""Where the value signal points: dV/dalpha per answer token of the alpha documents.

With candidates c_1..c_K and the designer's distribution q over them, V is linear in each
token's alpha (docs: ../../shared/design/value-gradient.md):

    dV/dalpha_t = D_t(y_t) - sum_k q_k D_t(c_k),   D_t(v) = g_down^T grad_S log p_t(v)

(up to the 1/N of the mean). Positive where moving target mass off the label raises V. It is
measured here with q uniform (near the designer's initial distribution), g_down the mean of
several feedback batches (scaled to unit norm) and D by a central difference, before any
designer training: it says what the value signal asks for, separately from what the designer
managed to learn (vpt.lab.alpha).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from vpt.data.pack import encode_document
from vpt.losses.soft_target import candidate_logprobs
from vpt.language.data import FeedbackSet
from vpt.language.objective import Shifted, logits_of
from vpt.language.task import FeedbackEvaluator
from vpt.value.estimators import perturbed
from vpt.value.flat import norm
from vpt.value.meta import downstream_gradient


def mean_feedback_gradient(model: nn.Module, params: list[nn.Parameter], feedback: FeedbackSet, batches: int,
                           batch_size: int, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    total = [torch.zeros_like(p) for p in params]
    evaluators = [FeedbackEvaluator(model, feedback, batch_size, params[0].device)]
    for _ in range(batches):
        g_down, _ = downstream_gradient(evaluators, model, params, gen, scope_graph=False)
        for t, g in zip(total, g_down):
            t.add_(g, alpha=1 / batches)
    return total


@torch.no_grad()
def alpha_gradient_table(model: nn.Module, params: list[nn.Parameter], g_down: list[torch.Tensor],
                         tok: PreTrainedTokenizerBase, docs: pd.DataFrame, K: int, eps: float = 1e-3) -> pd.DataFrame:
    """One row per answer token of each document: family, label_id, prev_id, dV/dalpha (q uniform)."""
    n = norm(g_down)
    u = [g / n for g in g_down]  # (one norm over the whole scope)
    rows: list[dict[str, Any]] = []
    for problem, solution, family in zip(docs["problem"], docs["solution"], docs["family"]):
        ids, labels = encode_document(tok, problem, solution)
        x, y = torch.tensor([ids]), torch.tensor([labels])
        logits = logits_of(model, x)  # (1, T, V)
        b = Shifted.of(x, y, logits.dtype)
        all_ids = torch.cat([b.target[..., None], logits.topk(K, dim=-1).indices], -1)  # (1, T, 1+K)
        with perturbed(params, u, eps):
            up = candidate_logprobs(logits_of(model, x), all_ids)
        with perturbed(params, u, -eps):
            down = candidate_logprobs(logits_of(model, x), all_ids)
        D = ((up - down) / (2 * eps))[0]  # (T, 1+K)
        dva = D[:, 0] - D[:, 1:].mean(-1)  # (T,)
        for t in torch.nonzero(b.mask[0]).flatten().tolist():
            rows.append({"family": family, "label_id": int(b.target[0, t]), "prev_id": int(b.context[0, t]),
                         "dV_dalpha": float(dva[t])})
    return pd.DataFrame(rows)
