"""How a display table's cells are written (shared by the language tables, vpt.report.tables, and
the vision ones, vpt.report.vision): one string per cell, "" where nothing was evaluated, and what
a cell means in `df.attrs` (name, caption, notes) so every rendering carries the same explanation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from vpt.report.records import Metric

STD_PHRASE = "mean ± sample standard deviation (ddof = 1)"


def percent(x: float) -> str:
    return f"{100.0 * x:.2f}"


def mean_std(mean: float, std: float, n_seeds: int) -> str:
    """"m ± s" in percent; a single seed has no spread, so it shows the mean alone."""
    if n_seeds < 2 or not np.isfinite(std):
        return percent(mean)
    return f"{percent(mean)} ± {percent(std)}"


def metric_mean_std(metric: Metric, mean: float, std: float, n_seeds: int) -> str:
    """mean_std in the metric's own display (percent for a fraction, metres for NYUv2 RMSE)."""
    if n_seeds < 2 or not np.isfinite(std):
        return metric.cell(mean)
    return f"{metric.cell(mean)} ± {metric.cell(std)}"


def format_lr(lr: float) -> str:
    """Compact scientific notation: 7.5e-6 rather than 7.5e-06."""
    s = f"{lr:.6g}"
    if "e" not in s:
        return s
    mantissa, exponent = s.split("e")
    return f"{mantissa}e{int(exponent)}"


def count_phrase(values: Sequence[int], noun: str) -> str:
    """"3 seeds", "2–3 seeds" (when cells differ), or "n seeds" while nothing is evaluated."""
    values = sorted(set(int(v) for v in values))
    if not values:
        return f"n {noun}s"
    lo, hi = values[0], values[-1]
    n = str(lo) if lo == hi else f"{lo}–{hi}"
    return f"{n} {noun}{'' if hi == 1 else 's'}"


def display_frame(rows: list[dict[str, str]], columns: list[str], **attrs: Any) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=columns, dtype="str") if rows else pd.DataFrame({c: pd.Series(dtype="str") for c in columns})
    df.attrs.update(attrs)
    return df
