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


def test_recut_packed_keeps_tokens_and_answer_masks(tmp_path) -> None:
    import json

    import numpy as np

    from vpt.bench.overhead import recut_packed
    from vpt.data.pack import open_packed

    src = tmp_path / "src"
    src.mkdir()
    ids = np.arange(5 * 8, dtype=np.int32).reshape(5, 8)
    labels = np.where(ids % 3 == 0, -100, ids).astype(np.int32)
    files = {}
    for key, arr in (("input_ids", ids), ("labels", labels)):
        arr.tofile(src / f"{key}.bin")
        files[key] = {"file": f"{key}.bin", "dtype": "int32", "shape": list(arr.shape)}
    (src / "meta.json").write_text(json.dumps({"files": files, "seq_len": 8}))
    ids2, labels2, meta = open_packed(recut_packed(src, 16, tmp_path / "out"))
    assert ids2.shape == (2, 16) and meta["seq_len"] == 16  # 40 tokens -> two rows, the last 8 dropped
    assert np.array_equal(np.asarray(ids2).ravel(), ids.ravel()[:32])
    assert np.array_equal(np.asarray(labels2).ravel(), labels.ravel()[:32])


def test_phase_timer_adds_up_wall_clock_on_cpu() -> None:
    import time

    import torch

    from vpt.train.timing import PhaseTimer

    timer = PhaseTimer(torch.device("cpu"))
    for _ in range(3):
        with timer.phase("a"):
            time.sleep(0.01)
    with timer.phase("b"):
        pass
    totals = timer.totals()
    assert timer.counts == {"a": 3, "b": 1}
    assert 0.03 <= totals["a"] < 0.5 and totals["b"] < totals["a"]
    timer.reset()
    assert timer.totals() == {}


def bench_json() -> dict:
    runs = [{"arm": "ntp", "repeat": 0, "tokens_per_s": 1000.0}, {"arm": "vpt", "repeat": 0, "tokens_per_s": 900.0}]
    arm = lambda tps, step, mem, frac, soft: {"tokens_per_s": {"median": tps}, "step_s": {"median": step},  # noqa: E731
                                               "peak_mem": {"median": mem}, "value_update_frac": {"median": frac},
                                               "soft_targets_frac": {"median": soft}}
    return {
        "settings": {"learner": "config", "repeats": 1, "warmup": 2, "window": 8},
        "machine": {"device": "cpu"},
        "runs": runs,
        "arms": {"ntp": arm(1000.0, 0.5, 2.0e9, 0.0, 0.0), "vpt": arm(900.0, 0.56, 2.1e9, 0.125, 0.04)},
        "ratios": {"tokens_per_s": {"median": 0.9, "min": 0.85, "max": 0.95},
                   "step_s": {"median": 1.1111, "min": 1.05, "max": 1.2},
                   "peak_mem": {"median": 1.05, "min": 1.04, "max": 1.06}},
        "estimators": {"finite_difference_s": 0.05, "autograd_s": 0.2, "fd_over_autograd": 0.25,
                       "finite_difference_grad_rel_err": 1e-3},
    }


def test_table3_cells_follow_the_paper_layout(tmp_path) -> None:
    from vpt.report.table3 import table3, write_table3

    df = table3(bench_json())
    assert list(df.columns) == ["Method", "Token/s", "Step(s)", "Peak mem", "Vb frac"]
    assert df.iloc[0].tolist() == ["Baseline", "1000", "0.5000", "2.00 GB", "–"]
    # changes are the per-repeat ratio medians: 0.9 -> -10.0%, 1.1111 -> +11.1%, 1.05 -> +5.0%
    assert df.iloc[1].tolist() == ["Value-Based", "900 (-10.0%)", "0.5600 (+11.1%)", "2.10 GB (+5.0%)", "12.50%"]
    assert any("0.25" in n for n in df.attrs["notes"])
    import json

    (tmp_path / "overhead.json").write_text(json.dumps(bench_json()))
    written = write_table3(tmp_path / "overhead.json", tmp_path / "table3")
    assert [p.suffix for p in written] == [".md", ".csv", ".tex"]
    assert "900 (-10.0\\%)" in (tmp_path / "table3.tex").read_text()
    from vpt.errors import VptError

    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(VptError, match="lacks 'arms'"):
        write_table3(tmp_path / "bad.json", tmp_path / "t")


def sleeper(arm: str, settings: dict) -> dict[str, float]:
    import time

    time.sleep(settings["seconds"])
    return {"slept": settings["seconds"]}


def test_run_isolated_stops_a_run_past_its_timeout() -> None:
    import multiprocessing as mp
    import time

    from vpt.bench.sidebyside import run_isolated

    assert run_isolated(sleeper, "a", {"seconds": 0.0}, timeout=60) == {"slept": 0.0}
    t0 = time.monotonic()
    with pytest.raises(mp.TimeoutError):
        run_isolated(sleeper, "a", {"seconds": 120.0}, timeout=1.0)
    assert time.monotonic() - t0 < 60  # killed, not waited for
