"""Each vision evaluator end to end through TASK_REGISTRY: a tiny saved timm backbone, tiny
normalized tables in exactly the download stage's columns, evaluate() twice (same numbers), rows
carrying the table's ids, and write_results."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from vpt.config import section_defaults
from vpt.errors import VptError
from vpt.eval.registry import TASK_REGISTRY, NativeTask, task_inputs
from vpt.eval.run import write_results
from vpt.vision.backbone import create_backbone, save_backbone
from vpt.vision.images import encode_depth, encode_png

torch.set_num_threads(1)
TINY = {"timm": "vit_base_patch16_dinov3", "architecture": {"embed_dim": 64, "depth": 4, "num_heads": 4, "patch_size": 8, "img_size": 64}}
SIZES = [(48, 64), (64, 48), (40, 56)]


def _table(root: Path, dataset: str, split: str, rows: list[dict[str, Any]]) -> None:
    path = root / "raw" / dataset / f"{split}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{"id": f"{dataset}/{split}/{i}", **r} for i, r in enumerate(rows)]).to_parquet(path)


def _rgb(rng: np.random.Generator, hw: tuple[int, int]) -> bytes:
    return encode_png(rng.integers(0, 256, size=(*hw, 3), dtype=np.uint8))


def _tables(root: Path) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("validation", 4)):
        seg = []
        for i in range(n):
            hw = SIZES[i % 3]
            label = rng.integers(0, 6, size=hw, dtype=np.uint8)  # raw ADE ids: 0 void, 1..5
            seg.append({"image": _rgb(rng, hw), "label": encode_png(label), "scene_category": i % 2, "height": hw[0], "width": hw[1]})
        _table(root, "ade20k", split, seg)
        depth = []
        for _ in range(n):
            d = rng.uniform(0.5, 9.0, size=(48, 64)).astype(np.float32)
            d[rng.random(d.shape) < 0.1] = 0.0
            depth.append({"image": _rgb(rng, (48, 64)), "depth": encode_depth(d), "height": 48, "width": 64})
        _table(root, "nyuv2", split, depth)
        _table(root, "imagenet", split, [{"image": _rgb(rng, SIZES[i % 3]), "label": i % 3} for i in range(2 * n)])
    for dataset in ("roxford5k", "rparis6k"):
        db = [{"name": f"d{i}", "image": _rgb(rng, SIZES[i % 3])} for i in range(8)]
        _table(root, dataset, "database", db)
        _table(root, dataset, "queries", [
            {"name": "q0", "image": db[2]["image"], "bbx": [0.0, 0.0, 64.0, 40.0], "easy": [2], "hard": [5], "junk": [1]},
            {"name": "q1", "image": _rgb(rng, (64, 64)), "bbx": [3.5, 4.2, 50.7, 60.0], "easy": [0, 3], "hard": [], "junk": [7]},
            {"name": "q2", "image": _rgb(rng, (48, 64)), "bbx": [10.0, 5.0, 40.0, 30.0], "easy": [], "hard": [4, 6], "junk": []},
        ])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    root = tmp_path_factory.mktemp("vision")
    _tables(root / "data")
    torch.manual_seed(0)
    save_backbone(create_backbone(TINY), TINY, root / "model")
    e = section_defaults("eval")
    for task in ("ade20k", "nyuv2", "imagenet_linear"):
        e[task].update(resolution=64, epochs=2, batch_size=4, probe_batch_size=4, lr=1e-2)
    e["ade20k"]["dropout"] = 0.1
    for task in ("roxford5k", "rparis6k"):
        e[task].update(resolution=64, batch_size=4)
    cfg = {"data_dir": str(root / "data"), "datasets": {"ade20k": {"num_classes": 5}, "imagenet": {"num_classes": 3}}, "eval": e}
    return cfg, root / "model"


def _check(task: str, cfg: dict[str, Any], model: Path, tmp_path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    entry = TASK_REGISTRY.get(task)
    assert isinstance(entry, NativeTask) and all(p.exists() for p in task_inputs(cfg, task))
    summary, rows = entry.evaluate(cfg, model, "cpu")
    again, rows2 = entry.evaluate(cfg, model, "cpu")
    assert again["metrics"] == summary["metrics"] and rows2 == rows  # deterministic under the seed
    split = cfg["eval"][task].get("split", cfg["eval"][task].get("query_split"))
    ids = pd.read_parquet(Path(cfg["data_dir"]) / "raw" / cfg["eval"][task]["dataset"] / f"{split}.parquet")["id"].tolist()
    assert [r["id"] for r in rows] == ids and summary["examples"] == len(ids) and summary["task"] == task
    assert summary["throughput"]["images"] > 0 and summary["throughput"]["examples_per_s"] > 0
    write_results(tmp_path, task, summary, rows)
    lines = (tmp_path / f"{task}.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == rows and json.loads((tmp_path / f"{task}.json").read_text())["task"] == task
    return summary, rows


def test_ade20k(world: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    summary, rows = _check("ade20k", *world, tmp_path)
    m = summary["metrics"]
    assert 0 <= m["miou"] <= 1 and 0 <= m["pixel_acc"] <= 1 and len(m["per_class_iou"]) == 5
    assert summary["throughput"]["images"] == 10 and m["train_examples"] == 6 and len(m["train_loss"]) == 2
    assert sum(r["pixels"] for r in rows) > 0 and all(0 <= r["pixel_acc"] <= 1 for r in rows)


def test_nyuv2(world: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    summary, rows = _check("nyuv2", *world, tmp_path)
    m = summary["metrics"]
    assert m["images_scored"] == 4 and m["rmse"] > 0 and 0 <= m["delta1"] <= 1
    assert m["rmse"] == pytest.approx(np.mean([r["rmse"] for r in rows]))  # the per-image mean


def test_imagenet_linear(world: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    summary, rows = _check("imagenet_linear", *world, tmp_path)
    assert summary["metrics"]["top1"] == pytest.approx(np.mean([r["correct"] for r in rows]))
    assert {r["label"] for r in rows} == {0, 1, 2} and summary["throughput"]["images"] == 20


@pytest.mark.parametrize("task", ["roxford5k", "rparis6k"])
def test_revisitop(task: str, world: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    summary, rows = _check(task, *world, tmp_path)
    m = summary["metrics"]
    assert rows[0]["ap_easy"] == 1.0  # q0 is database image 2, whole: its own nearest neighbour
    assert rows[1]["ap_hard"] is None and rows[2]["ap_easy"] is None  # no positives: skipped
    assert m["queries_easy"] == 2 and m["queries_hard"] == 2 and m["queries_medium"] == 3 and m["database"] == 8
    assert m["map_hard"] == pytest.approx(np.mean([rows[0]["ap_hard"], rows[2]["ap_hard"]]))
    assert all(0 <= r[f"ap_{k}"] <= 1 for r in rows for k in ("easy", "medium", "hard") if r[f"ap_{k}"] is not None)


def test_errors_name_the_key_or_the_row(world: tuple[dict[str, Any], Path]) -> None:
    cfg, model = world
    bad = copy.deepcopy(cfg)
    bad["datasets"]["ade20k"]["num_classes"] = 4  # the tables hold raw id 5
    with pytest.raises(VptError, match=r"validation.parquet row 'ade20k/validation/\d+'|train.parquet row 'ade20k/train/\d+'"):
        TASK_REGISTRY.get("ade20k").evaluate(bad, model, "cpu")
    del bad["datasets"]["ade20k"]["num_classes"]
    with pytest.raises(VptError, match=r"key 'datasets.ade20k.num_classes'"):
        TASK_REGISTRY.get("ade20k").evaluate(bad, model, "cpu")
    bad["eval"]["nyuv2"]["resolution"] = 60
    with pytest.raises(VptError, match=r"key 'eval.nyuv2.resolution': resolution 60 x 60 is not a multiple of the model's patch size"):
        TASK_REGISTRY.get("nyuv2").evaluate(bad, model, "cpu")


def test_cmd_eval_runs_a_native_task_without_a_language_model(world: tuple[dict[str, Any], Path], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from vpt import commands

    cfg, model = world
    monkeypatch.setattr(commands, "_cfg", lambda args: cfg)  # the config file route needs the data helper's dataset schema
    commands.cmd_eval(argparse.Namespace(run="vision_base", at=None, checkpoint=str(model), task=["imagenet_linear"],
                                         out_dir=str(tmp_path), device="cpu"))
    out = json.loads((tmp_path / "imagenet_linear.json").read_text())
    assert out["run"] == "vision_base" and out["checkpoint"] == str(model) and out["examples"] == 8
