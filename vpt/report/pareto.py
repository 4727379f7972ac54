"""Figure 2 (right), appendix A.8: the segmentation / depth trade-off of the vision `pareto` group.

Every run of the group (final checkpoint) is a point in the (ADE20K mIoU, NYUv2 −RMSE) plane,
both larger = better (the paper plots 1 − RMSE: the same order, shifted). The Pareto front, the
points no other point beats in one coordinate without losing in the other, is drawn connected;
dominated points are hollow. Each point is labelled by its g_down weighting w_seg:w_depth and
designer variant. The DINO baseline of vision group `main` (at the lr Table 1 chose by ADE20K
mIoU, mean over seeds) is a reference where evaluated. One panel per ViT: a front compares runs
of one backbone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from vpt.report.cells import format_lr
from vpt.report.figures import _new_figure, _no_results
from vpt.report.records import Layout, as_layout, seed_scores
from vpt.report.select import select_best_lr
from vpt.report.vision import MAIN, SELECTION_METRIC
from vpt.vision.grid import DEFAULT_DESIGNER, VisionRun, record_group

LayoutLike = Layout | Mapping[str, Any] | None

PARETO = record_group("pareto")
POINT_COLUMNS: tuple[str, ...] = ("model", "method", "lr", "seed", "variant", "run", "label", "miou", "rmse", "front")


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """Whether each (x, y) point is on the Pareto front when both coordinates are maximised:
    no other point is at least as large in both and larger in one. Equal points do not dominate
    each other (both stay on the front).

    A sweep in descending x, O(n log n): a point is dominated by a point of larger x that is at
    least as high, or by one of the same x that is higher."""
    order = sorted(range(len(points)), key=lambda i: -points[i][0])
    front = [True] * len(points)
    best = -np.inf  # the highest y among points of strictly larger x than the current group
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and points[order[j]][0] == points[order[i]][0]:
            j += 1
        group = order[i:j]
        top = max(points[k][1] for k in group)
        for k in group:
            front[k] = not (best >= points[k][1] or top > points[k][1])
        best = max(best, top)
        i = j
    return front


def point_label(run_id: str) -> str:
    """"w_seg:w_depth" and the designer variant where it is not the configured one: "16:1 tv-high"."""
    run = VisionRun.parse(run_id)
    w = f"{run.weights[0]:g}:{run.weights[1]:g}" if run.weights is not None else "no feedback"
    return w if run.designer == DEFAULT_DESIGNER else f"{w} {run.designer}"


def pareto_points(records: pd.DataFrame) -> pd.DataFrame:
    """One row per run of the pareto group with both final ADE20K mIoU and NYUv2 RMSE evaluated:
    POINT_COLUMNS, `front` computed per model on (mIoU, −RMSE), best mIoU first. The label gains
    the lr and seed where a model's points have several, so that no two points read the same."""
    seg = seed_scores(records, PARETO, "ade20k", "miou").rename(columns={"score": "miou"})
    depth = seed_scores(records, PARETO, "nyuv2", "rmse")[["run", "score"]].rename(columns={"score": "rmse"})
    pts = seg.merge(depth, on="run", how="inner")
    if pts.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in POINT_COLUMNS})
    parts = []
    for _, here in pts.groupby("model", sort=True):
        here = here.copy()
        here["label"] = [point_label(r) for r in here["run"]]
        if here["lr"].nunique() > 1:
            here["label"] += [f" lr {format_lr(lr)}" for lr in here["lr"]]
        if here["seed"].nunique() > 1:
            here["label"] += [f" s{s}" for s in here["seed"]]
        here["front"] = pareto_front(list(zip(here["miou"], -here["rmse"])))
        parts.append(here)
    out = pd.concat(parts, ignore_index=True).sort_values(["model", "miou", "rmse", "run"], ascending=[True, False, True, True])
    return out.loc[:, list(POINT_COLUMNS)].reset_index(drop=True)


