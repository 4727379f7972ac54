"""The vision lab report's text and figures, from vpt.report.lab_vision.summary (numbers only
there; this module formats them and states the verdict the numbers give)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from vpt import paths
from vpt.data.render import CLASSES
from vpt.report.figures import _new_figure, _no_results
from vpt.vision.grid import vision_group_runs

Config = dict[str, Any]
ALPHA = 0.05  # the two-sided level of every test the verdict cites


def class_name(raw_id: str) -> str:
    """A raw label id of the rendered world: 0 is void (sky, the border), i is CLASSES[i - 1]."""
    i = int(raw_id)
    return "void" if i == 0 else (CLASSES[i - 1] if i <= len(CLASSES) else f"class {i}")


def _pct(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.2f}"


def _points(x: float) -> str:
    """A difference of two fractions in percentage points, three decimals (the lab's are small)."""
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:+.3f}"


def _p(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3g}"


def verdict(c: dict[str, Any]) -> str:
    if c["p_t"] < ALPHA and c["mean_diff"] > 0:
        return "better"
    if c["p_t"] < ALPHA and c["mean_diff"] < 0:
        return "worse"
    return "no significant difference"


def _protocol(cfg: Config) -> list[str]:
    lab, v, synth = cfg["vision_lab"], cfg["vision"], cfg["synth"]
    t = v["train"]
    worlds = [f"`{n}`: {sum(s['splits'].values())} images, families {s.get('families', 'all equal')}"
              for n, s in synth.items() if n.startswith("lab_")]
    return ["## Protocol (fixed in config/lab_vision.yaml before any run)", "",
            *[f"- world {w}" for w in worlds],
            f"- learner: the tiny DINOv3-architecture ViT of the embedded default, DINO-pretrained from scratch on "
            f"`{v['base_model']['data']['dataset']}`, then {t['steps']} continued SSL steps per run, batch {t.get('batch_size')}, "
            f"the same for every method (compute-matched); a value step every {t['value']['meta_every']} steps, "
            f"designer lr {t['designer']['lr']}",
            "- feedback: " + ", ".join(f"{k} weight {x['weight']}" for k, x in v["feedback"]["tasks"].items()) + ", "
            "used only through g_down (the learner never trains on the labels)",
            f"- primary metric: `{lab['primary']['task']}` `{lab['primary']['metric']}` on "
            f"`{cfg['eval'][lab['primary']['task']]['dataset']}` split `{cfg['eval'][lab['primary']['task']]['split']}`, "
            "final checkpoint, higher is better",
            f"- tuning: group `{lab['tuning']['group']}`, task `{lab['tuning']['task']}` (the validation split); "
            f"method groups: {', '.join(f'`{g}`' for g in lab['groups'].values())}",
            f"- tests: `{lab['method']}` against {', '.join(lab['baselines'])}, paired by seed: two-sided paired t-test "
            f"and exact Wilcoxon signed-rank, level {ALPHA}", ""]


def _tuning(s: dict[str, Any]) -> list[str]:
    lines = ["## Tuning (validation split)", "", "| method | lr: validation score (%) | best | pinned | pin is best |",
             "|---|---|---|---|---|"]
    for method, t in s["tuning"].items():
        scores = ", ".join(f"{lr:g}: {_pct(v)}" for lr, v in sorted(t["scores"].items()))
        ok = "yes" if t["pinned"] == [t["best"]] else "**no**"
        lines.append(f"| {method} | {scores} | {t['best']:g} | {', '.join(f'{x:g}' for x in t['pinned'])} | {ok} |")
    return [*lines, ""]


def _primary(s: dict[str, Any]) -> list[str]:
    lines = ["## Primary metric (test split)", "", "| method | seeds | mean (%) | 95% CI | per seed |", "|---|---|---|---|---|"]
    for method, p in s["primary"].items():
        per = ", ".join(f"s{k}: {_pct(v)}" for k, v in sorted(p["seeds"].items()))
        lines.append(f"| {method} | {p['n']} | {_pct(p['mean'])} | [{_pct(p['lo'])}, {_pct(p['hi'])}] | {per} |")
    lines += ["", "| comparison | mean difference (points) | 95% CI | t-test p | Wilcoxon p | wins | verdict |",
              "|---|---|---|---|---|---|---|"]
    method = s["protocol"]["method"]
    for b, c in s["comparisons"].items():
        lines.append(f"| {method} − {b} | {_points(c['mean_diff'])} | [{_points(c['ci'][0])}, {_points(c['ci'][1])}] | "
                     f"{_p(c['p_t'])} | {_p(c['p_wilcoxon'])} | {c['wins']}/{c['n']} | {verdict(c)} |")
    return [*lines, "", "![primary](figures/lab_vision_primary.png)", ""]


