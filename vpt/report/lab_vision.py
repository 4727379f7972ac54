"""The vision lab's report (<results_dir>/report.md): did dense value feedback steer the learned
views, and did it beat the baselines? Read from the pipeline's own records.

The protocol is the config's `vision_lab` section (config/lab_vision.yaml), fixed before any run:
the primary metric (task, metric), the tuning group (every method x lr at the tuning seed, scored
on the validation split), one group per method (its seeds at its pinned lr), the baselines, and
the positive control (the method's run with a designer trained on -V alone beside its twin whose
designer does not move). What the report computes:

  tuning        the validation score of every trial; the best lr per method against its pin
  primary       per method: mean and Student-t 95% CI over seeds; the method against each baseline
                paired by seed (vpt.stats.paired: t-test, exact Wilcoxon, wins)
  masks         vision_masks: mean keep per region and per class, mean over seeds
  control       per seed, the mean of V_steer - V_frozen over the meta steps of the second half
                (the same meta batches and heads: the learner is frozen), paired over seeds
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from vpt import paths
from vpt.vision.grid import VisionRun, record_group, vision_group_evaluations, vision_group_runs

Config = dict[str, Any]
Evaluation = tuple[str, VisionRun, None, str]
FIGURES = ("lab_vision_primary", "lab_vision_control")


def lab_groups(cfg: Config) -> list[str]:
    lab = cfg["vision_lab"]
    return [lab["tuning"]["group"], *lab["groups"].values(), lab["control"]["group"]]


def lab_evaluations(cfg: Config) -> list[Evaluation]:
    """(record group, run, None, task) of every evaluation the report reads."""
    return [(record_group(g), run, step, task) for g in dict.fromkeys(lab_groups(cfg))
            for run, step, task in vision_group_evaluations(cfg, g)]


def control_runs(cfg: Config) -> list[VisionRun]:
    return vision_group_runs(cfg, cfg["vision_lab"]["control"]["group"])


def lab_inputs(cfg: Config) -> list[str]:
    """The evaluation results, and the control runs' finished state (their metrics.jsonl is read)."""
    evals = {str(paths.eval_result(cfg, r.id, t)) for _, r, _, t in lab_evaluations(cfg)}
    return sorted(evals | {str(paths.final_state(paths.run_dir(cfg, r.id))) for r in control_runs(cfg)})


def lab_outputs(cfg: Config) -> list[str]:
    out = paths.results_dir(cfg)
    return [str(out / "report.md"), str(out / "report.json"),
            *(str(paths.figure_stem(cfg, f)) + ext for f in FIGURES for ext in (".png", ".pdf"))]


def _metrics(cfg: Config, run: VisionRun, task: str) -> dict[str, Any] | None:
    path = paths.eval_result(cfg, run.id, task)
    return json.loads(path.read_text())["metrics"] if path.exists() else None


def tuning(cfg: Config) -> dict[str, Any]:
    """Per method: {lr: validation score}, the best lr (ties: the smaller) and the pinned one."""
    lab = cfg["vision_lab"]
    metric, out = lab["primary"]["metric"], {}
    for run in vision_group_runs(cfg, lab["tuning"]["group"]):
        m = _metrics(cfg, run, lab["tuning"]["task"])
        if m is not None:
            out.setdefault(run.method, {"scores": {}})["scores"][run.lr] = float(m[metric])
    for method, t in out.items():
        t["best"] = max(sorted(t["scores"]), key=lambda lr: t["scores"][lr])
        group = lab["groups"].get(method)
        t["pinned"] = sorted({r.lr for r in vision_group_runs(cfg, group)}) if group else []
    return out


def primary(cfg: Config) -> dict[str, dict[int, float]]:
    """method -> {seed: primary metric of its final model}."""
    lab = cfg["vision_lab"]
    task, metric = lab["primary"]["task"], lab["primary"]["metric"]
    out: dict[str, dict[int, float]] = {}
    for method, group in lab["groups"].items():
        for run in vision_group_runs(cfg, group):
            m = _metrics(cfg, run, task)
            if m is not None and m.get(metric) is not None:
                out.setdefault(method, {})[run.seed] = float(m[metric])
    return out


def comparisons(scores: dict[str, dict[int, float]], method: str, baselines: list[str]) -> dict[str, Any]:
    """The method against each baseline over their common seeds (higher is better: wins = method > baseline)."""
    from vpt.stats import paired  # scipy: not for the Snakefile, which reads only the targets above

    out = {}
    for b in baselines:
        seeds = sorted(set(scores.get(method, {})) & set(scores.get(b, {})))
        if len(seeds) < 2:
            continue
        a, c = np.array([scores[method][s] for s in seeds]), np.array([scores[b][s] for s in seeds])
        p = paired(a, c)
        out[b] = {"seeds": seeds, "mean_diff": p.mean_diff, "ci": [p.ci.lo, p.ci.hi], "t": p.t, "p_t": p.p_t,
                  "p_wilcoxon": p.p_wilcoxon, "wins": int((a > c).sum()), "n": p.n}
    return out


