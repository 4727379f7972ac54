"""The vision lab's parts: the tuning split's ADE20K task, the mask statistics against a brute-force
count, the designer variant's lr, the report's statistics against scipy on records written in the
evaluators' own format, and the lab's DAG (a dry run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats as sps

from conftest import REPO, snakemake
from vpt import paths
from vpt.config import load_config, section_defaults
from vpt.errors import VptError
from vpt.eval.registry import TASK_REGISTRY
from vpt.vision.backbone import create_backbone, save_backbone, to_input
from vpt.vision.grid import vision_group_runs, vision_run_config
from vpt.vision.images import encode_png
from vpt.vision.masks import MaskDesignerConfig, build_mask_designer

torch.set_num_threads(1)
TINY = {"timm": "vit_base_patch16_dinov3", "architecture": {"embed_dim": 32, "depth": 2, "num_heads": 2, "patch_size": 8, "img_size": 32}}
LAB = [REPO / "config" / "config.yaml", REPO / "config" / "lab_vision.yaml"]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """Random 32 px images with raw labels 0..4 in three splits, and a saved tiny backbone."""
    root = tmp_path_factory.mktemp("labv")
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("validation", 4), ("test", 5)):
        rows = [{"id": f"seg/{split}/{i}", "image": encode_png(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)),
                 "label": encode_png(rng.integers(0, 5, (32, 32), dtype=np.uint8)), "scene_category": 0, "height": 32,
                 "width": 32} for i in range(n)]
        out = root / "data" / "raw" / "seg" / f"{split}.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_parquet(out)
    torch.manual_seed(0)
    save_backbone(create_backbone(TINY), TINY, root / "model")
    e = section_defaults("eval")
    e["ade20k"].update(dataset="seg", split="test", resolution=32, epochs=2, batch_size=4, probe_batch_size=4, dropout=0.0)
    e["vision_masks"].update(dataset="seg", split="test")
    return {"data_dir": str(root / "data"), "datasets": {"seg": {"num_classes": 4}}, "eval": e}, root / "model"


def test_ade20k_tuning_is_the_ade20k_probe_on_the_tuning_split(scenes: tuple[dict[str, Any], Path]) -> None:
    cfg, model = scenes
    cfg = json.loads(json.dumps(cfg))
    cfg["eval"]["ade20k_tuning"]["split"] = "validation"
    tuned, rows = TASK_REGISTRY.get("ade20k_tuning").evaluate(cfg, model, "cpu")
    cfg["eval"]["ade20k"]["split"] = "validation"
    same, same_rows = TASK_REGISTRY.get("ade20k").evaluate(cfg, model, "cpu")
    assert tuned["metrics"]["miou"] == same["metrics"]["miou"] and [r["id"] for r in rows] == [r["id"] for r in same_rows]
    assert {r["id"].split("/")[1] for r in rows} == {"validation"} and tuned["task"] == "ade20k_tuning"
    assert TASK_REGISTRY.get("ade20k_tuning").needs(cfg["eval"])[1] == ("eval.ade20k_tuning", "seg", "validation")


def test_regions_partition_the_crop() -> None:
    TASK_REGISTRY.names()  # the registry imports its evaluators in its own order first
    from vpt.eval.evaluators.vision_masks import REGIONS, region_masks

    r = region_masks(32)
    assert (r["top"] ^ r["middle"] ^ r["bottom"]).all() and not (r["top"] & r["bottom"]).any()
    assert (r["centre"] ^ r["border"]).all() and r["centre"].sum() == 16 * 16 and r["centre"][8:24, 8:24].all()
    assert set(r) == set(REGIONS)


def _masked_run(model: Path, out: Path, designer: bool) -> tuple[Path, torch.nn.Module | None]:
    """A final/ directory of a masked run: backbone, run_config.json and (designer) a perturbed U-Net."""
    import shutil

    shutil.copytree(model, out)
    section = section_defaults("vision")["designer"]
    net = None
    if designer:
        torch.manual_seed(1)
        net = build_mask_designer(MaskDesignerConfig.from_section(section), 32).eval()
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.5 * torch.randn_like(p))  # masks that vary over the image
        torch.save(net.state_dict(), out / "designer.pt")
    run = {"train": {"method": "vpt" if designer else "random_masks", "seed": 3}, "ssl": {"global_size": 32}, "designer": section}
    (out / "run_config.json").write_text(json.dumps(run))
    return out, net


def test_mask_statistics_match_a_brute_force_count(scenes: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    cfg, model = scenes
    run, net = _masked_run(model, tmp_path / "final", designer=True)
    summary, rows = TASK_REGISTRY.get("vision_masks").evaluate(cfg, run, "cpu")
    m = summary["metrics"]
    df = pd.read_parquet(Path(cfg["data_dir"]) / "raw" / "seg" / "test.parquet")
    from vpt.vision.images import decode_label, decode_rgb

    assert net is not None
    keep: dict[int, list[float]] = {}
    masks = []
    for i in range(len(df)):
        x = to_input(torch.from_numpy(decode_rgb(df["image"].iat[i])[None].copy()), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
        mask = net(x)[0, 0].detach().double().numpy()
        masks.append(mask)
        label = decode_label(df["label"].iat[i])
        for y in range(32):
            for xx in range(32):
                keep.setdefault(int(label[y, xx]), []).append(mask[y, xx])
    assert [r["id"] for r in rows] == df["id"].tolist() and m["source"] == "designer"
    assert m["keep"] == pytest.approx(np.mean([k.mean() for k in masks]))
    assert m["class_pixels"] == {str(c): len(v) for c, v in sorted(keep.items())}
    for c, v in keep.items():
        assert m["class_keep"][str(c)] == pytest.approx(np.mean(v))
    assert m["region_keep"]["top"] == pytest.approx(np.mean([k[:11].mean() for k in masks]))  # rows 0-10 of 32: 3 * row // 32 == 0
    assert np.ptp(list(m["class_keep"].values())) > 0  # the perturbed designer's masks vary


def test_random_masks_are_measured_and_a_method_without_masks_is_refused(scenes: tuple[dict[str, Any], Path],
                                                                           tmp_path: Path) -> None:
    cfg, model = scenes
    run, _ = _masked_run(model, tmp_path / "random", designer=False)
    summary, _ = TASK_REGISTRY.get("vision_masks").evaluate(cfg, run, "cpu")
    again, _ = TASK_REGISTRY.get("vision_masks").evaluate(cfg, run, "cpu")
    assert summary["metrics"] == again["metrics"] and summary["metrics"]["source"] == "random"
    assert summary["metrics"]["keep"] == pytest.approx(section_defaults("vision")["designer"]["keep_ratio"], abs=1e-3)
    rc = json.loads((run / "run_config.json").read_text())
    rc["designer"], rc["train"]["method"] = None, "dino"
    (run / "run_config.json").write_text(json.dumps(rc))
    with pytest.raises(VptError, match=r"\(dino\) has no masks to measure"):
        TASK_REGISTRY.get("vision_masks").evaluate(cfg, run, "cpu")


def test_a_designer_variant_sets_the_designer_lr_and_the_run_stamp() -> None:
    from vpt.vision.targets import vision_run_settings

    cfg = load_config(LAB)
    steer, frozen = sorted((r for r in vision_group_runs(cfg, "control") if r.seed == 0), key=lambda r: r.designer)[::-1]
    assert (steer.designer, frozen.designer) == ("steer", "frozen")
    s, f = (vision_run_config(cfg, r)["vision"] for r in (steer, frozen))
    assert s["train"]["designer"]["lr"] == 3e-2 and f["train"]["designer"]["lr"] == 1e-12
    assert s["designer"]["lambda_keep"] == 0.0 and "lr" not in s["designer"] and "lr" not in f["designer"]
    a, b = vision_run_settings(cfg, steer), vision_run_settings(cfg, frozen)
    assert a["train"]["designer"]["lr"] == 3e-2 and b["train"]["designer"]["lr"] == 1e-12


def _write_eval(cfg: dict[str, Any], run_id: str, task: str, metrics: dict[str, Any]) -> None:
    path = paths.eval_result(cfg, run_id, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"task": task, "metrics": metrics}))


def test_the_report_tests_match_scipy_and_check_the_pins(tmp_path: Path) -> None:
    """Records in the evaluators' format (values chosen here) -> the report's numbers and verdicts."""
    from vpt.report.lab_vision import lab_inputs, summary, write_lab_report

    cfg = load_config(LAB)
    cfg["results_dir"] = str(tmp_path / "lab")
    rng = np.random.default_rng(0)
    scores: dict[str, dict[int, float]] = {}
    for method, group in cfg["vision_lab"]["groups"].items():
        for run in vision_group_runs(cfg, group):
            v = 0.30 + (0.05 if method == "vpt" else 0.0) + 0.01 * rng.standard_normal()
            scores.setdefault(method, {})[run.seed] = v
            _write_eval(cfg, run.id, "ade20k", {"miou": v})
            if method != "dino":
                _write_eval(cfg, run.id, "vision_masks", {"keep": 0.8, "region_keep": {"top": 0.7, "centre": 0.9},
                                                          "class_keep": {"0": 0.6, "5": 0.9}, "class_pixels": {"0": 10, "5": 20}})
    for run in vision_group_runs(cfg, "tuning"):
        _write_eval(cfg, run.id, "ade20k_tuning", {"miou": 0.2 + (0.1 if run.lr > 2e-4 else 0.0)})
    for run in vision_group_runs(cfg, "control"):
        d = paths.run_dir(cfg, run.id)
        d.mkdir(parents=True)
        v = [0.01 * s + (0.02 * s if run.designer == "steer" else 0.0) for s in range(1, 21)]
        (d / "metrics.jsonl").write_text("".join(json.dumps({"step": 4 * s - 3, "value": x}) + "\n" for s, x in enumerate(v, 1)))
    s = summary(cfg)
    a, b = np.array(list(scores["vpt"].values())), np.array(list(scores["dino"].values()))
    ref = sps.ttest_rel(a, b)
    assert s["comparisons"]["dino"]["p_t"] == pytest.approx(ref.pvalue) and s["comparisons"]["dino"]["wins"] == int((a > b).sum())
    assert s["primary"]["vpt"]["mean"] == pytest.approx(a.mean())
    assert all(t["best"] == 4e-4 and t["pinned"] == [4e-4] for t in s["tuning"].values())  # the pins are the winners
    late = [0.02 * k for k in range(11, 21)]
    assert s["control"]["late_diff"] == pytest.approx([np.mean(late)] * 8) and s["control"]["positive"] == 8
    assert s["masks"]["vpt"]["class"] == {"0": 0.6, "5": 0.9} and s["masks"]["vpt"]["seeds"] == 5
    written, _ = write_lab_report(cfg)
    text = (tmp_path / "lab" / "report.md").read_text()
    assert "| vpt − dino |" in text and "| yes |" in text and "| **no** |" not in text and "The machinery steers the masks" in text
    assert "grass" in text and "void" in text  # class ids named after the rendered world's classes
    assert all(p.exists() for p in written) and str(tmp_path / "lab" / "report.md") not in lab_inputs(cfg)
    for run in vision_group_runs(cfg, "tuning"):  # a pin that is not the tuning's winner is flagged
        if run.method == "dino":
            _write_eval(cfg, run.id, "ade20k_tuning", {"miou": 0.5 if run.lr < 2e-4 else 0.2})
    write_lab_report(cfg)
    assert "| dino | 0.0001: 50.00, 0.0004: 20.00 | 0.0001 | 0.0004 | **no** |" in (tmp_path / "lab" / "report.md").read_text()


def test_the_lab_dag_trains_and_evaluates_every_lab_run(workdir: Path) -> None:
    res = snakemake("-n", "results/lab_vision/report.md", "--configfile", "config/config.yaml", "config/lab_vision.yaml", cwd=workdir)
    assert res.returncode == 0, res.stderr[-3000:] + res.stdout[-3000:]
    from test_workflow import planned_jobs

    jobs = planned_jobs(res.stdout)
    # 8 tuning + 4 x 5 seeds + 8 control seeds x 2 designers; one evaluation job per run (one report reads them all)
    assert jobs["train_vision"] == 44 and jobs["eval_ade20k_tuning"] == 8 and jobs["eval_ade20k"] == 5
    assert jobs["eval_ade20k_vision_masks"] == 15 and jobs["eval_vision_masks"] == 16 and jobs["report_lab_vision"] == 1
    assert "pretrain_base" not in jobs and "train" not in jobs  # nothing of the language half
