"""results/lab/report.md: curves, the paired comparison, the probe and the alpha analysis.

Every number in the report is computed here from the runs' evals.json, probe.json and the
designers saved with the vpt runs; nothing is typed in. Statistics are vpt.stats; figures
vpt.lab.figures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vpt.io import write_json, write_text
from vpt.lab import paths
from vpt.lab.analysis import HIGHER_IS_BETTER, alpha_analysis, curves, in_distribution, metrics_of, value_signal
from vpt.lab.config import LabConfig
from vpt.lab.figures import plot_curves, plot_probe
from vpt.lab.run import conflict_tokens, load_evals, train_config
from vpt.stats import mean_ci, paired, pearson, pearson_ci

def _conflict_prob_lines(cfg: LabConfig, out: Path, summary: dict[str, Any]) -> list[str]:
    """The learner's probability of the clean and the conflicting token at the conflict's position
    (held-out split), base model and each method's final step: how far each moved the learner."""
    _, clean, bad = conflict_tokens(cfg)
    first = load_evals(out, cfg.methods[0], cfg.seeds[0])["evals"][0]
    rows = {"base": ([first["conflict_p_clean"]], [first["conflict_p_conflicting"]])}
    for m in cfg.methods:
        finals = [load_evals(out, m, s)["evals"][-1] for s in cfg.seeds]
        rows[m] = ([f["conflict_p_clean"] for f in finals], [f["conflict_p_conflicting"] for f in finals])
    summary["conflict_probs"] = {m: {"p_clean": float(np.mean(a)), "p_conflicting": float(np.mean(b))} for m, (a, b) in rows.items()}
    lines = [f"At the conflict's token on the evaluation split: mean probability of the clean `{clean.strip()}` and the "
             f"conflicting `{bad.strip()}` (final step, mean over seeds).", "",
             "| model | p(clean) | p(conflicting) |", "|---|---|---|"]
    lines += [f"| {m} | {v['p_clean']:.3f} | {v['p_conflicting']:.3f} |" for m, v in summary["conflict_probs"].items()]
    return lines + [""]


def _history_lines(cfg: LabConfig, data: dict[str, Any]) -> list[str]:
    if cfg.conflict:
        c = cfg.conflict
        n_target = data["corpus_family_counts"].get(cfg.target, 0)
        return [f"- conflicting source (positive control): {data['conflicted_documents']} of the corpus's {n_target} "
                f"`{cfg.target}` documents write `{c['find'].strip()}` as `{c['replace'].strip()}` (share {c['share']} of those "
                "containing it); feedback, validation and test are clean. Designed after the main lab's tuning "
                "showed its designer moving alpha uniformly, and fixed (config/lab_conflict.yaml) before any run of it."]
    return ["- history: a first version of this lab (v1, same data, base model, seeds and test split, no tuning, "
            "every method at lr 1e-3, vpt with the `dot` value) used the held-out answer *loss* as its metric. "
            "Every soft-target method lowered it, random feedback and uniform smoothing more than vpt, because "
            "smoothing makes wrong argmaxes less confident; greedy accuracy was 0 for all. v2 (this report) "
            "pre-registered the token accuracy, which smoothing does not buy, and tuned every method."]


def _tuning_lines(cfg: LabConfig, out: Path) -> list[str]:
    path = paths.tuning_json(out)
    if not path.exists():
        return ["- tuning: none recorded for this output directory; every method ran with lab.train "
                "and lab.method_train as configured"]
    t = json.loads(path.read_text())
    n = len(next(iter(t["methods"].values()))["trials"])
    chosen = "; ".join(f"{m}: `{json.dumps(v['best_overrides'])}`{'' if v['pinned_is_best'] else ' (NOT what lab.method_train pins)'}"
                       for m, v in t["methods"].items())
    return [f"- tuning: {n} trials per method on the validation split at seed {t['seed']} (tuning/tuning.md), "
            f"scored by `{t['metric']}`; chosen: {chosen}"]


def _fmt_ci(c: Any, digits: int = 4) -> str:
    return f"{c.mean:.{digits}f} [{c.lo:.{digits}f}, {c.hi:.{digits}f}]"


