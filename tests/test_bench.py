"""Benchmark plumbing: ABBA order, per-repeat ratios, isolated measurement processes."""

from __future__ import annotations

import os

import pytest

from vpt.bench.sidebyside import alternate, order, peak_rss_bytes, ratio_summary, reset_peak_rss


def pid_and_rss(arm: str, settings: dict) -> dict[str, float]:
    assert reset_peak_rss()
    blob = bytearray(settings["mb"] * (1 << 20) if arm == "big" else 1)  # touch memory in one arm only
    blob[::4096] = b"x" * len(blob[::4096])
    return {"pid": float(os.getpid()), "peak_rss": float(peak_rss_bytes())}


def test_order_is_abba() -> None:
    assert [order(["a", "b"], r) for r in range(4)] == [["a", "b"], ["b", "a"], ["a", "b"], ["b", "a"]]


def test_ratio_summary_pairs_arms_within_a_repeat() -> None:
    rows = [{"arm": "a", "repeat": 0, "x": 2.0}, {"arm": "b", "repeat": 0, "x": 4.0},
            {"arm": "b", "repeat": 1, "x": 3.0}, {"arm": "a", "repeat": 1, "x": 1.0},
            {"arm": "a", "repeat": 2, "x": 5.0}]  # repeat 2 has no b: left out, not guessed
    s = ratio_summary(rows, "b", "a", "x")
    assert s["per_repeat"] == [2.0, 3.0]
    assert (s["median"], s["min"], s["max"]) == (2.5, 2.0, 3.0)


def test_each_measurement_runs_in_its_own_process_with_its_own_peak_memory() -> None:
    rows = alternate(["small", "big"], 2, pid_and_rss, {"mb": 64})
    assert [(r["repeat"], r["arm"]) for r in rows] == [(0, "small"), (0, "big"), (1, "big"), (1, "small")]
    assert len({r["pid"] for r in rows} | {float(os.getpid())}) == 5
    small = [r["peak_rss"] for r in rows if r["arm"] == "small"]
    big = [r["peak_rss"] for r in rows if r["arm"] == "big"]
    assert min(big) - max(small) > 48 * (1 << 20)  # the small arm never inherits the big arm's peak
    assert ratio_summary(rows, "big", "small", "peak_rss")["min"] > 1.0
    assert pytest.approx(1.0) == ratio_summary(rows, "small", "small", "peak_rss")["median"]
