"""`vpt bench memory|precision|gpu` on the embedded config's tiny learner: each writes what it says.
The memory *behaviour* of micro-batching is measured on a GPU, not asserted here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vpt.cli import main

from bench_world import SEQ_LEN, make_world

TRAIN = {"batch_size": 4, "designer": {"K": 5, "n_layer": 1, "n_embd": 16, "n_head": 2},
         "value": {"scope": "last:1"}, "feedback": {"n": 32, "batch_size": 2, "max_len": 64}}


@pytest.fixture(scope="module")
def config_args(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    paths = make_world(tmp_path_factory.mktemp("bench_memory"), {"train": TRAIN}, feedback_rows=64)
    return [a for p in paths for a in ("--config", p)]


def test_memory_writes_every_point_its_ratios_and_the_plot(config_args: list[str], tmp_path: Path) -> None:
    out = tmp_path / "memory.json"
    argv = ["bench", "memory", *config_args, "--micro-batch", "1", "2", "3", "--threads", "1", "--out", str(out)]
    assert main(argv) == 0
    r = json.loads(out.read_text())
    assert r["benchmark"] == "memory" and r["peak_kind"].startswith("peak RSS")
    assert [(x["method"], x["micro_batch"]) for x in r["rows"]] == [("ntp", 1), ("ntp", 2), ("vpt", 1), ("vpt", 2)]
    assert [(x["method"], x["micro_batch"]) for x in r["skipped"]] == [("ntp", 3), ("vpt", 3)]  # 3 does not divide 4
    for row in r["rows"]:
        assert {"method", "micro_batch", "seq_len", "global_batch", "peak_bytes", "device", "dtype", "torch", "host"} <= set(row)
        # no --seq-len: the config learner's packed rows as they are
        assert (row["global_batch"], row["seq_len"], row["seq_len_measured"], row["device"]) == (4, SEQ_LEN, SEQ_LEN, "cpu")
        assert row["peak_bytes"] > 0 and row["peak_above_built_bytes"] >= row["peak_bytes"] and row["torch"] == torch.__version__
        assert row["meta_steps"] == (1 if row["method"] == "vpt" else 0)  # the measured vpt step has its meta step
    assert [(x["method"], x["micro_batch"]) for x in r["ratios"]] == [("vpt", 1), ("vpt", 2)]
    by = {(x["method"], x["micro_batch"]): x["peak_bytes"] for x in r["rows"]}
    assert r["ratios"][0]["ratio"] == pytest.approx(by[("vpt", 1)] / by[("ntp", 1)])
    assert r["ratios"][0]["target_met"] == (r["ratios"][0]["ratio"] <= 1.05)
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(png) in r["plot"]


def test_memory_rejects_an_unknown_method(config_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "memory", *config_args, "--methods", "ntp", "vtp"]) == 2
    err = capsys.readouterr().err
    assert "'vtp'" in err and "random_feedback" in err and "self_distill" in err


def test_precision_reference_and_autograd_agree(config_args: list[str], tmp_path: Path) -> None:
    out = tmp_path / "precision.json"
    argv = ["bench", "precision", *config_args, "--learner", "config", "--rows", "1", "--seq-len", str(SEQ_LEN),
            "--threads", "1", "--out", str(out)]
    assert main(argv) == 0
    r = json.loads(out.read_text())
    rows = r["rows"]
    assert set(rows) == {"fp32", "bf16_autocast", "bf16_weights", "autograd_fp32"}
    assert rows["fp32"]["cosine"] == pytest.approx(1.0, abs=1e-6) and rows["fp32"]["grad_rel_err"] == 0.0
    assert rows["fp32"]["value_rel_err"] == 0.0 and rows["fp32"]["grad_norm"] > 0
    # two estimators of the same meta-gradient, both in fp32: a real numeric check
    assert r["autograd_vs_fd_fp32"]["cosine"] > 0.99 and rows["autograd_fp32"]["value_rel_err"] < 0.05
    assert all(row["seconds"] > 0 for row in rows.values())
    rec = r["recommendation"]
    assert rec["setting"] in rec["qualified"] and "fp32" in rec["qualified"]
    assert rows[rec["setting"]]["seconds"] == min(rows[n]["seconds"] for n in rec["qualified"])
    assert r["batch"] == {"rows": 1, "seq_len": SEQ_LEN, "device": "cpu"} and r["kind"] == "dot"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_gpu_refuses_without_cuda(config_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    for extra in ([], ["--allow-cpu"], ["--tiny"]):
        assert main(["bench", "gpu", *config_args, *extra]) == 2
        assert "--allow-cpu --tiny" in capsys.readouterr().err


def test_gpu_tiny_runs_every_part_on_cpu(config_args: list[str], tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    assert main(["bench", "gpu", *config_args, "--allow-cpu", "--tiny", "--threads", "1", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["mode"] == "tiny" and r["attn_implementation"] == "sdpa"
    if not torch.cuda.is_available():
        assert r["machine"]["device"] == "cpu" and r["gpu"] is None
    assert list(r["parts"]) == ["learner_step", "table3", "memory", "precision", "vision"]
    for name, part in r["parts"].items():
        assert part["status"] == "ok", (name, part.get("error"))
        assert 0 < part["elapsed_s"] <= part["budget_s"]
    parts = r["parts"]
    assert parts["learner_step"]["tokens_per_s"] > 0
    assert [(x["arm"], x["repeat"]) for x in parts["table3"]["runs"]] == [("ntp", 0), ("vpt", 0)]
    assert parts["table3"]["arms"]["vpt"]["value_updates"]["median"] >= 1  # meta_every 2 over a 2-step window
    assert [x["method"] for x in parts["memory"]["rows"]] == ["ntp", "vpt"]
    assert parts["precision"]["autograd_vs_fd_fp32"]["cosine"] > 0.99
    v = parts["vision"]  # the 32 px smoke ViT on synthetic tables, dino vs vpt side by side
    assert [(x["arm"], x["repeat"]) for x in v["runs"]] == [("dino", 0), ("vpt", 0)]
    assert all(x["images_per_s"] > 0 for x in v["runs"]) and v["arms"]["vpt"]["value_updates"]["median"] >= 1
    assert (v["trainer"]["embed_dim"], v["trainer"]["global_crops"], v["data"]["kind"]) == (32, [2, 32], "synthetic")
    assert v["ratios"]["images_per_s"]["per_repeat"] == [pytest.approx(v["runs"][1]["images_per_s"] / v["runs"][0]["images_per_s"])]
    assert set(v["target_met"]) == {"images_per_s", "peak_mem"}
    assert r["elapsed_s"] >= sum(p["elapsed_s"] for p in parts.values())


def test_gpu_parts_runs_the_chosen_parts_in_order(config_args: list[str], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gpu.json"
    argv = ["bench", "gpu", *config_args, "--allow-cpu", "--tiny", "--threads", "1", "--out", str(out)]
    assert main([*argv, "--parts", "precision", "learner_step"]) == 0
    assert list(json.loads(out.read_text())["parts"]) == ["learner_step", "precision"]
    with pytest.raises(SystemExit):
        main([*argv, "--parts", "vison"])
    assert "invalid choice: 'vison' (choose from 'learner_step', 'table3', 'memory', 'precision', 'vision')" in capsys.readouterr().err
