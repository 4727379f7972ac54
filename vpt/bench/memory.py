"""Peak memory of one real training step against micro-batch size, sequence length and global batch.

Per configuration (method x seq_len x global batch x micro-batch), in a fresh spawned process:
the real vpt.train.loop.Trainer (vpt.bench.learners.build_trainer, as `vpt bench overhead` builds
it) with train.batch_size = the global batch and train.micro_batch_size = the micro-batch, and
meta_every 1 so every step of a designer method has its meta step. `warmup` steps first (AdamW's
state and the allocator's pools exist after the first), then the peak over `steps` measured steps:
    GPU: torch.cuda.max_memory_allocated over the measured steps (absolute: weights, gradients,
         optimizer state, activations, logits, the meta step), reset at their start;
    CPU: peak RSS (VmHWM) during the measured steps minus the process's RSS just before them
         (what the step adds on top of the resident model and optimizer state; memory freed in
         warm-up stays resident and is reused, so also peak_above_built_bytes: the peak over all
         steps above the RSS of the built trainer, first-step allocations included).
With gradient accumulation the peak should follow the micro-batch, not the global batch: a list
of global batches at a fixed micro-batch shows it (`flatness`: max/min peak over global batches).
Ratios method/ntp at each point; the paper's target for vpt is <= 1.05 (Table 3's peak memory).
"""

from __future__ import annotations

import itertools
import tempfile
import time
from pathlib import Path
from typing import Any

from vpt.bench.learners import build_trainer, default_seq_len, machine_info
from vpt.bench.sidebyside import current_rss_bytes, peak_rss_bytes, reset_peak_rss, run_isolated
from vpt.errors import VptError
from vpt.progress import progress

TARGET_RATIO = 1.05  # vpt/ntp peak memory (Table 3: +5% at most)
PEAK_KIND = {"cuda": "CUDA max_memory_allocated over the measured steps (absolute)",
             "cpu": "peak RSS (VmHWM) during the measured steps minus the RSS just before them"}
BASELINE = "ntp"


def check_methods(methods: list[str]) -> None:
    from vpt.train.methods import LANGUAGE_METHODS

    bad = [m for m in methods if m not in LANGUAGE_METHODS]
    if bad:
        raise VptError(f"bench memory: unknown method {bad[0]!r}; choose from: {', '.join(LANGUAGE_METHODS)}")


def plan(s: dict[str, Any], cfg: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(points to measure, points skipped with the reason). seq_len: the learner's default (1024 for
    a model shape; None, the packed rows' length, for the config's learner); global batch: train.batch_size."""
    seq_lens = s["seq_len"] or [default_seq_len({"learner": s["learner"]})]  # None: the packed rows as they are
    globals_ = s["global_batch"] or [cfg["train"]["batch_size"]]
    points, skipped = [], []
    for method, seq_len, batch, micro in itertools.product(s["methods"], seq_lens, globals_, s["micro_batch"]):
        point = {"method": method, "seq_len": seq_len, "global_batch": batch, "micro_batch": micro}
        if micro > batch or batch % micro:
            skipped.append({**point, "reason": f"micro-batch {micro} does not divide global batch {batch}"})
        else:
            points.append(point)
    return points, skipped


def measure_point(method: str, s: dict[str, Any]) -> dict[str, Any]:
    """One configuration (runs in its own process): warm-up steps, then the peak over the measured steps."""
    import torch

    torch.set_num_threads(s["threads"])
    import transformers  # noqa: F401  (libraries resident before the run's own state)

    with tempfile.TemporaryDirectory(prefix="vpt-bench-memory-") as run_dir:
        t = build(method, s, run_dir)
        cuda = t.device.type == "cuda"
        reset_peak_rss()
        built = current_rss_bytes()
        for _ in range(s["warmup"]):
            t.train_step()
        warmup_peak = peak_rss_bytes()
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        reset_peak_rss()
        before = current_rss_bytes()
        t0 = time.perf_counter()
        rows = [t.train_step() for _ in range(s["steps"])]
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        return {
            "peak_bytes": float(torch.cuda.max_memory_allocated() if cuda else peak_rss_bytes() - before),
            "peak_reserved_bytes": float(torch.cuda.max_memory_reserved()) if cuda else None,
            "rss_before_bytes": float(before), "peak_kind": PEAK_KIND["cuda" if cuda else "cpu"],
            # CPU: freed memory stays resident (the allocator keeps it), so the measured step reuses
            # what warm-up touched; this one also counts the first step's allocations (AdamW state)
            "peak_above_built_bytes": float(max(warmup_peak, peak_rss_bytes()) - built),
            "seq_len_measured": t.task.units_per_batch // t.cfg.batch_size, "meta_steps": sum("value" in r for r in rows),
            "step_s": seconds / s["steps"], "device": str(t.device), "dtype": t.cfg.dtype,
            "param_dtype": str(t.param_dtype).removeprefix("torch."),
            "autocast_dtype": None if t.autocast_dtype is None else str(t.autocast_dtype).removeprefix("torch."),
            "torch": torch.__version__, "final_loss": rows[-1]["loss"],
        }


def build(method: str, s: dict[str, Any], run_dir: str) -> Any:
    """The trainer of one point: global batch, micro-batch and seq_len from the point; meta_every 1."""
    return build_trainer(method, {**s, "batch_size": s["global_batch"], "micro_batch_size": s["micro_batch"],
                                  "meta_every": 1, "steps": s["warmup"] + s["steps"]}, run_dir)


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """method/ntp peak at every point both were measured at, with the target check."""
    key = lambda r: (r["seq_len"], r["global_batch"], r["micro_batch"])  # noqa: E731
    base = {key(r): r["peak_bytes"] for r in rows if r["method"] == BASELINE}
    out = []
    for r in rows:
        b = base.get(key(r))
        if r["method"] != BASELINE and b:
            ratio = r["peak_bytes"] / b
            out.append({"method": r["method"], "over": BASELINE, "seq_len": r["seq_len"], "global_batch": r["global_batch"],
                        "micro_batch": r["micro_batch"], "ratio": ratio, "target": TARGET_RATIO, "target_met": ratio <= TARGET_RATIO})
    return out


def flatness(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (method, seq_len, micro-batch) measured at several global batches: max/min of the peak."""
    groups: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["seq_len"], r["micro_batch"]), []).append(r)
    return [{"method": m, "seq_len": L, "micro_batch": mb, "global_batches": [r["global_batch"] for r in g],
             "max_over_min": max(r["peak_bytes"] for r in g) / max(min(r["peak_bytes"] for r in g), 1.0)}
            for (m, L, mb), g in groups.items() if len(g) > 1]


