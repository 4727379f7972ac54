"""Probe test of the first-order value (paper appendix A.6).

For each probe: an unlabeled batch gives g_pre (the training loss of the method, restricted to
the alignment scope); a held-out feedback batch (GSM8K examples not in the feedback subset)
gives g_probe. Predicted improvement: eta * g_probe^T g_pre. Realized: the drop of that
feedback batch's loss after the SGD step theta_S <- theta_S - eta * g_pre. Their Pearson
correlation over probes, with a BCa bootstrap CI (vpt.stats), says whether V means what it claims.

With a small eta the first-order expansion is nearly exact on the same batch, so r is close to 1
there. The stricter variant, also reported, predicts with g_down from a batch of the *feedback
subset* (what the designer actually optimizes) and checks the realized drop on the held-out
batch: it measures whether the value signal generalizes beyond the examples it is computed on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from vpt.progress import progress

from vpt.models.designer import TaskDesigner
from vpt.language.data import FeedbackSet, PackedBatches
from vpt.language.objective import Shifted, learner_loss, logits_of, ntp_loss, step_targets
from vpt.language.task import FeedbackEvaluator
from vpt.stats import pearson, pearson_ci
from vpt.value.estimators import perturbed
from vpt.value.meta import downstream_gradient
from vpt.value.flat import dot


def run_probe(
    model: nn.Module,
    scope: list[tuple[str, nn.Parameter]],
    data: PackedBatches,
    probe_set: FeedbackSet,
    feedback_set: FeedbackSet,
    n_probes: int,
    eta: float,
    batch_size: int,
    method: str = "ntp",
    designer: TaskDesigner | None = None,
    K: int = 64,
    fixed_alpha: float = 0.25,
    seed: int = 0,
) -> dict[str, Any]:
    params = [p for _, p in scope]
    gen = torch.Generator().manual_seed(seed)
    device = params[0].device
    pairs = []
    for _ in progress(range(n_probes), desc="probe", unit="probe"):
        ids, labels = (t.to(device) for t in data.next())
        logits = logits_of(model, ids)
        b = Shifted.of(ids, labels, logits.dtype)
        loss, _ = learner_loss(logits, b, step_targets(method, logits, b, K, fixed_alpha, designer))
        g_pre = [g.detach() for g in torch.autograd.grad(loss, params)]
        fb_ids, fb_labels = (t.to(device) for t in probe_set.sample(batch_size, gen))
        probe_loss = ntp_loss(model, fb_ids, fb_labels)
        g_probe = torch.autograd.grad(probe_loss, params)
        g_down, _ = downstream_gradient([FeedbackEvaluator(model, feedback_set, batch_size, device)], model, params, gen,
                                        scope_graph=False)
        with torch.no_grad(), perturbed(params, g_pre, -eta):
            after = ntp_loss(model, fb_ids, fb_labels)
        pairs.append({
            "predicted": eta * dot(g_probe, g_pre).item(),
            "predicted_from_feedback_subset": eta * dot(g_down, g_pre).item(),
            "realized": probe_loss.item() - after.item(),
            "loss_before": probe_loss.item(),
        })
    y = np.array([p["realized"] for p in pairs])
    out: dict[str, Any] = {"method": method, "probes": n_probes, "eta": eta, "batch_size": batch_size}
    for key, prefix in (("predicted", ""), ("predicted_from_feedback_subset", "feedback_subset_")):
        x = np.array([p[key] for p in pairs])
        lo, hi = pearson_ci(x, y, n_boot=2000, seed=seed)
        out.update({f"{prefix}pearson_r": pearson(x, y), f"{prefix}pearson_r_ci95": [lo, hi],
                    f"{prefix}sign_agreement": float(np.mean(np.sign(x) == np.sign(y)))})
    out["pairs"] = pairs
    return out
