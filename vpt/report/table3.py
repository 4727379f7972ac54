"""Table 3 (computational overhead) from `vpt bench overhead`'s JSON, laid out like the paper:
Method | Token/s | Step(s) | Peak mem | Vb frac, with V-Pretraining's change against the baseline
in parentheses. Absolute cells are medians over repeats; the changes are the medians of the
per-repeat ratios (the side-by-side quantity), so they need not equal the ratio of the medians.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from vpt.errors import VptError

COLUMNS = ["Method", "Token/s", "Step(s)", "Peak mem", "Vb frac"]


def _change(ratio: float | None) -> str:
    return "" if ratio is None else f" ({(ratio - 1) * 100:+.1f}%)"


def _mem(b: float | None) -> str:
    return "" if b is None else f"{b / 1e9:.2f} GB"


def table3(bench: dict[str, Any]) -> pd.DataFrame:
    try:
        arms, ratios, s = bench["arms"], bench["ratios"], bench["settings"]
    except KeyError as e:
        raise VptError(f"overhead benchmark JSON lacks {e}; rebuild it with `vpt bench overhead`") from None
    rows = []
    for arm, name in (("ntp", "Baseline"), ("vpt", "Value-Based")):
        a = arms[arm]
        vpt = arm == "vpt"
        rows.append([
            name,
            f"{a['tokens_per_s']['median']:.0f}" + (_change(ratios["tokens_per_s"]["median"]) if vpt else ""),
            f"{a['step_s']['median']:.4f}" + (_change(ratios["step_s"]["median"]) if vpt else ""),
            _mem(a["peak_mem"]["median"]) + (_change(ratios["peak_mem"]["median"]) if vpt else ""),
            f"{a['value_update_frac']['median'] * 100:.2f}%" if vpt else "–",
        ])
    df = pd.DataFrame(rows, columns=COLUMNS)
    m, est = bench.get("machine", {}), bench.get("estimators", {})
    device = m.get("device", "?")
    where = f"CPU ({s.get('threads')} threads)" if device == "cpu" else device
    learner = "the config's learner" if s.get("learner") == "config" else f"a {s.get('learner')}-shaped random-init learner"
    df.attrs.update(
        name="Table 3",
        caption=(f"Steady-state overhead on {where}, {learner}, measured side by side by "
                 f"`vpt bench overhead`: {s.get('repeats')} alternating runs per method, {s.get('warmup')} warm-up "
                 f"steps excluded, {s.get('window')}-step window."),
        label="tab:overhead",
        notes=[
            "Peak mem: CUDA peak allocated in the window on GPU, peak RSS of the process in the window on CPU."
            + (f" On CPU most of it is the imported libraries; above them, the run itself peaks at "
               f"{_mem(arms['ntp']['peak_mem_run']['median'])} (Baseline) and {_mem(arms['vpt']['peak_mem_run']['median'])} "
               f"(Value-Based), ratio {ratios['peak_mem_run']['median']:.3f}."
               if device == "cpu" and "peak_mem_run" in ratios and ratios["peak_mem_run"]["median"] else ""),
            "Vb frac: time inside the value update / window (CUDA events on GPU, wall clock on CPU).",
            "Ratio ranges over repeats: " + ", ".join(
                f"{k} [{ratios[k]['min']:.3f}, {ratios[k]['max']:.3f}]" for k in ("tokens_per_s", "step_s", "peak_mem")
                if ratios[k]["min"] is not None) + ".",
            f"Soft-target generation: {arms['vpt']['soft_targets_frac']['median'] * 100:.2f}% of the window.",
        ] + ([f"Meta-gradient on one batch: finite_difference {est['finite_difference_s'] * 1e3:.1f} ms vs autograd "
              f"{est['autograd_s'] * 1e3:.1f} ms (ratio {est['fd_over_autograd']:.2f}; relative gradient difference "
              f"{est['finite_difference_grad_rel_err']:.1e})."] if "fd_over_autograd" in est else []),
    )
    return df


def write_table3(bench_json: str | os.PathLike[str], stem: str | os.PathLike[str]) -> list[Path]:
    from vpt.report.render import write_table

    try:
        bench = json.loads(Path(bench_json).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise VptError(f"cannot read the overhead benchmark {bench_json}: {e}") from e
    return write_table(table3(bench), None, stem)