def plot(rows: list[dict[str, Any]], stem: Path) -> list[Path]:
    """Peak GB against micro-batch, one line per (method, seq_len[, global batch]); <stem>.png and .pdf."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from vpt.report.figures import save_figure

    fig = Figure(figsize=(6.0, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    several = len({r["global_batch"] for r in rows}) > 1
    lines: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for r in rows:
        lines.setdefault((r["method"], r["seq_len"], r["global_batch"] if several else 0), []).append(r)
    for (method, seq_len, batch), pts in sorted(lines.items()):
        pts = sorted(pts, key=lambda r: r["micro_batch"])
        label = f"{method}, seq {seq_len}" + (f", batch {batch}" if several else "")
        ax.plot([r["micro_batch"] for r in pts], [r["peak_bytes"] / 1e9 for r in pts], marker="o", label=label)
    ax.set_xscale("log", base=2)
    micro = sorted({r["micro_batch"] for r in rows})
    ax.set_xticks(micro, [str(m) for m in micro])  # rows, not powers of two
    ax.set_xlabel("micro-batch (rows per forward)")
    ax.set_ylabel("peak memory (GB)" + ("" if rows and rows[0]["device"].startswith("cuda") else ", above pre-step RSS"))
    ax.legend(fontsize=8)
    return save_figure(fig, stem)


def run_benchmark(s: dict[str, Any], cfg: dict[str, Any], out: Path) -> dict[str, Any]:
    """Every point in its own process (progress bar with ETA), then out (JSON) and its plot beside it."""
    from vpt.io import write_json

    check_methods(s["methods"])
    points, skipped = plan(s, cfg)
    machine = machine_info(s.get("device"))
    rows = []
    for point in progress(points, desc="bench memory", unit="config"):
        row = {**point, **run_isolated(measure_point, point["method"], {**s, **point}), "host": machine["host"]}
        rows.append({**row, "seq_len": row["seq_len"] or row["seq_len_measured"]})
    result = {"benchmark": "memory", "settings": s, "machine": machine,
              "peak_kind": rows[0]["peak_kind"] if rows else None, "rows": rows, "skipped": skipped,
              "ratios": ratios(rows), "flatness": flatness(rows), "target": {"ratio_over_ntp_max": TARGET_RATIO}}
    result["plot"] = [str(p) for p in plot(rows, out.with_suffix(""))]
    write_json(out, result)
    return result
