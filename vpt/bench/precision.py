"""Does the meta-gradient survive bf16? The training default estimator (finite_difference, fused)
evaluated on the same learner weights, designer, unlabeled batch and g_down in:

    fp32             float32 weights, no autocast (the reference)
    bf16_autocast    float32 weights, the learner forwards under bf16 autocast (designer and loss in fp32)
    bf16_weights     the learner cast to bfloat16 (the scope perturbation is then rounded to bf16)
and a sanity row, autograd in fp32 against the fp32 reference (they estimate the same quantity).

Per setting: cosine similarity and relative norm error of grad_phi V against the reference, V and
its relative error, and the wall time of one estimate. `recommendation` is computed from these:
the cheapest setting whose cosine >= min_cosine. The objective is the language task's own
(LanguageTask.value_objective, built as `vpt bench overhead`'s estimator comparison builds it),
the estimate vpt.value.estimators.value_gradient of the config's value kind (what DesignerStep calls),
without the scope-boundary replay, so each setting runs its own forwards in its own precision.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch

from vpt.bench.learners import build_trainer, machine_info
from vpt.value.estimators import MetaGradient, value_gradient
from vpt.value.flat import dot, norm

SETTINGS = ("fp32", "bf16_autocast", "bf16_weights")  # cheapest-first is decided by the measured time, not this order
SANITY = "autograd_fp32"


class AutocastLearner:
    """A linear value objective whose learner forwards run under autocast; the designer and the
    loss of the outputs stay as they are (what bf16 training of the learner alone would change)."""

    def __init__(self, inner: Any, device_type: str, dtype: torch.dtype) -> None:
        self.inner, self.device_type, self.dtype = inner, device_type, dtype
        self.input_untouched, self.linear_in_outputs = inner.input_untouched, inner.linear_in_outputs

    def learner_outputs(self) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=self.dtype):
            return self.inner.learner_outputs().float()  # (B, T, 1+K)

    def loss_of_outputs(self, outputs: torch.Tensor) -> torch.Tensor:
        return self.inner.loss_of_outputs(outputs)

    def loss(self, learner_graph: bool) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=self.dtype):
            return self.inner.loss(learner_graph)

    def loss_tangent(self, direction: Any) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=self.dtype):
            return self.inner.loss_tangent(direction)


def compare(mg: MetaGradient, ref: MetaGradient) -> dict[str, float]:
    """Cosine and relative norm error of grad_phi V, V and its relative error, against `ref`."""
    n, n_ref = norm(mg.grads).item(), norm(ref.grads).item()
    diff = norm([a.float() - b.float() for a, b in zip(mg.grads, ref.grads)]).item()
    cos = dot([g.float() for g in mg.grads], [g.float() for g in ref.grads]).item() / max(n * n_ref, 1e-300)
    return {"cosine": cos, "grad_rel_err": diff / max(n_ref, 1e-300), "grad_norm": n, "value": mg.value,
            "value_rel_err": abs(mg.value - ref.value) / max(abs(ref.value), 1e-300)}


def timed(fn: Callable[[], MetaGradient], repeats: int, device: torch.device) -> tuple[MetaGradient, float]:
    """(the first call's result, median wall seconds). With repeats >= 2 the first call is an
    untimed warm-up (first-call allocations would otherwise bill whichever setting runs first)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    out, seconds = None, []
    for i in range(repeats):
        sync()
        t0 = time.perf_counter()
        mg = fn()
        sync()
        if repeats == 1 or i > 0:
            seconds.append(time.perf_counter() - t0)
        if out is None:
            out = mg
    assert out is not None
    return out, sorted(seconds)[len(seconds) // 2]


def estimates(t: Any, s: dict[str, Any]) -> dict[str, tuple[MetaGradient, float]]:
    """Every setting's (meta-gradient, seconds) on one batch and one g_down; bf16 weights last (the cast is one-way)."""
    device = t.device
    batch = t.task.next_batch()
    step = t.task.learner_step(batch, True, contextlib.nullcontext, t._phase,  # fp32: the candidates and designer input
                               backward=lambda loss: None)  # no learner update
    objective = t.task.value_objective(step, t.scope, fast_paths=False)  # one objective per micro-batch
    del step
    scope = [p for _, p in t.scope]
    g_down, _ = t.downstream_gradient()
    eps = s.get("fd_eps") or t.cfg.value.fd_eps

    kind = t.cfg.value.kind  # dot or cosine, as the trainer's DesignerStep computes it

    def fd(obj: Any) -> Callable[[], MetaGradient]:
        return lambda: value_gradient(kind, "finite_difference", obj, scope, g_down, t.d_params, eps, fused=True)

    out = {"fp32": timed(fd(objective), s["repeats"], device),
           "bf16_autocast": timed(fd([AutocastLearner(o, device.type, torch.bfloat16) for o in objective]), s["repeats"], device),
           SANITY: timed(lambda: value_gradient(kind, "autograd", objective, scope, g_down, t.d_params), s["repeats"], device)}
    t.model.to(torch.bfloat16)  # in place: the scope list keeps pointing at the (now bf16) parameters
    out["bf16_weights"] = timed(fd(objective), s["repeats"], device)
    return out


def recommend(rows: dict[str, dict[str, Any]], min_cosine: float) -> dict[str, Any]:
    """The cheapest of SETTINGS whose cosine against fp32 reaches min_cosine (fp32 itself always does)."""
    ok = [name for name in SETTINGS if rows[name]["cosine"] >= min_cosine]
    best = min(ok, key=lambda name: rows[name]["seconds"])
    return {"setting": best, "rule": f"cheapest setting (wall seconds) whose grad cosine vs fp32 >= {min_cosine}",
            "qualified": ok, "seconds": {n: rows[n]["seconds"] for n in SETTINGS}}


def run_precision(s: dict[str, Any]) -> dict[str, Any]:
    """The whole benchmark in this process; `s` from resolve_settings("precision", ...) plus "config"."""
    torch.set_num_threads(s["threads"])
    with tempfile.TemporaryDirectory(prefix="vpt-bench-precision-") as run_dir:
        # sdpa: fp32 forwards and autograd's double backward (math kernel) have no flash-attention path
        t = build_trainer("vpt", {**s, "batch_size": s["rows"], "dtype": "float32", "attn_implementation": "sdpa",
                                  "meta_every": 10**9, "steps": 1}, run_dir)
        for ev in t.task.evaluators:
            ev.batch_size = s["rows"]  # the feedback batch as small as the unlabeled one
        runs = estimates(t, s)
        seq_len = t.task.units_per_batch // t.cfg.batch_size
        device, kind, eps = str(t.device), t.cfg.value.kind, s.get("fd_eps") or t.cfg.value.fd_eps
    ref = runs["fp32"][0]
    rows = {name: {**compare(mg, ref), "seconds": sec} for name, (mg, sec) in runs.items()}
    return {
        "benchmark": "precision", "settings": s, "machine": machine_info(device),
        "batch": {"rows": s["rows"], "seq_len": seq_len, "device": device},
        "estimator": "finite_difference (fused); sanity row: autograd", "kind": kind, "fd_eps": eps, "reference": "fp32",
        "rows": {name: rows[name] for name in (*SETTINGS, SANITY)},
        "autograd_vs_fd_fp32": {"cosine": rows[SANITY]["cosine"], "grad_rel_err": rows[SANITY]["grad_rel_err"]},
        "recommendation": recommend(rows, s["min_cosine"]),
    }


def measure_precision(arm: str, s: dict[str, Any]) -> dict[str, Any]:
    """run_precision in the shape of a side-by-side measurement (for run_isolated); `arm` is unused."""
    return run_precision(s)