def incomplete_runs(records: pd.DataFrame, model: str) -> int:
    """Runs of the pareto group with only one of the two evaluations (not drawn: no point)."""
    runs = [set(s.loc[s["model"] == model, "run"]) for s in
            (seed_scores(records, PARETO, "ade20k", "miou"), seed_scores(records, PARETO, "nyuv2", "rmse"))]
    return len(runs[0] ^ runs[1])


def baseline_point(records: pd.DataFrame, model: str) -> tuple[float, float, float, int] | None:
    """(mIoU, RMSE, lr, seeds): DINO of vision group `main` at the lr Table 1 chose by ADE20K mIoU,
    each metric's mean over the seeds evaluated on both; None where there is none."""
    sel = select_best_lr(records, group=MAIN, task=SELECTION_METRIC[0], metric=SELECTION_METRIC[1])
    sel = sel[(sel["model"] == model) & (sel["method"] == "dino")]
    if sel.empty:
        return None
    lr = float(sel.iloc[0]["lr"])
    seg = seed_scores(records, MAIN, "ade20k", "miou")
    depth = seed_scores(records, MAIN, "nyuv2", "rmse")[["run", "score"]]
    both = seg[(seg["model"] == model) & (seg["method"] == "dino") & (seg["lr"] == lr)].merge(depth, on="run", suffixes=("_seg", "_depth"))
    if both.empty:
        return None
    return float(both["score_seg"].mean()), float(both["score_depth"].mean()), lr, len(both)


def plot_pareto(records: pd.DataFrame, layout: LayoutLike = None) -> Figure:
    """Figure 2 (right): (ADE20K mIoU, NYUv2 −RMSE) of every pareto run, the front connected."""
    layout = as_layout(layout)
    pts = pareto_points(records)
    models = layout.order_models(pts["model"])
    fig, axes = _new_figure(1, max(len(models), 1), panel=(6.0, 4.6))
    if not models:
        _no_results(axes[0, 0])
    for ax, model in zip(axes[0], models):
        here = pts[pts["model"] == model]
        on, off = here[here["front"].astype(bool)].sort_values("miou"), here[~here["front"].astype(bool)]
        ax.plot(100 * on["miou"].to_numpy(float), -on["rmse"].to_numpy(float), "-o", color="tab:orange", ms=6,
                label=f"Pareto front ({len(on)} run{'s' * (len(on) != 1)})")
        ax.scatter(100 * off["miou"].to_numpy(float), -off["rmse"].to_numpy(float), facecolors="none", edgecolors="tab:gray",
                   s=36, label=f"dominated ({len(off)} run{'s' * (len(off) != 1)})")
        for _, p in here.iterrows():
            ax.annotate(str(p["label"]), (100 * float(p["miou"]), -float(p["rmse"])), xytext=(4, 3),
                        textcoords="offset points", fontsize=7)
        base = baseline_point(records, str(model))
        if base is not None:
            miou, rmse, lr, n = base
            ax.scatter([100 * miou], [-rmse], marker="*", s=120, color="black", zorder=3,
                       label=f"{layout.method_label('dino')}, main (lr {format_lr(lr)}, {n} seed{'s' * (n != 1)})")
            ax.axvline(100 * miou, color="black", linestyle=":", linewidth=0.8)
            ax.axhline(-rmse, color="black", linestyle=":", linewidth=0.8)
        missing = incomplete_runs(records, str(model))
        if missing:
            ax.text(0.01, 0.01, f"{missing} run{'s' * (missing != 1)} with only one of ADE20K / NYUv2 evaluated: not shown",
                    transform=ax.transAxes, fontsize=7, color="0.4")
        ax.set_title(layout.model_label(str(model)))
        ax.margins(x=0.15, y=0.1)  # room for the labels of the outermost points
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes.ravel():
        ax.set_xlabel("ADE20K mIoU (%), higher is better")
        ax.set_ylabel("NYUv2 −RMSE (m), higher is better")
    fig.suptitle("Segmentation / depth trade-off, one point per run (final checkpoint)\n"
                 "labels: g_down weighting w_seg:w_depth [designer variant]", fontsize=10)
    return fig
