"""The lab report's figures: matplotlib Figures (no pyplot state, headless), written by
vpt.report.figures.save_figure as the paper's report is (<stem>.png, linked from report.md, and
<stem>.pdf, byte-identical on a rerun)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from vpt.report.figures import save_figure
from vpt.stats import mean_ci


def _panels(n: int) -> tuple[Figure, np.ndarray]:
    """A figure of n panels side by side."""
    fig = Figure(figsize=(5 * n, 4), layout="constrained")
    return fig, fig.subplots(1, n, squeeze=False)[0]


def plot_curves(df: pd.DataFrame, metrics: dict[str, str], methods: list[str], stem: Path) -> None:
    """Each metric (key -> title) against learner steps: per method the mean over seeds and its
    95% t-interval."""
    fig, axes = _panels(len(metrics))
    for ax, (key, label) in zip(axes, metrics.items()):
        for m in methods:
            g = df[df.method == m].groupby("step")[key]
            steps = np.array(sorted(g.groups))
            cis = [mean_ci(g.get_group(s).to_numpy()) for s in steps]
            mean = np.array([c.mean for c in cis])
            ax.plot(steps, mean, marker="o", label=m)
            ax.fill_between(steps, [c.lo for c in cis], [c.hi for c in cis], alpha=0.15)
        ax.set_xlabel("learner steps")
        ax.set_title(label, fontsize=10)
    axes[0].legend()
    save_figure(fig, stem)


def plot_probe(probe: dict[str, Any], stem: Path) -> None:
    """Predicted against realized one-step improvement, one panel per probe eta."""
    runs = probe["by_eta"]
    fig, axes = _panels(len(runs))
    for ax, r in zip(axes, runs):
        x = np.array([p["predicted"] for p in r["pairs"]])
        y = np.array([p["realized"] for p in r["pairs"]])
        ax.scatter(x, y, s=12)
        lim = [min(x.min(), y.min()), max(x.max(), y.max())]
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set_xlabel("predicted eta g_probe^T g_pre")
        ax.set_ylabel("realized probe-loss drop")
        ax.set_title(f"eta={r['eta']:g}: r={r['pearson_r']:.3f}", fontsize=10)
    save_figure(fig, stem)