def _masks(s: dict[str, Any], init_keep: float) -> list[str]:
    m = s["masks"]
    if not m:
        return ["## Masks", "", "No mask statistics were evaluated.", ""]
    regions = list(next(iter(m.values()))["region"])
    classes = sorted({c for x in m.values() for c in x["class"]}, key=int)
    lines = ["## Where the masks keep the image (vision_masks, test split, mean over seeds)", "",
             f"Keep = the mask's mean value (1 keeps the pixel). The designer starts at {init_keep} everywhere.", "",
             "| masks | seeds | keep | " + " | ".join(regions) + " |", "|---|---|---|" + "---|" * len(regions)]
    for k, x in m.items():
        lines.append(f"| {k} | {x['seeds']} | {x['keep']:.4f} | " + " | ".join(f"{x['region'][r]:.4f}" for r in regions) + " |")
    lines += ["", "| masks | " + " | ".join(class_name(c) for c in classes) + " |", "|---|" + "---|" * len(classes)]
    for k, x in m.items():
        lines.append(f"| {k} | " + " | ".join(f"{x['class'][c]:.4f}" if c in x["class"] else "" for c in classes) + " |")
    spread = {k: max(x["class"].values()) - min(x["class"].values()) for k, x in m.items() if x["class"]}
    lines += ["", "Spread across classes (max − min class keep): " +
              ", ".join(f"{k} {v:.4f}" for k, v in spread.items()) + ".", ""]
    return lines


def _control(cfg: Config, s: dict[str, Any]) -> list[str]:
    c, ctl = s["control"], cfg["vision_lab"]["control"]
    variants = cfg["vision"]["designers"]
    lrs = ", ".join(f"{lr:g}" for lr in sorted({r.lr for r in vision_group_runs(cfg, ctl["group"])}))
    lines = ["## Positive control: can the designer raise V when the value signal asks it to?", ""]
    if "mean_diff" not in c:
        return [*lines, "Fewer than two control seeds were trained: no test.", ""]
    per = ", ".join(f"s{seed}: {d:+.4g}" for seed, d in zip(c["seeds"], c["late_diff"]))
    ok = c["p_t"] < ALPHA and c["mean_diff"] > 0
    lines += [f"Learner lr {lrs} (frozen in effect); designer `{ctl['steer']}` ({variants[ctl['steer']]}) against "
              f"`{ctl['frozen']}` ({variants[ctl['frozen']]}). Both see "
              f"the same meta batches and heads, so V_steer − V_frozen over the second half of the meta steps is the "
              f"designer's doing: per seed {per}; mean {c['mean_diff']:+.4g}, 95% CI [{c['ci'][0]:+.4g}, {c['ci'][1]:+.4g}], "
              f"t-test p {_p(c['p_t'])}, Wilcoxon p {_p(c['p_wilcoxon'])}, positive in {c['positive']}/{len(c['seeds'])} seeds.",
              "", "**The machinery steers the masks toward a higher value.**" if ok else
              "**The control did not show the designer raising V**: the steering machinery is not shown to work here.",
              "", "![control](figures/lab_vision_control.png)", ""]
    return lines


def _diagnosis(s: dict[str, Any], init_keep: float) -> list[str]:
    """Measured facts that bound the answer: how far the learned masks moved, and how selective they are."""
    m, method = s["masks"], s["protocol"]["method"]
    lines = ["## What bounds the answer (measured)", ""]
    spread = {k: max(x["class"].values()) - min(x["class"].values()) for k, x in m.items() if x["class"]}
    for k, x in m.items():
        if not k.startswith("control:") and k != "random_masks":
            lines.append(f"- `{k}`'s final masks keep {x['keep']:.4f} on average (they start at {init_keep}): "
                         f"moved by {x['keep'] - init_keep:+.4f}; class keeps span {spread.get(k, float('nan')):.4f}.")
    if "random_masks" in spread:
        lines.append(f"- random masks of the target keep ratio span {spread['random_masks']:.4f} across classes "
                     "(what chance alone spreads).")
    c = s["control"]
    if "mean_diff" in c:
        lines.append(f"- the positive control's V gain (steered − frozen designer, second half): {c['mean_diff']:+.4g} "
                     f"(t-test p {_p(c['p_t'])}).")
    comps = s["comparisons"]
    if comps and all(verdict(x) == "no significant difference" for x in comps.values()):
        lines.append(f"- `{method}` is not distinguishable from any baseline at {len(next(iter(comps.values()))['seeds'])} seeds.")
    return [*lines, ""]


