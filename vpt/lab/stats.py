"""Statistics across seeds, written out so that the tests can check them against scipy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


@dataclass
class MeanCI:
    mean: float
    lo: float
    hi: float
    n: int


def mean_ci(x: np.ndarray, level: float = 0.95) -> MeanCI:
    """Mean and the Student-t confidence interval of the mean (n seeds, n - 1 dof)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    m = float(x.mean())
    if n < 2:
        return MeanCI(m, float("nan"), float("nan"), n)
    half = float(sps.t.ppf(0.5 + level / 2, n - 1)) * float(x.std(ddof=1)) / np.sqrt(n)
    return MeanCI(m, m - half, m + half, n)


@dataclass
class Paired:
    mean_diff: float  # mean of a - b
    ci: MeanCI
    t: float
    p_t: float  # two-sided paired t-test
    p_wilcoxon: float  # two-sided exact Wilcoxon signed-rank (nan when all differences are 0)
    wins: int  # seeds where a < b (a lower loss)
    n: int


def paired_t(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(t, two-sided p) of the paired t-test, by hand: t = mean(d) / (sd(d) / sqrt(n))."""
    d = np.asarray(a, float) - np.asarray(b, float)
    n = len(d)
    sd = d.std(ddof=1)
    if sd == 0:
        return (0.0, 1.0) if d.mean() == 0 else (float("inf") * np.sign(d.mean()), 0.0)
    t = d.mean() / (sd / np.sqrt(n))
    return float(t), float(2 * sps.t.sf(abs(t), n - 1))


def paired(a: np.ndarray, b: np.ndarray) -> Paired:
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = a - b
    t, p = paired_t(a, b)
    pw = float(sps.wilcoxon(a, b).pvalue) if np.any(d != 0) else float("nan")
    return Paired(float(d.mean()), mean_ci(d), t, p, pw, int((d < 0).sum()), len(d))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.asarray(x, float) - np.mean(x), np.asarray(y, float) - np.mean(y)
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else float("nan")


def pearson_bootstrap(x: np.ndarray, y: np.ndarray, n_boot: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of Pearson r over resampled (x, y) pairs."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    rs = np.array([pearson(x[i], y[i]) for i in idx])
    rs = rs[np.isfinite(rs)]
    lo, hi = np.quantile(rs, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
