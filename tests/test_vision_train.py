"""The DINO task on the shared trainer (vpt.train.loop): a tiny DINOv3-architecture ViT trains
on a small image table with finite losses, writes a final/ that load_backbone reads (the EMA
teacher's backbone), resumes exactly (5 + resume + 5 steps == 10 steps), and `vpt train
--vision-base` runs it from a config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from vpt import paths
from vpt.config import section_defaults
from vpt.train.config import TrainConfig
from vpt.vision.backbone import load_backbone, tokens
from vpt.vision.images import encode_png
from vpt.vision.task import HEADS_FILE, VisionRunSpec, vision_trainer

from conftest import REPO
from test_targets import embedded  # noqa: F401  (the shared config fixture)

torch.set_num_threads(1)

ARCH = {"embed_dim": 32, "depth": 2, "num_heads": 2, "patch_size": 8, "img_size": 32}
SSL = {"out_dim": 32, "hidden_dim": 32, "bottleneck_dim": 16, "global_crops": 2, "local_crops": 2, "global_size": 32,
       "local_size": 16, "teacher_temp_warmup_steps": 4, "momentum_base": 0.9, "freeze_last_layer_steps": 2}
TRAIN = {"steps": 10, "batch_size": 8, "lr": 1.0e-3, "warmup_steps": 2, "weight_decay": 0.04, "grad_clip": 3.0,
         "checkpoint_every": 5, "dtype": "float32"}


def image_table(n: int, size: int = 32, seed: int = 0) -> pd.DataFrame:
    """A normalized imagenet table (id, image PNG bytes, label) of coloured squares and discs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    rows = []
    for i in range(n):
        label = int(rng.integers(2))
        img = np.clip(rng.integers(0, 100, 3) + rng.normal(0, 10, (size, size, 3)), 0, 255)
        cy, cx, r = *rng.uniform(0.3, 0.7, 2) * size, rng.uniform(0.15, 0.3) * size
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r if label else (abs(yy - cy) < r) & (abs(xx - cx) < r)
        img[mask] = rng.integers(130, 256, 3)
        rows.append({"id": f"imagenet/train/{i}", "image": encode_png(img.astype(np.uint8)), "label": label})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("imagenet") / "train.parquet"
    image_table(48).to_parquet(path)
    return path


def _spec(table: Path, run_dir: Path) -> VisionRunSpec:
    ssl = section_defaults("vision", "ssl")
    ssl.update(SSL)
    return VisionRunSpec(run_dir, table, {"timm": "vit_base_patch16_dinov3", "architecture": ARCH}, ssl)


def _cfg(**kw: object) -> TrainConfig:
    return TrainConfig.from_dict({**TRAIN, "method": "dino", **kw})


def _learner_state(trainer) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    return {k: v.detach().clone() for k, v in trainer.task.learner.state_dict().items()}


@pytest.fixture(scope="module")
def full_run(table: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    run = tmp_path_factory.mktemp("full")
    trainer = vision_trainer(_cfg(), _spec(table, run), device="cpu")
    summary = trainer.run()
    return run, trainer, summary, _learner_state(trainer)


def test_dino_trains_on_the_shared_loop_and_writes_a_loadable_backbone(full_run) -> None:  # type: ignore[no-untyped-def]
    run, trainer, summary, state = full_run
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows]
    assert len(rows) == 10 and all(np.isfinite(losses)) and summary["finished"]
    assert {"images_per_s", "grad_norm", "teacher_temp", "lr"} <= set(rows[0])
    assert rows[0]["teacher_temp"] == pytest.approx(0.04) and rows[-1]["teacher_temp"] == pytest.approx(0.07)
    final = paths.final_dir(run)
    assert json.loads((final / "state.json").read_text())["step"] == 10
    model, meta = load_backbone(final)
    assert meta["prefix_tokens"] == 5 and meta["architecture"] == ARCH
    teacher = trainer.task.learner.teacher.backbone.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(tokens(model, x)["cls"], tokens(teacher, x)["cls"], rtol=0, atol=0)
    from safetensors.torch import load_file

    heads = load_file(str(final / HEADS_FILE))
    assert torch.equal(heads["loss.center"], state["loss.center"]) and state["loss.center"].abs().sum() > 0
    # the teacher followed the student by EMA (not a copy of it, not left at the initial weights)
    s, t = state["student.head.last_layer"], state["teacher.head.last_layer"]
    assert not torch.equal(s, t)