def _pictures(cfg: Config) -> list[str]:
    lab, steps = cfg["vision_lab"], int(cfg["vision"]["train"]["steps"])
    out = paths.results_dir(cfg)
    lines = ["## Pictures (seed 0: crop | mask | masked view, before training and at the end)", ""]
    for method, group in lab["groups"].items():
        for run in vision_group_runs(cfg, group):
            if run.seed != min(r.seed for r in vision_group_runs(cfg, group)):
                continue
            for step in (0, steps):
                pic = paths.mask_picture(paths.run_dir(cfg, run.id), step)
                if pic.exists():
                    lines.append(f"- {method} step {step}: ![{method} {step}]({pic.relative_to(out)})")
    return [*lines, ""]


def render(cfg: Config, s: dict[str, Any]) -> str:
    lab = cfg["vision_lab"]
    method, comps = lab["method"], s["comparisons"]
    said = "; ".join(f"against {b}: {verdict(c)} ({_points(c['mean_diff'])} points, p {_p(c['p_t'])})" for b, c in comps.items())
    head = [f"# The vision lab: does dense value feedback steer the learned views?", "",
            f"**Answer.** `{method}` on the primary metric, paired by seed, {said or 'not measured (fewer than 2 common seeds)'}.",
            "A difference is called better or worse only at p < 0.05 (two-sided paired t-test); otherwise it is reported "
            "as no significant difference, with its size and interval. (With 5 seeds the exact Wilcoxon test cannot go "
            "below p = 0.0625: it is shown, not used for the verdict.)", ""]
    text = [*head, *_protocol(cfg), *_tuning(s), *_primary(s), *_masks(s, float(cfg["vision"]["designer"]["init_keep"])),
            *_control(cfg, s), *_diagnosis(s, float(cfg["vision"]["designer"]["init_keep"])), *_pictures(cfg)]
    return "\n".join(text).rstrip() + "\n"


def primary_figure(s: dict[str, Any]) -> Figure:
    fig, axes = _new_figure(1, 1)
    ax = axes[0, 0]
    prim = s["primary"]
    if not prim:
        _no_results(ax)
        return fig
    for i, (method, p) in enumerate(prim.items()):
        seeds = sorted(p["seeds"])
        ax.scatter([i] * len(seeds), [100 * p["seeds"][k] for k in seeds], color="0.5", s=14, zorder=2)
        if np.isfinite(p["lo"]):
            ax.errorbar([i + 0.15], [100 * p["mean"]], yerr=[[100 * (p["mean"] - p["lo"])], [100 * (p["hi"] - p["mean"])]],
                        fmt="o", color="C0", capsize=4, zorder=3)
    ax.set_xticks(range(len(prim)), list(prim))
    ax.set_ylabel("test mIoU (%)")
    ax.set_title("primary metric per seed; mean and 95% CI")
    return fig


def control_figure(s: dict[str, Any]) -> Figure:
    fig, axes = _new_figure(1, 1)
    ax = axes[0, 0]
    curves = s["control"]["curves"]
    if not curves:
        _no_results(ax)
        return fig
    for j, (seed, c) in enumerate(sorted(curves.items())):
        ax.plot(c["steps"], c["steer"], color=f"C{j}", label=f"s{seed} steer")
        ax.plot(c["steps"], c["frozen"], color=f"C{j}", linestyle="--", label=f"s{seed} frozen")
    ax.set_xlabel("learner step")
    ax.set_ylabel("V = g_down · g_pre")
    ax.set_title("positive control: V of the steered and the frozen designer")
    ax.legend(fontsize=7, ncol=2)
    return fig
