"""Statistics of the project, on scipy.stats: one copy for the lab (vpt.lab) and the probe
(vpt.language.probe).

    mean_ci(x)             mean and Student-t interval (scipy.stats.ttest_1samp)
    paired(a, b)           paired t-test and the interval of the mean difference
                           (scipy.stats.ttest_rel), exact Wilcoxon signed-rank
    pearson(x, y)          Pearson r (scipy.stats.pearsonr)
    pearson_ci(x, y, ...)  BCa bootstrap interval of r over resampled (x, y) pairs
                           (scipy.stats.bootstrap, paired, seeded)

Degenerate inputs give defined values rather than scipy's warnings and NaNs, because a lab with
an all-zero metric (e.g. no model ever predicts the conflict's token) must still report:
  - fewer than 2 values: no interval and no test (NaN);
  - zero variance: the interval is the point itself; a paired test whose differences are all
    equal gives t = 0, p = 1 when they are 0, and t = +-inf, p = 0 otherwise;
  - Pearson r of a constant input, or of fewer than 2 pairs: NaN; its interval needs 3 pairs
    (pearson_ci leaves out resamples whose r is undefined).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

NAN = float("nan")


@dataclass
class MeanCI:
    mean: float
    lo: float
    hi: float
    n: int


def mean_ci(x: np.ndarray, level: float = 0.95) -> MeanCI:
    """Mean and the Student-t confidence interval of the mean (n values, n - 1 dof)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    m = float(x.mean()) if n else NAN
    if n < 2:
        return MeanCI(m, NAN, NAN, n)
    if np.ptp(x) == 0:
        return MeanCI(m, m, m, n)
    ci = sps.ttest_1samp(x, 0.0).confidence_interval(level)
    return MeanCI(m, float(ci.low), float(ci.high), n)


@dataclass
class Paired:
    mean_diff: float  # mean of a - b
    ci: MeanCI  # of the mean difference
    t: float
    p_t: float  # two-sided paired t-test
    p_wilcoxon: float  # two-sided exact Wilcoxon signed-rank (NaN when all differences are 0)
    wins: int  # pairs where a < b (a lower loss)
    n: int


def paired(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> Paired:
    """Paired comparison of a against b (a - b), e.g. a method against ntp over the same seeds."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = a - b
    n, wins = len(d), int((d < 0).sum())
    m = float(d.mean()) if n else NAN
    if n < 2:
        return Paired(m, MeanCI(m, NAN, NAN, n), NAN, NAN, NAN, wins, n)
    if np.ptp(d) == 0:  # every pair moved by the same amount: nothing to scale the t statistic by
        t, p = (0.0, 1.0) if m == 0 else (float(np.copysign(np.inf, m)), 0.0)
        ci = MeanCI(m, m, m, n)
    else:
        res = sps.ttest_rel(a, b)
        t, p = float(res.statistic), float(res.pvalue)
        low, high = res.confidence_interval(level)
        ci = MeanCI(m, float(low), float(high), n)
    p_w = float(sps.wilcoxon(a, b).pvalue) if np.any(d != 0) else NAN
    return Paired(m, ci, t, p, p_w, wins, n)


def _r(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Pearson r along `axis`, NaN where x or y is constant (vectorized over resamples)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sps.ConstantInputWarning)
        return sps.pearsonr(x, y, axis=axis).statistic


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return NAN
    return float(_r(x, y))


def pearson_ci(x: np.ndarray, y: np.ndarray, n_boot: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """BCa bootstrap confidence interval of Pearson r, resampling (x, y) pairs with a seeded
    generator. NaN for fewer than 3 pairs or a constant input.

    A resample with a constant x or y has no r (likely only with a handful of pairs); such
    resamples are left out and the interval is computed from the others, conditional on r being
    defined. Perfectly collinear pairs give every resample the same r, where the BCa bias
    correction is undefined: the interval is then the point (r, r)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    r = pearson(x, y)
    if len(x) < 3 or not np.isfinite(r):
        return NAN, NAN
    kw: dict[str, Any] = {"paired": True, "vectorized": True, "confidence_level": level, "method": "BCa"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sps.DegenerateDataWarning)
        res = sps.bootstrap((x, y), _r, n_resamples=n_boot, rng=np.random.default_rng(seed), **kw)
        dist = res.bootstrap_distribution
        finite = dist[np.isfinite(dist)]
        if finite.size and np.all(np.abs(finite - r) <= 1e-12):
            return r, r
        if finite.size < dist.size:  # the interval again, from the defined resamples only
            defined = dataclasses.replace(res, bootstrap_distribution=finite)
            res = sps.bootstrap((x, y), _r, n_resamples=0, bootstrap_result=defined, **kw)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)
