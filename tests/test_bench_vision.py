"""`vpt bench overhead --vision` on a tiny vision config (a 32 px ViT, tiny image and pool tables):
both arms run side by side in their own processes, the ratios are the per-repeat quotients of the
runs' own numbers, the phases add up, the target flags follow the targets, and Table 3's vision
layout renders those numbers. (The GPU check's vision part: tests/test_bench_memory.py.)"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from vpt.cli import main
from vpt.errors import VptError

from conftest import REPO
from test_vision_feedback import _depth_rows, _seg_rows, _table
from test_vision_train import ARCH, SSL, image_table

EMBEDDED = str(REPO / "config" / "config.yaml")
VISION = {
    "models": {"tiny": {"timm": "vit_base_patch16_dinov3", "architecture": {**ARCH, "init_values": 1.0}}},
    "learner": "tiny", "ssl": SSL,
    "train": {"batch_size": 4, "dtype": "float32", "designer": {"lr": 1.0e-2},
              "value": {"meta_every": 2, "scope": "last:1", "meta_batch_size": 4}},
    "designer": {"unet": {"base_channels": 4, "depth": 2}, "pictures": 1},
    "feedback": {"resolution": 32, "batch_size": 4, "head_steps": 1},
}


@pytest.fixture(scope="module")
def config_args(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("bench_vision")
    raw = root / "data" / "raw"
    (raw / "imagenet").mkdir(parents=True)
    image_table(12).to_parquet(raw / "imagenet" / "train.parquet")
    _table(raw / "ade20k" / "feedback_train.parquet", _seg_rows(4, 0))
    _table(raw / "ade20k" / "feedback_meta.parquet", _seg_rows(4, 1))
    _table(raw / "nyuv2" / "feedback_train.parquet", _depth_rows(4, 2))
    _table(raw / "nyuv2" / "feedback_meta.parquet", _depth_rows(4, 3))
    override = {"data_dir": str(root / "data"), "results_dir": str(root / "results"),
                "datasets": {"ade20k": {"num_classes": 4}}, "vision": VISION}
    (root / "override.yaml").write_text(yaml.safe_dump(override))
    return ["--config", EMBEDDED, "--config", str(root / "override.yaml")]


@pytest.fixture(scope="module")
def result(config_args: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench_vision_out") / "overhead_vision.json"
    argv = ["bench", "overhead", "--vision", *config_args, "--warmup", "1", "--window", "2", "--repeats", "1",
            "--threads", "1", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    return json.loads(out.read_text())


def test_both_arms_ran_side_by_side_and_the_ratios_are_theirs(result: dict[str, Any]) -> None:
    assert result["benchmark"] == "overhead_vision"
    runs = {r["arm"]: r for r in result["runs"]}
    assert [(r["arm"], r["repeat"]) for r in result["runs"]] == [("dino", 0), ("vpt", 0)]
    for r in runs.values():
        assert r["images_per_s"] > 0 and r["images_per_s"] == pytest.approx(2 * 4 / r["window_s"])  # window x batch / seconds
        assert r["step_s"] == pytest.approx(r["window_s"] / 2) and r["peak_mem"] > 0
    for m in ("images_per_s", "step_s", "peak_mem", "peak_mem_run"):
        assert result["ratios"][m]["per_repeat"] == [pytest.approx(runs["vpt"][m] / runs["dino"][m])]
        assert result["arms"]["vpt"][m]["median"] == runs["vpt"][m]
    # warm-up step 0, window steps 1 and 2: the meta step at step 2 (meta_every 2) is the window's one
    assert (runs["vpt"]["value_updates"], runs["dino"]["value_updates"]) == (1.0, 0.0)
    v = runs["vpt"]
    assert v["value_update_frac"] > v["feedback_grad_frac"] > 0 and v["estimate_frac"] > 0
    assert v["meta_batch_frac"] == pytest.approx(v["value_update_frac"] - v["feedback_grad_frac"] - v["estimate_frac"])
    assert v["masks_frac"] > 0 and runs["dino"]["masks_frac"] == 0.0 and runs["dino"]["value_update_frac"] == 0.0
    assert 0 < v["mask_keep"] < 1 and "mask_keep" not in runs["dino"]
    assert all(0 < r["multicrop_frac"] < 1 for r in runs.values())
    rate, mem = result["ratios"]["images_per_s"]["median"], result["ratios"]["peak_mem"]["median"]
    assert result["targets"] == {"images_per_s": 0.85, "peak_mem": 1.10}
    assert result["target_met"] == {"images_per_s": rate >= 0.85, "peak_mem": mem <= 1.10}
    t = result["trainer"]  # read off the built trainer
    assert (t["batch_size"], t["meta_every"], t["meta_batch_size"], t["global_crops"], t["local_crops"], t["depth"]) == (
        4, 2, 4, [2, 32], [2, 16], 2)
    assert t["feedback"] == ["ade20k", "nyuv2"] and result["data"]["kind"] == "config"
    assert result["learner"]["learner"] == "tiny" and result["machine"]["device"] == "cpu"


def test_table3_vision_renders_the_measured_numbers(result: dict[str, Any], tmp_path: Path) -> None:
    from vpt.report.table3 import table3_vision, write_table3_vision

    df = table3_vision(result)
    a, r = result["arms"], result["ratios"]
    change = lambda m: f"({(r[m]['median'] - 1) * 100:+.1f}%)"  # noqa: E731
    assert df.iloc[1, 1] == f"{a['vpt']['images_per_s']['median']:.1f} {change('images_per_s')}"
    assert df.iloc[1, 4] == f"{a['vpt']['value_update_frac']['median'] * 100:.2f}%"
    (tmp_path / "b.json").write_text(json.dumps(result))
    written = write_table3_vision(tmp_path / "b.json", tmp_path / "table3_vision")
    assert [p.suffix for p in written] == [".md", ".csv", ".tex"]
    assert pd.read_csv(tmp_path / "table3_vision.csv").iloc[1, 1] == df.iloc[1, 1]


def _summary(median: float, lo: float | None = None, hi: float | None = None) -> dict[str, float]:
    return {"median": median, "min": median if lo is None else lo, "max": median if hi is None else hi}


HAND_MADE = {
    "benchmark": "overhead_vision", "machine": {"device": "NVIDIA H200"},
    "settings": {"learner": "vit-b", "repeats": 2, "warmup": 2, "window": 12},
    "learner": {"learner": "vit-b", "weights": "random init", "note": "the shape only"},
    "data": {"kind": "synthetic", "note": "random images"},
    "trainer": {"batch_size": 64, "global_crops": [2, 224], "local_crops": [6, 96], "out_dim": 8192, "embed_dim": 768,
                "depth": 12, "meta_every": 4, "meta_batch_size": 64, "estimator": "finite_difference"},
    "arms": {"dino": {"images_per_s": _summary(100.0), "step_s": _summary(0.64), "peak_mem": _summary(10e9),
                      "multicrop_frac": _summary(0.05)},
             "vpt": {"images_per_s": _summary(65.0), "step_s": _summary(0.9846), "peak_mem": _summary(10.5e9),
                     "value_update_frac": _summary(0.3), "feedback_grad_frac": _summary(0.1), "estimate_frac": _summary(0.15),
                     "meta_batch_frac": _summary(0.05), "masks_frac": _summary(0.02), "multicrop_frac": _summary(0.04)}},
    "ratios": {"images_per_s": _summary(0.65, 0.6, 0.7), "step_s": _summary(1.5385), "peak_mem": _summary(1.05)},
    "targets": {"images_per_s": 0.85, "peak_mem": 1.10}, "target_met": {"images_per_s": False, "peak_mem": True},
}


def test_table3_vision_cells_and_notes_from_a_hand_made_result(tmp_path: Path) -> None:
    from vpt.report.table3 import table3_vision, write_table3_vision

    df = table3_vision(HAND_MADE)
    assert list(df.columns) == ["Method", "Image/s", "Step(s)", "Peak mem", "Vb frac"]
    assert df.values.tolist() == [["Baseline", "100.0", "0.6400", "10.00 GB", "–"],
                                  ["Value-Based", "65.0 (-35.0%)", "0.9846 (+53.8%)", "10.50 GB (+5.0%)", "30.00%"]]
    assert "NVIDIA H200" in df.attrs["caption"] and "2 x 224 + 6 x 96 crops" in df.attrs["caption"]
    notes = " ".join(df.attrs["notes"])
    assert "Image/s ratio >= 0.85 (measured 0.650: missed)" in notes
    assert "peak memory ratio <= 1.10 (measured 1.050: met)" in notes
    assert "images_per_s [0.600, 0.700]" in notes and "Data: random images." in notes
    assert "feedback heads and g_down 10.00%" in notes and "meta-SSL batch (crops, teacher) 5.00%" in notes
    # the GPU check's JSON: its vision part, with the session's machine
    gpu = {"benchmark": "gpu", "machine": {"device": "NVIDIA H200"}, "parts": {"vision": {"status": "ok", **HAND_MADE}}}
    (tmp_path / "gpu.json").write_text(json.dumps(gpu))
    write_table3_vision(tmp_path / "gpu.json", tmp_path / "t")
    assert "65.0 (-35.0%)" in (tmp_path / "t.md").read_text()
    broken = copy.deepcopy(HAND_MADE)
    del broken["trainer"]
    with pytest.raises(VptError, match="lacks 'trainer'"):
        table3_vision(broken)


@pytest.mark.parametrize("extra, flag", [(["--vision", "--seq-len", "64"], "--seq-len"),
                                         (["--vision", "--plain"], "--plain"),
                                         (["--vision", "--learner", "qwen1.5-0.5b"], "--learner qwen1.5-0.5b"),
                                         (["--synthetic-data"], "--synthetic-data"),
                                         (["--meta-batch-size", "8"], "--meta-batch-size"),
                                         (["--learner", "vit-b"], "--learner vit-b")])
def test_flags_of_the_other_modality_are_refused(extra: list[str], flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "overhead", *extra]) == 2
    err = capsys.readouterr().err
    assert f"{flag}: not an option of the" in err
    assert ("vision (--vision)" if "--vision" in extra else "language (without --vision)") in err


def test_absent_inputs_are_refused_before_any_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    override = tmp_path / "o.yaml"
    override.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "results_dir": str(tmp_path / "results")}))
    assert main(["bench", "overhead", "--vision", "--config", EMBEDDED, "--config", str(override), "--out", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "data" / "raw" / "imagenet" / "train.parquet") in err and "--synthetic-data" in err
    assert not (tmp_path / "o.json").exists()


def test_vision_base_without_final_falls_back_to_its_architecture(tmp_path: Path) -> None:
    from vpt.bench.learners import RANDOM_INIT, vision_config

    override = tmp_path / "o.yaml"
    override.write_text(yaml.safe_dump({"results_dir": str(tmp_path / "results")}))
    cfg, learner = vision_config({"config": [EMBEDDED, str(override)], "learner": "config"})
    assert learner["weights"] == RANDOM_INIT and "absent" in learner["note"]
    assert learner["backbone"]["architecture"] == cfg["vision"]["base_model"]["architecture"]
    vitb_cfg, vitb = vision_config({"config": [EMBEDDED], "learner": "vit-b"})
    assert vitb["backbone"] == {"timm": "vit_base_patch16_dinov3", "architecture": {}} and vitb["weights"] == RANDOM_INIT
    v = vitb_cfg["vision"]
    assert (v["ssl"]["out_dim"], v["ssl"]["local_crops"], v["feedback"]["resolution"]) == (8192, 6, 224)
    assert v["designer"]["unet"] == {"base_channels": 16, "depth": 3}  # the paper's designer beside a ViT-B


def test_synthetic_tables_have_the_shapes_asked_for(tmp_path: Path) -> None:
    from PIL import Image

    from vpt import paths
    from vpt.bench.vision_data import write_synthetic_tables
    from vpt.config import load_config
    from vpt.vision.eval.features import num_classes
    from vpt.vision.images import decode_depth, decode_label

    cfg = load_config([EMBEDDED])
    write_synthetic_tables(cfg, tmp_path, images=3, image_side=40, pool=2, pool_side=24)
    at = {**cfg, "data_dir": str(tmp_path)}
    table = pd.read_parquet(paths.raw_split(at, "imagenet", "train"))
    assert len(table) == 3 and Image.open(io.BytesIO(table["image"][0])).size == (40, 40)
    for name, task in cfg["vision"]["feedback"]["tasks"].items():
        pool = pd.read_parquet(paths.raw_split(at, task["dataset"], task["meta_split"]))
        assert len(pool) == 2 and (pool["height"] == 24).all()
        if "depth" in pool:
            assert decode_depth(pool["depth"][0], 24, 24).min() > 0  # every pixel valid
        else:
            label = decode_label(pool["label"][0])
            assert label.shape == (24, 24) and label.max() <= num_classes(cfg, task["dataset"])


def test_settings_defaults_and_the_language_stamp_ignore_each_other() -> None:
    from vpt import workflow as W
    from vpt.bench.overhead import resolve_settings as language_settings
    from vpt.bench.overhead_vision import resolve_settings
    from vpt.config import load_config

    s = resolve_settings({"window": 6}, {"repeats": 4, "meta_every": None})
    assert (s["learner"], s["warmup"], s["window"], s["repeats"], s["synthetic"]) == ("config", 2, 6, 4, False)
    assert "meta_every" not in s  # None: the config's vision.train value
    assert "vision" not in language_settings({"vision": {"window": 6}}, {})
    cfg = load_config([EMBEDDED])
    edited = copy.deepcopy(cfg)
    edited["bench"]["overhead"]["vision"] = {"window": 64}
    assert W.bench_overhead_settings(edited) == W.bench_overhead_settings(cfg)
