"""The paper's overhead benchmark (section 4.4, appendix A.5; Table 3), side by side.

Baseline (`ntp`) and V-Pretraining (`vpt`) run the real training step (`vpt.train.loop.Trainer`)
on the same learner, packed batches and settings, each in a fresh process, alternating ABBA over
repeats. Per run: W warm-up steps are excluded, then a window of T steps (T >> meta_every) is
timed with synchronization at its ends:
    tokens/s = T * batch_size * seq_len / window seconds, mean step time = window / T,
    peak memory = CUDA peak allocated in the window (GPU) or peak RSS in the window (CPU),
    value-update fraction = time inside the meta step / window (CUDA events on GPU).
Ratios vpt/ntp are formed within each repeat; the JSON gives their median and range.

A second measurement prices the meta-gradient estimators on one batch: `finite_difference`
(fused, from the scope boundary: the training default) against `autograd`, with their agreement.

Learners and the trainer: vpt.bench.learners (shared with vpt bench memory, precision and gpu).
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from typing import Any

import numpy as np

from vpt.bench.learners import FAST_PATHS, LEARNERS, QWEN15_05B, build_trainer, recut_packed  # noqa: F401 (re-exported)
from vpt.bench.learners import resolve_settings as bench_settings
from vpt.bench.sidebyside import (alternate, arm_summary, current_rss_bytes, peak_rss_bytes, ratio_summary, reset_peak_rss,
                                   run_isolated)

ARMS = ("ntp", "vpt")
TARGETS = {"tokens_per_s": 0.95, "peak_mem": 1.05, "fd_over_autograd": 0.5}


def resolve_settings(section: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Defaults (the schema's bench.overhead) <- the config's section <- command-line overrides (None: not
    given); the section's `vision` entry is the vision benchmark's (vpt.bench.overhead_vision), not these runs'."""
    return bench_settings("overhead", {k: v for k, v in section.items() if k != "vision"}, overrides)


def timed_window(t: Any, warmup: int, window: int, rss_libraries: int) -> dict[str, Any]:
    """Trainer `t`: `warmup` steps, then `window` steps timed with synchronization at both ends,
    peak memory reset at the window start and the phases (t.timer) of the window alone."""
    import torch

    from vpt.train.timing import PhaseTimer

    cuda = t.device.type == "cuda"
    for _ in range(warmup):
        t.train_step()
    t.timer = PhaseTimer(t.device)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    reset_peak_rss()
    t0 = time.perf_counter()
    rows = [t.train_step() for _ in range(window)]
    if cuda:
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return {
        "rows": rows, "window_s": dt, "phases": t.timer.totals(), "counts": dict(t.timer.counts),
        "peak_mem": float(torch.cuda.max_memory_allocated() if cuda else peak_rss_bytes()),
        "peak_reserved": float(torch.cuda.max_memory_reserved()) if cuda else float("nan"),
        # CPU: the peak above the process's RSS once the libraries are imported, i.e. what the run
        # itself holds (model, optimizer, data, designer, feedback set, activations)
        "peak_mem_run": float(torch.cuda.max_memory_allocated() if cuda else peak_rss_bytes() - rss_libraries),
    }


def measure(arm: str, s: dict[str, Any]) -> dict[str, float]:
    """One arm: warm-up, then the timed window (runs in its own process)."""
    import torch

    torch.set_num_threads(s["threads"])
    import transformers  # noqa: F401  (libraries in memory before the run's own state)

    rss_libraries = current_rss_bytes()
    with tempfile.TemporaryDirectory(prefix="vpt-bench-") as run_dir:
        t = build_trainer(arm, s, run_dir)
        w = timed_window(t, s["warmup"], s["window"], rss_libraries)
        dt, phases = w["window_s"], w["phases"]
        tokens = s["window"] * t.task.units_per_batch
        return {
            "tokens_per_s": tokens / dt, "step_s": dt / s["window"], "window_s": dt,
            **{k: w[k] for k in ("peak_mem", "peak_reserved", "peak_mem_run")},
            "value_update_frac": phases.get("value_update", 0.0) / dt,
            "soft_targets_frac": phases.get("soft_targets", 0.0) / dt,
            "feedback_grad_frac": phases.get("value_update/feedback_grad", 0.0) / dt,
            "estimate_frac": phases.get("value_update/estimate", 0.0) / dt,
            "value_updates": float(w["counts"].get("value_update", 0)),
            "tokens_per_step": float(t.task.units_per_batch), "final_loss": w["rows"][-1]["loss"],
        }