def test_last_layer_is_frozen_for_the_first_steps(table: Path, tmp_path: Path) -> None:
    trainer = vision_trainer(_cfg(steps=3, checkpoint_every=3), _spec(table, tmp_path / "r"), device="cpu")
    w0 = trainer.task.learner.student.head.last_layer.detach().clone()
    mlp0 = trainer.task.learner.student.head.mlp[0].weight.detach().clone()
    trainer.run(stop_at=2)
    assert torch.equal(trainer.task.learner.student.head.last_layer, w0)  # freeze_last_layer_steps: 2
    assert not torch.equal(trainer.task.learner.student.head.mlp[0].weight, mlp0)
    trainer.run()
    assert not torch.equal(trainer.task.learner.student.head.last_layer, w0)


def test_resume_is_exact(table: Path, tmp_path: Path, full_run) -> None:  # type: ignore[no-untyped-def]
    _, _, _, want = full_run
    run = tmp_path / "resumed"
    first = vision_trainer(_cfg(), _spec(table, run), device="cpu")
    assert first.run(stop_at=5) == {"step": 5, "finished": False}
    second = vision_trainer(_cfg(), _spec(table, run), device="cpu")  # a fresh process would do the same
    assert second.resume_from is not None and second.step == 5
    second.run()
    got = _learner_state(second)
    assert set(got) == set(want)
    for k in want:  # student, teacher and center, bit for bit
        assert torch.equal(got[k], want[k]), k
    full_rows = [json.loads(x) for x in (full_run[0] / "metrics.jsonl").read_text().splitlines()]
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in rows] == [r["loss"] for r in full_rows]


def test_cli_vision_base_trains_into_the_workflow_run_dir(table: Path, tmp_path: Path) -> None:
    from vpt.cli import main

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    data = tmp_path / "data"
    (data / "raw" / "imagenet").mkdir(parents=True)
    (data / "raw" / "imagenet" / "train.parquet").write_bytes(table.read_bytes())
    cfg.update(data_dir=str(data), results_dir=str(tmp_path / "results"))
    cfg["vision"]["base_model"].update(architecture=ARCH, train={**TRAIN, "steps": 2, "checkpoint_every": 2})
    cfg["vision"]["ssl"].update(SSL)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--vision-base", "--config", str(path), "--device", "cpu"]) == 0
    run = tmp_path / "results" / "models" / "vision_base"
    assert json.loads((run / "final" / "state.json").read_text())["method"] == "dino"
    recorded = json.loads((run / "final" / "run_config.json").read_text())
    assert recorded["train"]["method"] == "dino" and recorded["train"]["batch_size"] == 8
    load_backbone(run / "final")


def test_vision_base_train_section_reads_the_schema_defaults_not_the_language_train(embedded: dict) -> None:
    from vpt.runs import vision_base_train_section

    train = vision_base_train_section(embedded)
    assert train["lr"] == embedded["vision"]["base_model"]["train"]["lr"] != embedded["train"]["lr"]
    assert train["beta2"] == 0.999 and "method" not in train and "designer" not in train
    from vpt.errors import VptError

    without = {k: v for k, v in embedded.items() if k != "vision"}  # the fixture is shared: not edited
    with pytest.raises(VptError, match="vision.base_model"):
        vision_base_train_section(without)


def test_workflow_stamp_reads_the_vision_settings_only(embedded: dict) -> None:
    import copy

    from vpt import workflow as W

    assert W.vision_base_inputs(embedded) == ["data/raw/imagenet/train.parquet"]
    assert W.vision_base_output(embedded) == "results/models/vision_base/final/state.json"
    settings = W.vision_base_settings(embedded)
    edited = copy.deepcopy(embedded)
    edited["train"]["lr"] = 0.5  # the language runs' train section: not read by the vision base
    edited["base_model"]["train"]["steps"] = 7
    assert W.vision_base_settings(edited) == settings
    edited["vision"]["ssl"]["out_dim"] = 128
    assert W.vision_base_settings(edited) != settings


def test_snakemake_resolves_pretrain_vision_base(table: Path, tmp_path: Path) -> None:
    from conftest import make_workdir, snakemake

    work = make_workdir(tmp_path / "work")
    (work / "data" / "raw" / "imagenet").mkdir(parents=True)
    (work / "data" / "raw" / "imagenet" / "train.parquet").write_bytes(table.read_bytes())
    out = snakemake("-n", "results/models/vision_base/final/state.json", cwd=work, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "rule pretrain_vision_base:" in out.stdout and "--vision-base" not in out.stderr
