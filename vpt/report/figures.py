"""The paper's language figures: token efficiency (Figure 2 left), feedback coverage (Figure 3
left) and Pass@k versus k (Figure 3 right).

Figures are built on `matplotlib.figure.Figure` with the Agg canvas, never through pyplot, so
they hold no global state and work headless. A figure whose records are missing still renders
(axes, labels and a "no results yet" note), so the pipeline can always produce its outputs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

from vpt.io import atomic_path
from vpt.report.records import Layout, as_layout, checkpoint_scores, method_rank, order_methods, seed_scores, select
from vpt.report.render import NO_RESULTS
from vpt.report.select import select_best_lr, summarize
from vpt.report.tables import MAIN_METHODS, format_lr

LayoutLike = Layout | Mapping[str, Any] | None

PASS1 = "GSM8K test Pass@1 (%)"
DPI = 150
_COLORS: dict[str, str] = {"ntp": "tab:blue", "vpt": "tab:orange", "random_feedback": "tab:green",
                           "uniform_smoothing": "tab:purple", "self_distill": "tab:brown"}
_PASSK = re.compile(r"^pass@(\d+)$")


def _color(method: str) -> str:
    return _COLORS.get(method, "tab:gray")


def _new_figure(n_rows: int, n_cols: int, panel: tuple[float, float] = (5.0, 3.8)) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(panel[0] * n_cols, panel[1] * n_rows), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(n_rows, n_cols, squeeze=False)


def _no_results(ax: Axes) -> None:
    ax.text(0.5, 0.5, NO_RESULTS, transform=ax.transAxes, ha="center", va="center", fontsize=12, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _mean_with_band(ax: Axes, x: np.ndarray, by_seed: pd.DataFrame, label: str, color: str) -> None:
    """Mean over the seed columns; a min–max band where at least two seeds were evaluated."""
    mean = by_seed.mean(axis=1, skipna=True).to_numpy()
    ax.plot(x, 100 * mean, marker="o", ms=3, color=color, label=label)
    n = by_seed.count(axis=1).to_numpy()
    if (n >= 2).any():
        lo, hi = by_seed.min(axis=1).to_numpy(), by_seed.max(axis=1).to_numpy()
        ax.fill_between(x, 100 * lo, 100 * hi, where=n >= 2, color=color, alpha=0.2, linewidth=0)


def _lines_to_draw(records: pd.DataFrame, curves: pd.DataFrame, group: str) -> list[tuple[str, str, float]]:
    """(model, method, lr) to plot: the only learning rate a method has in the group, or, when
    it has several, the one with the best seed-mean final Pass@1 (Table 1's rule); with several
    and no finished run to choose by, all of them (labelled), rather than an arbitrary one."""
    sel = select_best_lr(records, group=group)
    out = []
    for (model, method), runs in curves.groupby(["model", "method"], sort=True):
        lrs = sorted(runs["lr"].unique())
        hit = sel[(sel["model"] == model) & (sel["method"] == method)]
        if len(lrs) > 1 and len(hit):
            lrs = [float(hit.iloc[0]["lr"])]
        out += [(str(model), str(method), float(lr)) for lr in lrs]
    return out


def plot_tokens(records: pd.DataFrame, layout: LayoutLike = None) -> Figure:
    """Figure 2 (left), appendix A.7: GSM8K Pass@1 against unlabeled tokens processed, one row
    of panels per model: the raw curve, and the best-so-far curve (running maximum of each seed,
    then averaged, i.e. what early stopping at that point would have kept)."""
    layout = as_layout(layout)
    curves = checkpoint_scores(records, "tokens", "gsm8k", "exact_match")
    models = layout.order_models(curves["model"])
    fig, axes = _new_figure(max(len(models), 1), 2)
    if not models:
        for ax, title in zip(axes[0], ("raw", "best so far")):
            _no_results(ax)
            ax.set_title(title)
    lines = _lines_to_draw(records, curves, "tokens")
    for row, model in enumerate(models):
        ax_raw, ax_best = axes[row]
        mine = [(method, lr) for m, method, lr in lines if m == model]
        for method, lr in sorted(mine, key=lambda t: (method_rank(t[0]), t[1])):
            c = curves[(curves["model"] == model) & (curves["method"] == method) & (curves["lr"] == lr)]
            # One column per run (not per seed) so two settings sharing a seed are never merged.
            by_seed = c.pivot(index="step", columns="run", values="value").sort_index()
            x = c.groupby("step")["tokens"].max().reindex(by_seed.index).to_numpy(dtype=float)
            label = f"{layout.method_label(method)} (lr {format_lr(lr)}, {by_seed.shape[1]} seed{'s' * (by_seed.shape[1] != 1)})"
            _mean_with_band(ax_raw, x, by_seed, label, _color(method))
            _mean_with_band(ax_best, x, by_seed.cummax(), label, _color(method))
        ax_raw.set_title(f"{layout.model_label(model)}: raw")
        ax_best.set_title(f"{layout.model_label(model)}: best so far (running max)")
        for ax in (ax_raw, ax_best):
            ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    for ax in axes.ravel():
        ax.set_xlabel("Unlabeled tokens processed (tokens)")
        ax.set_ylabel(PASS1)
    fig.suptitle("Token efficiency: mean over seeds, band = min–max over seeds")
    return fig


def _baseline(records: pd.DataFrame, model: str, lr: float, corpus: str) -> pd.DataFrame:
    """The ntp runs a coverage point is compared with: same model, learning rate and corpus,
    from the coverage group if it has them, else from the main sweep."""
    for group in ("coverage", "main"):
        s = seed_scores(records, group, "gsm8k", "exact_match")
        s = s[(s["model"] == model) & (s["method"] == "ntp") & (s["lr"] == lr) & (s["corpus"] == corpus)]
        if len(s):
            return s
    return s


def plot_coverage(records: pd.DataFrame, layout: LayoutLike = None) -> Figure:
    """Figure 3 (left): final GSM8K Pass@1 against the number of feedback examples, mean ± sample
    std over seeds as error bars, one panel per model; the Baseline (which uses no feedback)
    as a horizontal line with a ±std band at the same learning rate where it was evaluated."""
    layout = as_layout(layout)
    scores = seed_scores(records, "coverage", "gsm8k", "exact_match")
    steered = scores[scores["method"] != "ntp"]
    models = layout.order_models(steered["model"])
    fig, axes = _new_figure(1, max(len(models), 1))
    if not models:
        _no_results(axes[0, 0])
    for ax, model in zip(axes[0], models):
        here = steered[steered["model"] == model]
        ns: set[int] = set()
        for (method, lr, corpus), runs in here.groupby(["method", "lr", "corpus"], sort=True):
            s = summarize(runs, ["feedback_n"])
            ns |= set(int(n) for n in s["feedback_n"])
            std = np.nan_to_num(s["std"].to_numpy(), nan=0.0)
            ax.errorbar(s["feedback_n"].to_numpy(dtype=float), 100 * s["mean"].to_numpy(dtype=float), yerr=100 * std, marker="o", capsize=4, color=_color(str(method)),
                        label=f"{layout.method_label(str(method))} (lr {format_lr(float(lr))})")
            base = _baseline(records, model, float(lr), str(corpus))
            if len(base):
                m, sd, n = base["score"].mean(), base["score"].std(ddof=1), len(base)
                band = ", band ± std" if n >= 2 else ""
                ax.axhline(100 * m, color=_color("ntp"), linestyle="--",
                           label=f"{layout.method_label('ntp')} (lr {format_lr(float(lr))}, {n} seed{'s' * (n != 1)}{band})")
                if n >= 2:
                    ax.axhspan(100 * (m - sd), 100 * (m + sd), color=_color("ntp"), alpha=0.12, linewidth=0)
        ax.set_xticks(sorted(ns))
        ax.set_title(layout.model_label(model))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes.ravel():
        ax.set_xlabel("GSM8K feedback examples (count)")
        ax.set_ylabel(PASS1)
    fig.suptitle("Feedback coverage: mean ± sample std over seeds")
    return fig


def passk_scores(records: pd.DataFrame) -> pd.DataFrame:
    """Pass@k per model, method and k at Table 1's learning rate (selected on greedy Pass@1),
    final checkpoint. Columns: model, method, lr, k, mean, std, n_seeds."""
    sel = select_best_lr(records, group="main")[["model", "method", "lr"]]
    parts = []
    for metric in sorted(set(select(records, "main", "gsm8k_passk")["metric"])):
        k = _PASSK.match(str(metric))
        if k is None:
            continue
        s = seed_scores(records, "main", "gsm8k_passk", str(metric)).merge(sel, on=["model", "method", "lr"])
        s["k"] = int(k.group(1))
        parts.append(s)
    if not parts:
        return pd.DataFrame(columns=["model", "method", "lr", "k", "mean", "std", "n_seeds"])
    return summarize(pd.concat(parts, ignore_index=True), ["model", "method", "lr", "k"])


def plot_passk(records: pd.DataFrame, layout: LayoutLike = None) -> Figure:
    """Figure 3 (right): Pass@k against k (log2 axis), one panel per model, Baseline vs
    V-Pretraining at Table 1's learning rates, mean over seeds (error bars: sample std)."""
    layout = as_layout(layout)
    scores = passk_scores(records)
    scores = scores[scores["method"].isin(MAIN_METHODS)]
    models = layout.order_models(scores["model"])
    fig, axes = _new_figure(1, max(len(models), 1))
    if not models:
        _no_results(axes[0, 0])
    for ax, model in zip(axes[0], models):
        here = scores[scores["model"] == model]
        for method in order_methods(here["method"]):
            s = here[here["method"] == method].sort_values("k")
            n = int(s["n_seeds"].min())
            std = np.nan_to_num(s["std"].to_numpy(dtype=float), nan=0.0)
            ax.errorbar(s["k"].to_numpy(dtype=float), 100 * s["mean"].to_numpy(dtype=float), yerr=100 * std, marker="o", capsize=3, color=_color(method),
                        label=f"{layout.method_label(method)} (lr {format_lr(float(s['lr'].iloc[0]))}, {n} seed{'s' * (n != 1)})")
        ks = sorted(int(k) for k in here["k"].unique())
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(ks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.set_title(layout.model_label(model))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes.ravel():
        ax.set_xlabel("k (samples per problem, log2 scale)")
        ax.set_ylabel("GSM8K test Pass@k (%)")
    fig.suptitle("Pass@k at each method's GSM8K-selected learning rate: mean ± sample std over seeds")
    return fig


def save_figure(fig: Figure, stem: str | os.PathLike[str]) -> list[Path]:
    """Write <stem>.png (150 dpi) and <stem>.pdf atomically. Timestamps and software tags are
    left out of the files so that an unchanged figure is byte-identical on a rerun."""
    stem = Path(stem)
    paths = []
    for fmt, metadata in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "Producer": None, "Creator": None})):
        path = stem.with_name(f"{stem.name}.{fmt}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=DPI, metadata=metadata)
        paths.append(path)
    return paths
