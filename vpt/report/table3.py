"""Table 3 (computational overhead) from `vpt bench overhead`'s JSON, laid out like the paper:
Method | Token/s | Step(s) | Peak mem | Vb frac, with V-Pretraining's change against the baseline
in parentheses. Absolute cells are medians over repeats; the changes are the medians of the
per-repeat ratios (the side-by-side quantity), so they need not equal the ratio of the medians.

table3_vision: the same layout from `vpt bench overhead --vision`'s JSON (dino vs vpt, Image/s).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from vpt.bench.learners import RANDOM_INIT
from vpt.errors import VptError

COLUMNS = ["Method", "Token/s", "Step(s)", "Peak mem", "Vb frac"]
VISION_COLUMNS = ["Method", "Image/s", "Step(s)", "Peak mem", "Vb frac"]


def _change(ratio: float | None) -> str:
    return "" if ratio is None else f" ({(ratio - 1) * 100:+.1f}%)"


def _mem(b: float | None) -> str:
    return "" if b is None else f"{b / 1e9:.2f} GB"


def _rows(bench: dict[str, Any], baseline: str, rate: str, rate_format: str) -> list[list[str]]:
    """[Baseline row, Value-Based row] of the overhead JSON `bench` (arms `baseline` and vpt)."""
    arms, ratios = bench["arms"], bench["ratios"]
    rows = []
    for arm, name in ((baseline, "Baseline"), ("vpt", "Value-Based")):
        a = arms[arm]
        vpt = arm == "vpt"
        rows.append([
            name,
            format(a[rate]["median"], rate_format) + (_change(ratios[rate]["median"]) if vpt else ""),
            f"{a['step_s']['median']:.4f}" + (_change(ratios["step_s"]["median"]) if vpt else ""),
            _mem(a["peak_mem"]["median"]) + (_change(ratios["peak_mem"]["median"]) if vpt else ""),
            f"{a['value_update_frac']['median'] * 100:.2f}%" if vpt else "–",
        ])
    return rows


def _peak_note(bench: dict[str, Any], baseline: str) -> str:
    arms, ratios = bench["arms"], bench["ratios"]
    cpu = bench.get("machine", {}).get("device", "?") == "cpu"
    return ("Peak mem: CUDA peak allocated in the window on GPU, peak RSS of the process in the window on CPU."
            + (f" On CPU most of it is the imported libraries; above them, the run itself peaks at "
               f"{_mem(arms[baseline]['peak_mem_run']['median'])} (Baseline) and {_mem(arms['vpt']['peak_mem_run']['median'])} "
               f"(Value-Based), ratio {ratios['peak_mem_run']['median']:.3f}."
               if cpu and "peak_mem_run" in ratios and ratios["peak_mem_run"]["median"] else ""))


def _ranges(ratios: dict[str, Any], keys: tuple[str, ...]) -> str:
    return "Ratio ranges over repeats: " + ", ".join(
        f"{k} [{ratios[k]['min']:.3f}, {ratios[k]['max']:.3f}]" for k in keys if ratios[k]["min"] is not None) + "."


def _where(bench: dict[str, Any]) -> str:
    device = bench.get("machine", {}).get("device", "?")
    return f"CPU ({bench['settings'].get('threads')} threads)" if device == "cpu" else device


def table3(bench: dict[str, Any]) -> pd.DataFrame:
    try:
        arms, ratios, s = bench["arms"], bench["ratios"], bench["settings"]
        rows = _rows(bench, "ntp", "tokens_per_s", ".0f")
    except KeyError as e:
        raise VptError(f"overhead benchmark JSON lacks {e}; rebuild it with `vpt bench overhead`") from None
    df = pd.DataFrame(rows, columns=COLUMNS)
    est = bench.get("estimators", {})
    learner = "the config's learner" if s.get("learner") == "config" else f"a {s.get('learner')}-shaped random-init learner"
    df.attrs.update(
        name="Table 3",
        caption=(f"Steady-state overhead on {_where(bench)}, {learner}, measured side by side by "
                 f"`vpt bench overhead`: {s.get('repeats')} alternating runs per method, {s.get('warmup')} warm-up "
                 f"steps excluded, {s.get('window')}-step window."),
        label="tab:overhead",
        notes=[
            _peak_note(bench, "ntp"),
            "Vb frac: time inside the value update / window (CUDA events on GPU, wall clock on CPU).",
            _ranges(ratios, ("tokens_per_s", "step_s", "peak_mem")),
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


def _pct(a: dict[str, Any], key: str) -> str:
    value = a.get(key, {}).get("median")
    return "–" if value is None else f"{value * 100:.2f}%"


def _targets_note(bench: dict[str, Any]) -> str:
    """Each target, the measured median ratio and whether it is met ("" for a JSON without targets)."""
    if "targets" not in bench:
        return ""
    t, met, r = bench["targets"], bench["target_met"], bench["ratios"]

    def one(key: str, what: str, op: str) -> str:
        value = r[key]["median"]
        shown = "n/a" if value is None else f"{value:.3f}"
        return f"{what} ratio {op} {t[key]:.2f} (measured {shown}: {'met' if met[key] else 'missed'})"

    return f"Targets: {one('images_per_s', 'Image/s', '>=')}, {one('peak_mem', 'peak memory', '<=')}."


def table3_vision(bench: dict[str, Any]) -> pd.DataFrame:
    """Table 3's layout for `vpt bench overhead --vision`: Baseline = dino, Image/s."""
    try:
        arms, ratios, s, t = bench["arms"], bench["ratios"], bench["settings"], bench["trainer"]
        rows = _rows(bench, "dino", "images_per_s", ".1f")
    except KeyError as e:
        raise VptError(f"vision overhead benchmark JSON lacks {e}; rebuild it with `vpt bench overhead --vision`") from None
    df = pd.DataFrame(rows, columns=VISION_COLUMNS)
    learner, data, v = bench.get("learner", {}), bench.get("data", {}), arms["vpt"]
    g, loc = t["global_crops"], t["local_crops"]
    df.attrs.update(
        name="Table 3 (vision)",
        caption=(f"Steady-state overhead of the vision methods on {_where(bench)}: DINO (Baseline) vs V-Pretraining, "
                 f"{learner.get('learner', s.get('learner'))} learner ({t['embed_dim']}-d, {t['depth']} blocks; "
                 f"weights: {learner.get('weights', '?')}), batch {t['batch_size']}, {g[0]} x {g[1]} + {loc[0]} x {loc[1]} "
                 f"crops, out_dim {t['out_dim']}, a value update every {t.get('meta_every')} steps on a "
                 f"{t.get('meta_batch_size')}-image meta batch ({t.get('estimator')}), measured side by side by "
                 f"`vpt bench overhead --vision`: {s.get('repeats')} alternating runs per method, {s.get('warmup')} "
                 f"warm-up steps excluded, {s.get('window')}-step window."),
        label="tab:overhead-vision",
        notes=[
            _peak_note(bench, "dino"),
            f"Vb frac: time inside the value update / window; of the window: feedback heads and g_down "
            f"{_pct(v, 'feedback_grad_frac')}, the designer's meta-gradient step {_pct(v, 'estimate_frac')}, "
            f"the meta-SSL batch (crops, teacher) {_pct(v, 'meta_batch_frac')}.",
            f"Designer masks on the learner's crops: {_pct(v, 'masks_frac')} of the window; multi-crop (decode, crops): "
            f"{_pct(arms['dino'], 'multicrop_frac')} (Baseline), {_pct(v, 'multicrop_frac')} (Value-Based).",
            _ranges(ratios, ("images_per_s", "step_s", "peak_mem")),
            _targets_note(bench),
        ] + ([f"Learner: {learner['note']}."] if learner.get("weights") == RANDOM_INIT and learner.get("note") else [])
          + ([f"Data: {data['note']}."] if data.get("kind") == "synthetic" else []),
    )
    df.attrs["notes"] = [n for n in df.attrs["notes"] if n]
    return df


def write_table3_vision(bench_json: str | os.PathLike[str], stem: str | os.PathLike[str]) -> list[Path]:
    """Table 3 (vision) -> <stem>.{md,csv,tex} from a saved JSON: `vpt bench overhead --vision`'s, or
    `vpt bench gpu`'s (its vision part). On demand: the vision benchmark is not in `all`, so this is
    not a registered report (vpt.report.registry)."""
    from vpt.report.render import write_table

    try:
        bench = json.loads(Path(bench_json).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise VptError(f"cannot read the vision overhead benchmark {bench_json}: {e}") from e
    if bench.get("benchmark") == "gpu":
        part = bench.get("parts", {}).get("vision", {})
        if part.get("status") != "ok":
            raise VptError(f"{bench_json}: the GPU check's vision part did not finish ({part.get('status', 'not run')}: "
                           f"{part.get('error', '')})")
        bench = {**part, "machine": bench["machine"]}
    return write_table(table3_vision(bench), None, stem)