def build_report(cfg: LabConfig, out: Path) -> dict[str, Any]:
    METRICS = metrics_of(cfg)  # noqa: N806 - the module's table, widened for this config
    df = curves(cfg, out)
    final = df[df.step == cfg.steps]
    plot_curves(df, METRICS, cfg.methods, paths.figure(out, "curves"))
    data = json.loads(paths.data_summary(paths.data_dir(out)).read_text())
    summary: dict[str, Any] = {"final": {}, "paired_vs_ntp": {}}
    lines = _protocol_lines(cfg, out, data) + _compute_lines(cfg, out) + _curve_lines(cfg, df, METRICS)
    lines += _paired_lines(cfg, out, final, METRICS, summary)
    lines += _in_distribution_lines(cfg, out, summary)
    lines += _probe_lines(cfg, out, summary)
    lines += _signal_lines(cfg, out, summary)
    lines += _alpha_lines(cfg, out, summary)
    goal = _goal(summary, cfg.primary_metric)
    summary["goal"] = goal
    lines += ["## Goal check", ""] + [f"- {k}: **{'met' if v['met'] else 'not met'}** ({v['detail']})" for k, v in goal.items()]
    lines.append("")
    write_json(paths.report_summary(out), summary)
    write_text(paths.report(out), "\n".join(lines) + "\n")
    return summary


def _protocol_lines(cfg: LabConfig, out: Path, data: dict[str, Any]) -> list[str]:
    lines = [f"# Lab report: value feedback on a tiny learner ({len(cfg.seeds)} seeds, {cfg.steps} learner steps)", ""]
    lines += ["## Protocol", "",
              f"- corpus: {data['documents']['corpus']} generated problems, target family `{cfg.target}` at "
              f"{data['target_share_realized']:.1%} of documents, only its training templates {cfg.train_templates}",
              f"- feedback: {cfg.feedback.n} labeled `{cfg.target}` problems (training templates), used only through g_down",
              f"- evaluation split: `{cfg.eval_split}` ({getattr(cfg, cfg.eval_split).n} `{cfg.target}` problems from held-out "
              f"templates {cfg.heldout_templates}, generator seed {getattr(cfg, cfg.eval_split).seed}); "
              f"non-target: {cfg.nontarget.n} problems of the other families",
              f"- seeds {cfg.seeds}, methods {cfg.methods}; all runs start from one base model and share learner "
              f"steps, batch, optimizer, schedule and, per seed, the data order (compute-matched)",
              f"- primary metric, fixed before the runs: `{cfg.primary_metric}` on the evaluation split at the last step",
              *_tuning_lines(cfg, out),
              *_history_lines(cfg, data), ""]
    return lines


def _compute_lines(cfg: LabConfig, out: Path) -> list[str]:
    lines: list[str] = []
    secs = {m: [json.loads(paths.run_summary(out, m, s).read_text()) for s in cfg.seeds] for m in cfg.methods}
    base_info = json.loads(paths.base_summary(out).read_text())
    lines += ["## Compute (1 thread per job)", "", f"- base pretraining: {cfg.base.get('steps')} steps, "
              f"{base_info['seconds']:.0f} s", "", "| method | train s per run (mean) | eval s per run (mean) |", "|---|---|---|"]
    lines += [f"| {m} | {np.mean([r['train_seconds'] for r in v]):.0f} | {np.mean([r['eval_seconds'] for r in v]):.0f} |"
              for m, v in secs.items()]
    lines.append("")
    return lines


