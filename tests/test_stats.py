"""vpt.stats against references computed another way: the textbook formulas by hand, exact
enumeration (Wilcoxon), a brute-force BCa interval on the same resamples, and scipy's own
functions called differently; plus the degenerate cases the lab's reports run into."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps
from scipy.special import ndtr, ndtri

from vpt.stats import mean_ci, paired, pearson, pearson_ci


def test_mean_ci_is_the_student_t_interval_by_hand() -> None:
    x = np.random.default_rng(0).normal(size=7)
    n, m, sd = len(x), x.mean(), x.std(ddof=1)
    half = sps.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    ci = mean_ci(x)
    assert (ci.mean, ci.lo, ci.hi, ci.n) == (pytest.approx(m), pytest.approx(m - half), pytest.approx(m + half), 7)
    ci90 = mean_ci(x, 0.9)
    assert ci90.hi - ci90.mean == pytest.approx(sps.t.ppf(0.95, n - 1) * sd / math.sqrt(n))


def test_mean_ci_degenerate_cases() -> None:
    assert (lambda c: (c.mean, c.lo, c.hi))(mean_ci(np.full(5, 0.25))) == (0.25, 0.25, 0.25)  # zero variance
    one = mean_ci(np.array([3.0]))
    assert one.mean == 3.0 and math.isnan(one.lo) and math.isnan(one.hi) and one.n == 1


def _exact_wilcoxon_two_sided(d: np.ndarray) -> float:
    """Exact two-sided p of the signed-rank statistic by enumerating every sign assignment."""
    ranks = sps.rankdata(np.abs(d))
    t_obs = ranks[d > 0].sum()
    ts = np.array([sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product((0, 1), repeat=len(d))])
    return min(1.0, 2 * min((ts <= t_obs).mean(), (ts >= t_obs).mean()))


def test_paired_matches_the_formulas_by_hand_and_exact_enumeration() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=7), rng.normal(size=7) + 0.4
    d = a - b
    n, m, se = len(d), d.mean(), d.std(ddof=1) / math.sqrt(len(d))
    t = m / se
    pr = paired(a, b)
    assert (pr.mean_diff, pr.t, pr.p_t) == (pytest.approx(m), pytest.approx(t), pytest.approx(2 * sps.t.sf(abs(t), n - 1)))
    half = sps.t.ppf(0.975, n - 1) * se
    assert (pr.ci.lo, pr.ci.hi) == (pytest.approx(m - half), pytest.approx(m + half))
    assert pr.p_wilcoxon == pytest.approx(_exact_wilcoxon_two_sided(d))
    assert (pr.wins, pr.n) == (int((d < 0).sum()), 7)


def test_paired_with_all_equal_differences() -> None:
    a = np.arange(5.0)
    same = paired(a, a)  # no difference at all: no evidence either way
    assert (same.t, same.p_t, same.ci.lo, same.ci.hi, same.wins) == (0.0, 1.0, 0.0, 0.0, 0)
    assert math.isnan(same.p_wilcoxon)
    shifted = paired(a, a + 0.5)  # every seed better by the same amount
    assert (shifted.t, shifted.p_t, shifted.mean_diff, shifted.ci.lo, shifted.ci.hi) == (-math.inf, 0.0, -0.5, -0.5, -0.5)
    assert shifted.p_wilcoxon == pytest.approx(2 / 2**5) and shifted.wins == 5  # the exact test's floor at 5 seeds
    one = paired(np.array([1.0]), np.array([2.0]))
    assert math.isnan(one.t) and math.isnan(one.p_t) and math.isnan(one.ci.lo) and one.mean_diff == -1.0


def test_pearson_matches_corrcoef_and_is_nan_when_undefined() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=30), rng.normal(size=30)
    assert pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)
    assert pearson(np.arange(4.0), -np.arange(4.0)) == pytest.approx(-1.0)
    assert math.isnan(pearson(np.ones(5), x[:5])) and math.isnan(pearson(np.array([1.0]), np.array([2.0])))


def _bca_by_hand(x: np.ndarray, y: np.ndarray, n_boot: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Efron & Tibshirani (1993) 14.3: bias correction from the share of resamples below r,
    acceleration from the jackknife, on the resamples scipy draws (one batch of pair indices)."""
    n = len(x)
    r = np.corrcoef(x, y)[0, 1]
    idx = np.random.default_rng(seed).integers(0, n, (n_boot, n))
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = np.array([np.corrcoef(x[i], y[i])[0, 1] for i in idx])
    boot = boot[np.isfinite(boot)]  # a resample with a constant x has no r
    n_boot = len(boot)
    z0 = ndtri(((boot < r).sum() + (boot <= r).sum()) / (2 * n_boot))
    jack = np.array([np.corrcoef(np.delete(x, i), np.delete(y, i))[0, 1] for i in range(n)])
    u = jack.mean() - jack
    acc = (u**3).sum() / (6 * ((u**2).sum()) ** 1.5)
    z = ndtri((1 - level) / 2)
    lo = ndtr(z0 + (z0 + z) / (1 - acc * (z0 + z)))
    hi = ndtr(z0 + (z0 - z) / (1 - acc * (z0 - z)))
    return tuple(np.quantile(boot, [lo, hi]))


def test_pearson_ci_is_the_bca_interval() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=40)
    y = x + rng.standard_exponential(size=40)  # skewed, so BCa differs from the percentile interval
    got = pearson_ci(x, y, 999, seed=5)
    assert got == pytest.approx(_bca_by_hand(x, y, 999, 5), abs=1e-10)
    # scipy's bootstrap with its own (unvectorized) pearsonr draws the same resamples
    ref = sps.bootstrap((x, y), lambda a, b: sps.pearsonr(a, b).statistic, n_resamples=999, paired=True,
                        vectorized=False, method="BCa", rng=np.random.default_rng(5)).confidence_interval
    assert got == pytest.approx((ref.low, ref.high), abs=1e-10)
    assert got[0] < pearson(x, y) < got[1]
    assert pearson_ci(x, y, 999, seed=5) == got and pearson_ci(x, y, 999, seed=6) != got  # seeded


def test_pearson_ci_leaves_out_resamples_without_an_r() -> None:
    """With 5 pairs about 1 resample in 600 repeats one pair (constant x: no r)."""
    x = np.array([0.1, 0.5, 0.2, 0.9, 0.4])
    y = x + np.array([0.05, -0.1, 0.2, 0.0, 0.1])
    idx = np.random.default_rng(0).integers(0, 5, (2000, 5))
    assert any(len(set(i)) == 1 for i in idx)  # the case under test occurs
    got = pearson_ci(x, y, 2000, seed=0)
    assert np.isfinite(got).all() and got == pytest.approx(_bca_by_hand(x, y, 2000, 0), abs=1e-10)


def test_pearson_ci_degenerate_cases() -> None:
    a = np.array([0.0, 1.0, 2.0, 3.0])
    assert pearson_ci(a, 2 * a + 1, 100, 0) == pytest.approx((1.0, 1.0))  # collinear: every resample has r = 1
    assert all(math.isnan(v) for v in pearson_ci(a[:2], a[:2], 100, 0))  # n < 3
    assert all(math.isnan(v) for v in pearson_ci(np.ones(6), np.arange(6.0), 100, 0))  # constant input