def mask_stats(cfg: Config) -> dict[str, dict[str, Any]]:
    """method (or control variant) -> mean over seeds of vision_masks' keep, region and class keeps."""
    lab, acc = cfg["vision_lab"], {}
    sources = [(m, g) for m, g in lab["groups"].items()] + [(None, lab["control"]["group"])]
    for method, group in sources:
        for run in vision_group_runs(cfg, group):
            m = _metrics(cfg, run, "vision_masks") if "vision_masks" in _tasks(cfg, group) else None
            if m is None:
                continue
            key = method or f"control:{run.designer}"
            a = acc.setdefault(key, {"keep": [], "region": {}, "class": {}, "pixels": {}})
            a["keep"].append(m["keep"])
            for r, v in m["region_keep"].items():
                a["region"].setdefault(r, []).append(v)
            for c, v in m["class_keep"].items():
                a["class"].setdefault(c, []).append(v)
                a["pixels"][c] = a["pixels"].get(c, 0) + m["class_pixels"][c]
    return {k: {"keep": float(np.mean(a["keep"])), "seeds": len(a["keep"]),
                "region": {r: float(np.mean(v)) for r, v in a["region"].items()},
                "class": {c: float(np.mean(v)) for c, v in a["class"].items()}, "pixels": a["pixels"]}
            for k, a in acc.items()}


def _tasks(cfg: Config, group: str) -> list[str]:
    from vpt.vision.grid import vision_group_spec

    return list(vision_group_spec(cfg, group)["tasks"])


def value_curve(cfg: Config, run: VisionRun) -> dict[int, float]:
    """step -> the logged V of one run's meta steps."""
    path = paths.run_dir(cfg, run.id) / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    return {int(r["step"]): float(r["value"]) for r in rows if "value" in r}


def control(cfg: Config) -> dict[str, Any]:
    """Per seed: V of the steered and the frozen designer per meta step, and the mean difference
    over the second half of the meta steps; paired over seeds."""
    from vpt.stats import paired

    c = cfg["vision_lab"]["control"]
    by_seed: dict[int, dict[str, dict[int, float]]] = {}
    for run in control_runs(cfg):
        curve = value_curve(cfg, run)
        if curve:
            by_seed.setdefault(run.seed, {})[run.designer] = curve
    seeds, diffs, curves = [], [], {}
    for seed, v in sorted(by_seed.items()):
        if c["steer"] not in v or c["frozen"] not in v:
            continue
        steps = sorted(set(v[c["steer"]]) & set(v[c["frozen"]]))
        late = steps[len(steps) // 2:]
        seeds.append(seed)
        diffs.append(float(np.mean([v[c["steer"]][s] - v[c["frozen"]][s] for s in late])))
        curves[seed] = {"steps": steps, "steer": [v[c["steer"]][s] for s in steps], "frozen": [v[c["frozen"]][s] for s in steps]}
    out: dict[str, Any] = {"seeds": seeds, "late_diff": diffs, "curves": curves}
    if len(diffs) >= 2:
        p = paired(np.array(diffs), np.zeros(len(diffs)))
        out.update(mean_diff=p.mean_diff, ci=[p.ci.lo, p.ci.hi], p_t=p.p_t, p_wilcoxon=p.p_wilcoxon,
                   positive=int((np.array(diffs) > 0).sum()))
    return out


def summary(cfg: Config) -> dict[str, Any]:
    from vpt.stats import mean_ci

    lab = cfg["vision_lab"]
    scores = primary(cfg)
    return {"protocol": lab, "tuning": tuning(cfg),
            "primary": {m: {"seeds": s, **vars(mean_ci(np.array(list(s.values()))))} for m, s in scores.items()},
            "comparisons": comparisons(scores, lab["method"], list(lab["baselines"])),
            "masks": mask_stats(cfg), "control": control(cfg)}


def write_lab_report(cfg: Config) -> tuple[list[Path], str]:
    """report.md, report.json and the two figures, each written atomically."""
    from vpt.io import write_json, write_text
    from vpt.report.figures import save_figure
    from vpt.report.lab_vision_text import control_figure, primary_figure, render

    s = summary(cfg)
    out = paths.results_dir(cfg)
    written = save_figure(primary_figure(s), paths.figure_stem(cfg, FIGURES[0]))
    written += save_figure(control_figure(s), paths.figure_stem(cfg, FIGURES[1]))
    write_json(out / "report.json", s)
    write_text(out / "report.md", render(cfg, s))
    n = len([e for e in lab_evaluations(cfg) if paths.eval_result(cfg, e[1].id, e[3]).exists()])
    return [out / "report.md", out / "report.json", *written], f"from {n} evaluation records and the control runs' logs"