def measure_estimators(arm: str, s: dict[str, Any]) -> dict[str, float]:
    """autograd vs finite_difference (fused + scope boundary, and plain) on one training batch."""
    import torch

    from vpt.value.estimators import meta_gradient
    from vpt.value.flat import norm

    torch.set_num_threads(s["threads"])
    with tempfile.TemporaryDirectory(prefix="vpt-bench-") as run_dir:
        t = build_trainer("vpt", {**s, "meta_every": 10**9}, run_dir)
        t.train_step()  # a step so the designer is in a training state; no meta update
        step = t.task.learner_step(t.task.next_batch(), True, t._autocast, t._phase,
                                   backward=lambda loss: None)  # kept for a meta step; no learner update
        scope = [p for _, p in t.scope]
        g_down, _ = t.downstream_gradient()
        fast = t.task.value_objective(step, t.scope)
        plain = t.task.value_objective(step, t.scope, fast_paths=False)
        del step
        runs = {
            "autograd": lambda: meta_gradient("autograd", plain, scope, g_down, t.d_params),
            "finite_difference": lambda: meta_gradient("finite_difference", fast, scope, g_down, t.d_params, t.cfg.value.fd_eps),
            "finite_difference_plain": lambda: meta_gradient("finite_difference", plain, scope, g_down, t.d_params,
                                                             t.cfg.value.fd_eps, fused=False),
        }
        seconds: dict[str, list[float]] = {k: [] for k in runs}
        out: dict[str, Any] = {}
        for r in range(s["estimator_repeats"] + 1):  # round 0 is warm-up
            for name in (list(runs) if r % 2 == 0 else list(reversed(runs))):
                sync = torch.cuda.synchronize if t.device.type == "cuda" else (lambda: None)
                sync()
                t0 = time.perf_counter()
                out[name] = runs[name]()
                sync()
                if r > 0:
                    seconds[name].append(time.perf_counter() - t0)
        ref = out["autograd"]
        result: dict[str, float] = {}
        for name in runs:
            result[f"{name}_s"] = float(np.median(seconds[name]))
            diff = norm([a - b for a, b in zip(out[name].grads, ref.grads)]) / norm(ref.grads).clamp(min=1e-30)
            result[f"{name}_grad_rel_err"] = diff.item()
            result[f"{name}_value_rel_err"] = abs(out[name].value - ref.value) / max(abs(ref.value), 1e-30)
        result["fd_over_autograd"] = result["finite_difference_s"] / result["autograd_s"]
        result["fd_plain_over_autograd"] = result["finite_difference_plain_s"] / result["autograd_s"]
        return result


def side_by_side(s: dict[str, Any], deadline: float | None = None) -> dict[str, Any]:
    """Both arms alternating over s["repeats"] (each run in its own process): runs, per-arm summaries, ratios."""
    rows = alternate(ARMS, s["repeats"], measure, s, desc="overhead", deadline=deadline)
    metrics = ("tokens_per_s", "step_s", "peak_mem", "peak_mem_run", "value_update_frac", "soft_targets_frac",
               "feedback_grad_frac", "estimate_frac", "value_updates")
    return {
        "runs": rows,
        "arms": {arm: {m: arm_summary(rows, arm, m) for m in metrics} for arm in ARMS},
        "ratios": {m: ratio_summary(rows, "vpt", "ntp", m) for m in ("tokens_per_s", "step_s", "peak_mem", "peak_mem_run")},
    }


def run_benchmark(s: dict[str, Any]) -> dict[str, Any]:
    """Both arms side by side, then the estimators; `s` from resolve_settings plus "config"."""
    import torch
    import transformers

    table = side_by_side(s)
    ratios = table["ratios"]
    est = run_isolated(measure_estimators, "vpt", s)
    checks = {
        "tokens_per_s": ratios["tokens_per_s"]["median"] >= TARGETS["tokens_per_s"],
        "peak_mem": ratios["peak_mem"]["median"] <= TARGETS["peak_mem"],
        "fd_over_autograd": est["fd_over_autograd"] <= TARGETS["fd_over_autograd"],
    }
    return {
        "benchmark": "overhead",
        "settings": s,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
                    "transformers": transformers.__version__,
                    "device": torch.cuda.get_device_name() if torch.cuda.is_available() and s.get("device") != "cpu" else "cpu"},
        **table,
        "estimators": est,
        "targets": TARGETS,
        "target_met": checks,
    }
