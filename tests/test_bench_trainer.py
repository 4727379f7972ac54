"""`vpt bench trainer`: both arms train the same thing (the fairness check), and the JSON report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vpt.bench.trainer import ARMS, measure, settings_from_config
from vpt.cli import main
from vpt.config import load_config

from bench_world import make_world


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The embedded config over a tiny tokenizer, packed corpus and saved base model (bench_world)."""
    return make_world(tmp_path_factory.mktemp("bench_trainer"), {"train": {"batch_size": 4, "warmup_steps": 2, "lr": 3e-3}})


def test_both_arms_take_the_same_steps_on_the_same_data(configs: list[str]) -> None:
    """Same weights, rows, AdamW, schedule and clip => the same loss trajectory: what makes the
    tokens/s comparison fair. A different row order, schedule or weight-decay set would show here."""
    settings = settings_from_config(load_config(configs), warmup=2, window=6, threads=1, device="cpu")
    settings["train"]["weight_decay"] = 5.0  # large enough that decaying a different parameter set would show
    ours, hf = (measure(arm, settings) for arm in ARMS)
    steps = [f"loss_{i}" for i in range(1, 9)]
    assert [k for k in hf if k.startswith("loss_")] == steps
    assert [ours[k] for k in steps] == pytest.approx([hf[k] for k in steps], rel=1e-4)
    assert ours["final_loss"] < ours["first_loss"] - 0.05  # it trained, so the agreement is not trivial
    for m in (ours, hf):
        assert m["tokens_per_s"] > 0 and m["window_s"] == pytest.approx(6 * m["step_s_mean"])
        assert m["tokens_per_s"] == pytest.approx(6 * 4 * 48 / m["window_s"])
        assert m["peak_mem_bytes"] > 0
        assert m["tokens_per_s_at_median_step"] == pytest.approx(4 * 48 / m["step_s_median"])


def test_cli_writes_the_report(configs: list[str], tmp_path: Path) -> None:
    out = tmp_path / "trainer.json"
    argv = ["bench", "trainer", *(a for c in configs for a in ("--config", c)), "--warmup", "1", "--window", "2",
            "--repeats", "1", "--threads", "1", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    r = json.loads(out.read_text())
    assert r["benchmark"] == "trainer" and isinstance(r["target_met"], bool)
    assert r["target_met"] == (r["tokens_per_s"]["ratio"]["median"] >= 1.0)
    assert r["settings"]["run"] == "base/ntp/lr0.003_s0_decontaminated"
    assert (r["settings"]["warmup"], r["settings"]["window"], r["settings"]["repeats"]) == (1, 2, 1)
    assert r["settings"]["tokens_per_step"] == 4 * 48
    assert {"cpu_count", "torch", "transformers", "device"} <= set(r["machine"])
    assert [(row["arm"], row["repeat"]) for row in r["runs"]] == [("vpt_ntp", 0), ("hf_trainer", 0)]
    for key in ("tokens_per_s", "tokens_per_s_at_median_step", "step_s", "peak_mem_bytes"):
        assert set(r[key]) == {"vpt_ntp", "hf_trainer", "ratio"}
        assert len(r[key]["ratio"]["per_repeat"]) == 1
    assert r["final_loss"]["max_relative_gap"] < 1e-4


def test_cli_rejects_an_empty_window(configs: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "trainer", "--config", configs[0], "--window", "0"]) == 2
    assert "--window" in capsys.readouterr().err