def _curve_lines(cfg: LabConfig, df: pd.DataFrame, METRICS: dict[str, str]) -> list[str]:  # noqa: N803
    lines: list[str] = []
    lines += ["## Downstream metrics against learner steps", "", "![curves](curves.png)", "",
              "| method | step | " + " | ".join(METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
    for m in cfg.methods:
        for step in sorted(df.step.unique()):
            g = df[(df.method == m) & (df.step == step)]
            lines.append(f"| {m} | {step} | " + " | ".join(_fmt_ci(mean_ci(g[k].to_numpy())) for k in METRICS) + " |")
    lines += ["", "Mean over seeds [95% t-interval].", ""]

    return lines


def _paired_lines(cfg: LabConfig, out: Path, final: pd.DataFrame, METRICS: dict[str, str],  # noqa: N803
                  summary: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    lines += ["## Final comparison against ntp (paired across seeds)", "",
              "| method | metric | mean(method - ntp) [95% CI] | t | p (paired t) | p (Wilcoxon) | seeds better |",
              "|---|---|---|---|---|---|---|"]
    base = final[final.method == "ntp"].sort_values("seed")
    for m in cfg.methods:
        g = final[final.method == m].sort_values("seed")
        summary["final"][m] = {k: mean_ci(g[k].to_numpy()).__dict__ for k in METRICS}
        if m == "ntp":
            continue
        summary["paired_vs_ntp"][m] = {}
        for k in METRICS:
            a, b = g[k].to_numpy(), base[k].to_numpy()
            higher = HIGHER_IS_BETTER[k]
            pr = paired(-a, -b) if higher else paired(a, b)  # "better": lower loss / higher accuracy
            sign = -1 if higher else 1
            summary["paired_vs_ntp"][m][k] = {"mean_diff": sign * pr.mean_diff, "better_by": -pr.mean_diff, "p_t": pr.p_t, "p_wilcoxon": pr.p_wilcoxon,
                                               "better": pr.wins, "n": pr.n}
            ci = pr.ci
            lo, hi = sorted((sign * ci.lo, sign * ci.hi))
            lines.append(f"| {m} | {k} | {sign * pr.mean_diff:+.4f} [{lo:+.4f}, {hi:+.4f}] | {sign * pr.t:+.2f} | "
                         f"{pr.p_t:.3g} | {pr.p_wilcoxon:.3g} | {pr.wins}/{pr.n} |")
    lines += ["", "With 5 seeds the exact two-sided Wilcoxon p cannot go below 0.0625.", ""]
    if cfg.conflict:
        lines += _conflict_prob_lines(cfg, out, summary)

    return lines


def _in_distribution_lines(cfg: LabConfig, out: Path, summary: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    idf = in_distribution(cfg, out)
    summary["in_distribution"] = {}
    b = idf[idf.method == "base"].iloc[0]
    lines += ["## Secondary: target family, training templates, unseen numbers (final step)", "",
              "Added after seeing v1's held-out-template results, so not part of the pre-registered protocol: "
              f"the probe split (`{cfg.target}` problems from the training templates, generator seed {cfg.probe.seed}, "
              f"none trained on, none in the feedback set). Base model: answer loss {b.id_answer_loss:.4f}, "
              f"token accuracy {b.id_token_accuracy:.4f}.", "",
              "| method | metric | value [95% CI] | mean(method - ntp) [95% CI] | p (paired t) | p (Wilcoxon) | seeds better |",
              "|---|---|---|---|---|---|---|"]
    for k, higher in (("id_token_accuracy", True), ("id_answer_loss", False)):
        ref = idf[idf.method == "ntp"].sort_values("seed")[k].to_numpy()
        for m in cfg.methods:
            a = idf[idf.method == m].sort_values("seed")[k].to_numpy()
            entry = summary["in_distribution"].setdefault(m, {})
            entry[k] = mean_ci(a).__dict__
            if m == "ntp":
                lines.append(f"| ntp | {k} | {_fmt_ci(mean_ci(a))} | | | | |")
                continue
            pr = paired(-a, -ref) if higher else paired(a, ref)
            d = paired(a, ref)
            entry[k].update(mean_diff=d.mean_diff, better_by=-pr.mean_diff, p_t=pr.p_t, p_wilcoxon=pr.p_wilcoxon, better=pr.wins)
            lines.append(f"| {m} | {k} | {_fmt_ci(mean_ci(a))} | {d.mean_diff:+.4f} [{d.ci.lo:+.4f}, {d.ci.hi:+.4f}] | "
                         f"{pr.p_t:.3g} | {pr.p_wilcoxon:.3g} | {pr.wins}/{pr.n} |")
    lines.append("")

    return lines


def _probe_lines(cfg: LabConfig, out: Path, summary: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    probe_path = paths.probe_result(out)
    if probe_path.exists():
        probe = json.loads(probe_path.read_text())
        plot_probe(probe, paths.figure(out, "probe"))
        lines += ["## Probe: predicted vs realized one-step improvement (A.6)", "", "![probe](probe.png)", "",
                  f"On the final `{probe['method']}` seed-{probe['seed']} learner, scope `{probe['scope']}`, "
                  f"{probe['by_eta'][0]['probes']} probes per eta.", "",
                  "| eta | r (probe batch) [95% bootstrap] | r (g_down from feedback subset) [95% bootstrap] | sign agreement |",
                  "|---|---|---|---|"]
        summary["probe"] = []
        for r in probe["by_eta"]:
            x = np.array([p["predicted"] for p in r["pairs"]])
            y = np.array([p["realized"] for p in r["pairs"]])
            xf = np.array([p["predicted_from_feedback_subset"] for p in r["pairs"]])
            rr, ci = pearson(x, y), pearson_ci(x, y, cfg.bootstrap, 0)
            rf, cif = pearson(xf, y), pearson_ci(xf, y, cfg.bootstrap, 0)
            summary["probe"].append({"eta": r["eta"], "r": rr, "ci": ci, "r_feedback_subset": rf, "ci_feedback_subset": cif})
            lines.append(f"| {r['eta']:g} | {rr:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] | {rf:.3f} [{cif[0]:.3f}, {cif[1]:.3f}] | "
                         f"{r['sign_agreement']:.2f} |")
        lines.append("")

    return lines


def _signal_lines(cfg: LabConfig, out: Path, summary: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    sig = value_signal(cfg, out)
    summary["value_signal"] = sig
    lines += ["## What the value signal asks for (base model, before any designer training)", "",
              "dV/dalpha per answer token of the alpha documents (vpt.lab.signal): positive where moving target mass "
              "from the label to the candidates raises V. g_down: mean of 8 feedback batches, unit norm; q uniform.", "",
              "| tokens | mean dV/dalpha | share > 0 | mean abs | tokens |", "|---|---|---|---|---|"]
    for name, v in {**sig.get("conflict", {}), **sig["by_family"]}.items():
        lines.append(f"| {name} | {v['mean']:+.4f} | {v['share_positive']:.2f} | {v['mean_abs']:.4f} | {v['n']} |")
    lines.append("")

    return lines


def _alpha_lines(cfg: LabConfig, out: Path, summary: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if "vpt" in cfg.methods:
        al = alpha_analysis(cfg, out)
        summary["alpha"] = al
        lines += ["## What the designer learned (alpha of the final vpt designers, all seeds)", "",
                  f"alpha quantiles (5/25/50/75/95%): " + ", ".join(f"{v:.3f}" for v in al["quantiles"].values()) +
                  f" (alpha_max {train_config(cfg, 'vpt', cfg.seeds[0]).designer.alpha_max}; initial alpha_max/2)", "",
                  "| family | mean alpha | std | tokens |", "|---|---|---|---|"]
        lines += [f"| {f}{' (target)' if f == cfg.target else ''} | {v['mean']:.4f} | {v['std']:.4f} | {v['n']} |"
                  for f, v in al["by_family"].items()]
        lines += ["", "| token kind | mean alpha | std | tokens |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['mean']:.4f} | {v['std']:.4f} | {v['n']} |" for k, v in al["by_kind"].items()]
        lines += ["", "Target minus other families, per seed: " +
                  ", ".join(f"s{s}: {v:+.4f}" for s, v in al["by_seed_target_minus_rest"].items()), ""]
        if "conflict" in al:
            c = al["conflict"]
            lines += [f"At the conflict's token (after `{c['prev']}`): alpha where the label is the clean `{c['clean']}` vs the "
                      f"conflicting source's `{c['conflicting']}`, and at every other answer token:", "",
                      "| seed | clean label | conflicting label | elsewhere |", "|---|---|---|---|"]
            lines += [f"| {s} | {v['clean']:.4f} | {v['conflicting']:.4f} | {v['elsewhere']:.4f} |" for s, v in c["by_seed"].items()]
            lines.append("")

    return lines


def _goal(s: dict[str, Any], metric: str) -> dict[str, Any]:
    g: dict[str, Any] = {}
    v = s["paired_vs_ntp"].get("vpt", {}).get(metric)
    if v:  # better_by > 0: lower loss, higher accuracy than ntp
        g[f"vpt better than ntp (held-out {metric}, paired t p < 0.05)"] = {
            "met": v["better_by"] > 0 and v["p_t"] < 0.05,
            "detail": f"better by {v['better_by']:+.4f}, paired t p={v['p_t']:.3g}, Wilcoxon p={v['p_wilcoxon']:.3g}, "
                      f"{v['better']}/{v['n']} seeds"}
    r = s["paired_vs_ntp"].get("random_feedback", {}).get(metric)
    if r:
        g["random_feedback not better than ntp"] = {
            "met": bool(np.isfinite(r["p_t"])) and not (r["better_by"] > 0 and r["p_t"] < 0.05),  # NaN: not measured
            "detail": f"better by {r['better_by']:+.4f}, paired t p={r['p_t']:.3g}"}
    if s.get("probe"):
        best = s["probe"][0]
        g["probe r >= 0.6 (smallest eta)"] = {"met": best["r"] >= 0.6, "detail": f"eta {best['eta']:g}: r={best['r']:.3f} with the paper's probe-batch "
                                                      f"prediction; r={best['r_feedback_subset']:.3f} when g_down comes "
                                                      f"from the feedback subset"}
    return g
