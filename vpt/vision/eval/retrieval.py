"""Revisited Oxford / Paris retrieval metrics (revisitop's protocols, learned from its
python/evaluate.py, not copied).

For each protocol a query's ground truth splits the database into positives and ignored images:

    easy    positives: easy          ignored: junk + hard
    medium  positives: easy + hard   ignored: junk
    hard    positives: hard          ignored: junk + easy

Ignored images are removed from the ranking (a positive's rank drops by the ignored images above
it); AP is the trapezoid rule over the positives' ranks; a query with no positives under a
protocol has AP NaN and is left out of that protocol's mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PROTOCOLS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "easy": (("easy",), ("junk", "hard")),
    "medium": (("easy", "hard"), ("junk",)),
    "hard": (("hard",), ("junk", "easy")),
}


def trapezoid_ap(ranks: np.ndarray, n_positives: int) -> float:
    """AP from the sorted 0-based ranks of the positives (ignored images already removed): each
    positive adds recall 1/n times the mean of the precision just before and at its rank."""
    ap = 0.0
    for j, r in enumerate(ranks):
        before = 1.0 if r == 0 else j / r  # j positives in the r images above this one
        at = (j + 1) / (r + 1)
        ap += (before + at) / (2 * n_positives)
    return ap


def query_ap(ranking: np.ndarray, positives: Sequence[int], ignored: Sequence[int]) -> float:
    """AP of one query: ranking (N,) database indices best first; NaN without positives."""
    pos = np.unique(np.asarray(positives, dtype=np.int64))
    if pos.size == 0:
        return float("nan")
    at_pos = np.flatnonzero(np.isin(ranking, pos))  # sorted positions of the positives
    at_ignored = np.flatnonzero(np.isin(ranking, np.asarray(ignored, dtype=np.int64)))
    ranks = at_pos - np.searchsorted(at_ignored, at_pos)  # ignored images ranked above each positive
    return trapezoid_ap(ranks, pos.size)


def protocol_aps(ranking: np.ndarray, gnd: dict[str, Sequence[int]]) -> dict[str, float]:
    """AP under each protocol; gnd holds the query's easy, hard and junk database indices."""
    out = {}
    for name, (positive, ignore) in PROTOCOLS.items():
        pos = [i for k in positive for i in gnd[k]]
        out[name] = query_ap(ranking, pos, [i for k in ignore for i in gnd[k]])
    return out


def mean_aps(per_query: list[dict[str, float]]) -> dict[str, float | int | None]:
    """mAP per protocol over the queries with positives (and how many those were)."""
    out: dict[str, float | int | None] = {}
    for name in PROTOCOLS:
        aps = np.array([q[name] for q in per_query], dtype=np.float64)
        kept = aps[~np.isnan(aps)]
        out[f"map_{name}"] = float(kept.mean()) if kept.size else None
        out[f"queries_{name}"] = int(kept.size)
    return out
