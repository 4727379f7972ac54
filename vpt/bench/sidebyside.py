"""Side-by-side measurement of two (or more) arms on a noisy machine.

Each measurement runs in a fresh process, so peak memory (CUDA peak allocated, or the
process's peak RSS on CPU) belongs to that arm alone and no arm inherits another's caches or
allocator state. Arms alternate A B B A A B ... so slow drift of the machine (thermal state,
other tenants) falls on both arms equally; ratios are formed within a repeat and summarised by
their median and range over repeats.

On a machine without CUDA the processes are forked from a forkserver that has only imported
torch and transformers (no thread pools, no model): each starts as clean as a spawned one without
paying the imports again (seconds per run on a loaded machine). With CUDA they are spawned: a
library that probes the driver at import (cuInit) would leave forked children unable to use it.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from vpt.progress import progress

PRELOAD = ["torch", "transformers", "vpt.language.task"]  # imports only: nothing in them starts CUDA or threads
Measure = Callable[[str, dict[str, Any]], dict[str, float]]


def order(arms: Sequence[str], repeat: int) -> list[str]:
    """ABBA: even repeats in the given order, odd repeats reversed."""
    return list(arms) if repeat % 2 == 0 else list(reversed(arms))


def reset_peak_rss() -> bool:
    """Start a new peak-RSS window (Linux: clear_refs 5 resets VmHWM to the current RSS). Needed
    because a spawned child inherits its parent's high-water mark across fork and exec."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def current_rss_bytes() -> int:
    """Resident set size now (Linux /proc/self/statm; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:
        return 0


def peak_rss_bytes() -> int:
    """Peak resident set size of this process since the last reset (VmHWM), else since start."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return int(rss if sys.platform == "darwin" else rss * 1024)


def _call(measure: Measure, arm: str, settings: dict[str, Any]) -> dict[str, float]:
    return measure(arm, settings)


def run_isolated(measure: Measure, arm: str, settings: dict[str, Any], timeout: float | None = None) -> dict[str, float]:
    """measure(arm, settings) in a fresh process (measure must be a module-level function).
    `timeout` seconds: past it the process is killed and multiprocessing.TimeoutError raised."""
    import torch

    if torch.cuda.is_available():
        ctx = mp.get_context("spawn")
    else:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)  # read when the server starts (the first run)
    with ctx.Pool(1, maxtasksperchild=1) as pool:  # leaving the block terminates the worker, finished or not
        return pool.apply_async(_call, (measure, arm, settings)).get(timeout)


def alternate(
    arms: Sequence[str], repeats: int, measure: Measure, settings: dict[str, Any], isolate: bool = True, desc: str = "bench",
    deadline: float | None = None,
) -> list[dict[str, Any]]:
    """One row {arm, repeat, **metrics} per (repeat, arm), in the order they ran. `deadline` (a
    time.monotonic() value, isolated runs only): a run still going then is killed (TimeoutError)."""
    rows: list[dict[str, Any]] = []
    plan = [(r, arm) for r in range(repeats) for arm in order(arms, r)]
    for r, arm in progress(plan, desc=desc, unit="run"):
        left = None if deadline is None else max(deadline - time.monotonic(), 0.001)
        metrics = run_isolated(measure, arm, settings, left) if isolate else measure(arm, settings)
        rows.append({"arm": arm, "repeat": r, **metrics})
    return rows


def ratio_summary(rows: list[dict[str, Any]], numerator: str, denominator: str, metric: str) -> dict[str, Any]:
    """numerator/denominator of `metric` within each repeat: median, min, max and every value."""
    by = {(row["repeat"], row["arm"]): row[metric] for row in rows if metric in row}
    values = [by[(r, numerator)] / by[(r, denominator)] for r in sorted({r for r, _ in by})
              if (r, numerator) in by and (r, denominator) in by and by[(r, denominator)]]
    if not values:
        return {"median": None, "min": None, "max": None, "per_repeat": []}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "per_repeat": values}


def arm_summary(rows: list[dict[str, Any]], arm: str, metric: str) -> dict[str, Any]:
    values = [row[metric] for row in rows if row["arm"] == arm and row.get(metric) is not None]
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}
