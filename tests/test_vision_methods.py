"""The four vision methods on the shared trainer, from a validated config (vpt.vision.setup):
dino, vpt, random_feedback and random_masks train compute-matched on the same batches; the
learner never sees the dense labels (other labels: a bit-identical learner step, a different
designer); 10 + resume + 10 steps equal 20 straight (teacher, center, feedback heads, designer,
optimizers, RNG and both data streams); a non-finite loss keeps the last good checkpoint; a
checkpoint of another configuration is not resumed; mask pictures at the start and the end."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from vpt.errors import NonFiniteError
from vpt.vision.images import decode_rgb
from vpt.vision.setup import vision_run_setup
from vpt.vision.task import vision_trainer

from conftest import REPO
from test_vision_feedback import _depth_rows, _seg_rows, _table
from test_vision_train import ARCH, SSL, image_table

torch.set_num_threads(1)

TRAIN = {"steps": 8, "batch_size": 4, "lr": 1.0e-3, "warmup_steps": 1, "checkpoint_every": 4, "dtype": "float32",
         "designer": {"lr": 1.0e-2}, "value": {"meta_every": 2, "scope": "last:1", "meta_batch_size": 4}}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from vpt.config import load_config

    root = tmp_path_factory.mktemp("vision-methods")
    raw = root / "data" / "raw"
    (raw / "imagenet").mkdir(parents=True)
    image_table(24).to_parquet(raw / "imagenet" / "train.parquet")
    _table(raw / "ade20k" / "feedback_train.parquet", _seg_rows(8, 0))
    _table(raw / "ade20k" / "feedback_meta.parquet", _seg_rows(4, 1))
    _table(raw / "nyuv2" / "feedback_train.parquet", _depth_rows(8, 2))
    _table(raw / "nyuv2" / "feedback_meta.parquet", _depth_rows(4, 3))
    cfg = load_config([REPO / "config" / "config.yaml"])
    cfg.update(data_dir=str(root / "data"), results_dir=str(root / "results"))
    cfg["datasets"]["ade20k"]["num_classes"] = 4
    v = cfg["vision"]
    v["models"] = {"tiny": {"timm": "vit_base_patch16_dinov3", "architecture": {**ARCH, "init_values": 1.0}}}  # layer scale 1e-5: a constant CLS
    v["learner"] = "tiny"
    v["ssl"].update(SSL)
    v["train"] = TRAIN
    v["designer"].update(unet={"base_channels": 4, "depth": 2}, pictures=2)
    v["feedback"].update(resolution=32, batch_size=4, head_steps=1)
    return cfg


def trainer(cfg: dict[str, Any], method: str, run_dir: Path, **train: Any):  # type: ignore[no-untyped-def]
    cfg = copy.deepcopy(cfg)
    cfg["vision"]["train"] = {**cfg["vision"]["train"], **train}
    tcfg, spec = vision_run_setup(cfg, method, run_dir)
    return vision_trainer(tcfg, spec, device="cpu")


def state(t) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    out = {f"learner.{k}": v.detach().clone() for k, v in t.task.learner.state_dict().items()}
    if t.designer is not None:
        out.update({f"designer.{k}": v.detach().clone() for k, v in t.designer.state_dict().items()})
    for ev in t.task.evaluators:
        out.update({f"{ev.name}.{k}": v.detach().clone() for k, v in ev.head.state_dict().items()})
    return out


@pytest.fixture(scope="module")
def straight(config: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    runs = {}
    for method in ("dino", "vpt", "random_feedback", "random_masks"):
        t = trainer(config, method, tmp_path_factory.mktemp(method))
        t.run()
        runs[method] = t
    return runs


def test_every_method_trains_compute_matched(straight: dict[str, Any]) -> None:
    rows = {m: t.metrics.rows for m, t in straight.items()}
    for m, r in rows.items():
        assert len(r) == 8 and all(np.isfinite(x["loss"]) for x in r), m
    # the same learner batches: identical first-step losses where the views are the same
    assert rows["vpt"][0]["loss"] == rows["random_feedback"][0]["loss"]
    assert rows["dino"][0]["loss"] != rows["vpt"][0]["loss"]  # masked views
    metas = [r for r in rows["vpt"] if "value" in r]
    assert [r["step"] for r in metas] == [1, 3, 5, 7]
    assert {"ade20k/head_loss", "nyuv2/head_loss", "g_down_norm", "designer_regulariser"} <= set(metas[0])
    assert not any("value" in r for r in rows["dino"] + rows["random_masks"])
    # random_masks: the target keep ratio; the designer's masks start at init_keep
    assert np.mean([r["mask_keep"] for r in rows["random_masks"]]) == pytest.approx(0.6, abs=0.01)
    assert rows["vpt"][0]["mask_keep"] == pytest.approx(0.9, abs=1e-5)
    # random_feedback and vpt part ways after the first designer update
    assert [r["value"] for r in rows["vpt"] if "value" in r] != [r["value"] for r in rows["random_feedback"] if "value" in r]


def test_mask_pictures_at_the_start_and_the_end(straight: dict[str, Any]) -> None:
    for method in ("vpt", "random_masks"):
        pics = sorted(p.name for p in (straight[method].run_dir / "masks").iterdir())
        assert pics == ["step_0000000.png", "step_0000008.png"], method
        image = decode_rgb((straight[method].run_dir / "masks" / pics[0]).read_bytes())
        assert image.shape[0] > image.shape[1] / 3 > 0  # two rows of crop | mask | view
    assert not (straight["dino"].run_dir / "masks").exists()


def test_feedback_labels_change_the_designer_not_the_learner_step(config: dict[str, Any], tmp_path: Path) -> None:
    other = copy.deepcopy(config)
    root = tmp_path / "data"
    for ds in ("ade20k", "nyuv2", "imagenet"):
        (root / "raw" / ds).mkdir(parents=True)
        for f in (Path(config["data_dir"]) / "raw" / ds).iterdir():
            (root / "raw" / ds / f.name).write_bytes(f.read_bytes())
    _table(root / "raw" / "ade20k" / "feedback_meta.parquet", _seg_rows(4, 99))  # other images and labels
    _table(root / "raw" / "nyuv2" / "feedback_meta.parquet", _depth_rows(4, 98))
    other["data_dir"] = str(root)
    a, b = trainer(config, "vpt", tmp_path / "a"), trainer(other, "vpt", tmp_path / "b")
    a.run(stop_at=1)
    b.run(stop_at=1)  # step 1 has a meta step: its designer update applies from step 2 on
    sa, sb = state(a), state(b)
    assert all(torch.equal(sa[k], sb[k]) for k in sa if k.startswith("learner."))
    assert any(not torch.equal(sa[k], sb[k]) for k in sa if k.startswith("designer."))


def test_resume_is_exact(config: dict[str, Any], straight: dict[str, Any], tmp_path: Path) -> None:
    first = trainer(config, "vpt", tmp_path / "r")
    first.run(stop_at=4)
    assert (first.run_dir / "checkpoints" / "step_0000004" / "task.pt").exists()
    second = trainer(config, "vpt", tmp_path / "r")
    assert second.step == 4
    second.run()
    want, got = state(straight["vpt"]), state(second)
    assert set(want) == set(got) and all(torch.equal(want[k], got[k]) for k in want)
    keys = ("loss", "value", "ade20k/head_loss", "mask_keep")
    assert [[r.get(k) for k in keys] for r in second.metrics.rows] == [[r.get(k) for k in keys] for r in straight["vpt"].metrics.rows]


def test_non_finite_loss_keeps_the_last_good_checkpoint(config: dict[str, Any], tmp_path: Path) -> None:
    t = trainer(config, "vpt", tmp_path / "nan")
    t.run(stop_at=4)
    with torch.no_grad():
        t.task.learner.student.backbone.cls_token.fill_(float("nan"))
    with pytest.raises(NonFiniteError, match="step 5"):
        t.run()
    assert json.loads((t.run_dir / "checkpoints" / "latest.json").read_text())["checkpoint"] == "step_0000004"
    resumed = trainer(config, "vpt", tmp_path / "nan")
    assert resumed.step == 4 and torch.isfinite(resumed.task.learner.student.backbone.cls_token).all()


def test_checkpoint_of_another_configuration_is_not_resumed(config: dict[str, Any], tmp_path: Path) -> None:
    trainer(config, "vpt", tmp_path / "c").run(stop_at=4)
    other = copy.deepcopy(config)
    other["vision"]["designer"]["keep_ratio"] = 0.5
    tcfg, spec = vision_run_setup(other, "vpt", tmp_path / "c")
    t = vision_trainer(tcfg, spec, device="cpu")
    assert t.step == 0 and t.resume_from is None
    with pytest.raises(Exception, match="random_masks|dino|vpt"):
        vision_run_setup(config, "ntp", tmp_path / "x")


def test_preemption_checkpoints_at_a_step_boundary_and_requeues(config: dict[str, Any], straight: dict[str, Any],
                                                              tmp_path: Path) -> None:
    from vpt import preempt

    t = trainer(config, "vpt", tmp_path / "p")
    preempt.request()  # what SIGUSR2 from the scheduler does
    try:
        with pytest.raises(preempt.Preempted):
            t.run()
    finally:
        preempt.reset()
    assert t.step == 1 and (t.run_dir / "checkpoints" / "step_0000001" / "task.pt").exists()
    requeued = trainer(config, "vpt", tmp_path / "p")  # the requeued job
    assert requeued.step == 1
    requeued.run()
    assert [r["loss"] for r in requeued.metrics.rows] == [r["loss"] for r in straight["vpt"].metrics.rows]


def test_head_warmup_freezes_the_backbone_for_every_method(config: dict[str, Any], tmp_path: Path) -> None:
    cfg = copy.deepcopy(config)
    cfg["vision"]["ssl"]["head_warmup_steps"] = 2
    for method in ("dino", "vpt"):
        t = trainer(cfg, method, tmp_path / method)
        backbone = {k: v.clone() for k, v in t.task.learner.student.backbone.state_dict().items()}
        head = t.task.learner.student.head.mlp[0].weight.detach().clone()
        t.run(stop_at=2)
        assert all(torch.equal(v, backbone[k]) for k, v in t.task.learner.student.backbone.state_dict().items()), method
        assert not torch.equal(t.task.learner.student.head.mlp[0].weight, head)
        t.run(stop_at=3)
        assert not torch.equal(t.task.learner.student.backbone.cls_token, backbone["cls_token"])
