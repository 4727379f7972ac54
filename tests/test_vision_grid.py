"""The vision grid (vpt.vision.grid): run ids that round-trip and never collide with language ones,
groups resolved from the config, cross-references checked before any rule runs, a run's own
settings (lr, seed, g_down weights, designer variant) put into the config it trains with, and
`vpt train --run <vision id>` training exactly that run."""

from __future__ import annotations

import argparse
import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from vpt import workflow as W
from vpt.config import ConfigError, load_config, validate_config
from vpt.errors import VptError
from vpt.grid import RUN_ID_PATTERN, all_runs
from vpt.train.methods import VISION_METHODS
from vpt.vision.grid import (DEFAULT_DESIGNER, VISION_RUN_ID_PATTERN, VisionRun, default_vision_run, is_vision_run_id,
                             make_vision_run, parse_vision_run, vision_evaluations, vision_run_config, vision_runs)

from conftest import REPO
from test_vision_methods import config  # noqa: F401  (the fixture: a tiny world and a tiny ViT)


@pytest.fixture(scope="module", params=["config.yaml", "paper.yaml"])
def preset(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load_config([REPO / "config" / request.param])


def test_ids_round_trip_and_never_match_the_other_modality(preset: dict[str, Any]) -> None:
    runs = vision_runs(preset)
    assert runs and len({r.id for r in runs}) == len(runs)
    for run in runs:
        assert VisionRun.parse(run.id) == run and parse_vision_run(preset, run.id) == run
        assert re.fullmatch(VISION_RUN_ID_PATTERN, run.id) and not re.fullmatch(RUN_ID_PATTERN, run.id)
    for run in all_runs(preset):  # the language grid
        assert not is_vision_run_id(run.id) and re.fullmatch(RUN_ID_PATTERN, run.id)


def test_embedded_grid_groups() -> None:
    cfg = load_config([REPO / "config" / "config.yaml"])
    ids = {r.id for r in vision_runs(cfg)}
    assert ids == {"vision_base/dino/lr0.0002_s0", "vision_base/dino/lr0.0002_s1", "vision_base/random_masks/lr0.0002_s0",
                   "vision_base/random_feedback/lr0.0002_s0_seg1_depth1", "vision_base/vpt/lr0.0002_s0_seg1_depth1",
                   "vision_base/vpt/lr0.0002_s1_seg1_depth1", "vision_base/vpt/lr0.0002_s0_seg1_depth0",
                   "vision_base/vpt/lr0.0002_s0_seg0_depth1"}
    tasks = {(r.id, t) for r, _, t in vision_evaluations(cfg)}
    assert ("vision_base/dino/lr0.0002_s1", "rparis6k") in tasks  # main: every vision task
    assert ("vision_base/vpt/lr0.0002_s0_seg1_depth0", "ade20k") in tasks
    assert ("vision_base/vpt/lr0.0002_s0_seg1_depth0", "imagenet_linear") not in tasks  # pareto: ade20k, nyuv2
    assert default_vision_run(cfg, "vpt").id == "vision_base/vpt/lr0.0002_s0_seg1_depth1"


def test_methods_drop_the_fields_they_ignore() -> None:
    assert make_vision_run("m", "dino", 1e-5, 0, (4, 1), "sit") == VisionRun("m", "dino", 1e-5, 0, None, DEFAULT_DESIGNER)
    assert make_vision_run("m", "random_masks", 1e-5, 0, (4, 1), "sit").id == "m/random_masks/lr1e-05_s0"
    # random_feedback trains the designer (on a random g_down of the same norm): both stay
    assert make_vision_run("m", "random_feedback", 1e-5, 0, (4, 1), "sit").id == "m/random_feedback/lr1e-05_s0_seg4_depth1_sit"
    assert make_vision_run("m", "vpt", 1e-5, 2, (0.5, 16), "tv-high").id == "m/vpt/lr1e-05_s2_seg0.5_depth16_tv-high"


def test_malformed_and_unknown_ids_are_refused(preset: dict[str, Any]) -> None:
    with pytest.raises(VptError, match=f"malformed.*with a method of {', '.join(VISION_METHODS)}"):
        VisionRun.parse("vision_base/ntp/lr1e-05_s0")
    with pytest.raises(VptError, match="model 'vit-h' is not in the config; choose one of"):
        parse_vision_run(preset, "vit-h/dino/lr1e-05_s0")
    with pytest.raises(VptError, match="designer 'wide' is not in the config; choose one of: default"):
        parse_vision_run(preset, f"{preset['vision']['learner']}/vpt/lr1e-05_s0_seg1_depth1_wide")


def test_bad_grid_references_name_the_key() -> None:
    raw = load_config([REPO / "config" / "config.yaml"])
    bad = copy.deepcopy(raw)
    bad["vision"]["grid"]["pareto"].update(models=["vit-h"], designers=["wide"], weightings=[[0, 0]])
    with pytest.raises(ConfigError) as e:
        validate_config(bad, source="bad.yaml")
    msg = str(e.value)
    assert "key 'vision.grid.pareto.models': 'vit-h' is not a vision learner; choose one of: vision_base" in msg
    assert "key 'vision.grid.pareto.designers': 'wide' is not in vision.designers; choose one of: default, tv-high" in msg
    assert "key 'vision.grid.pareto.weightings': [0, 0] weighs both evaluators 0" in msg
    bad = copy.deepcopy(raw)
    bad["vision"]["grid"]["main"]["methods"] = ["ntp"]
    with pytest.raises(ConfigError, match="vision.grid.main.methods"):
        validate_config(bad, source="bad.yaml")


def test_a_run_config_carries_the_runs_settings_and_the_stamp_only_what_it_reads() -> None:
    cfg = load_config([REPO / "config" / "config.yaml"])
    run = parse_vision_run(cfg, "vision_base/vpt/lr0.0003_s4_seg4_depth0.5_tv-high")
    v = vision_run_config(cfg, run)["vision"]
    assert v["train"]["lr"] == 3e-4 and v["train"]["seed"] == 4 and v["designer"]["lambda_tv"] == 1.0
    assert (v["feedback"]["tasks"]["ade20k"]["weight"], v["feedback"]["tasks"]["nyuv2"]["weight"]) == (4, 0.5)
    assert cfg["vision"]["designer"]["lambda_tv"] == 0.1  # the config itself is untouched
    dino, vpt = (parse_vision_run(cfg, i) for i in ("vision_base/dino/lr0.0002_s0", "vision_base/vpt/lr0.0002_s0_seg1_depth1"))
    edited = copy.deepcopy(cfg)
    edited["vision"]["feedback"]["head_lr"] = 0.5
    edited["vision"]["designer"]["keep_ratio"] = 0.3
    assert W.vision_run_settings(edited, dino) == W.vision_run_settings(cfg, dino)  # dino reads neither
    masks = parse_vision_run(cfg, "vision_base/random_masks/lr0.0002_s0")
    tv = copy.deepcopy(cfg)
    tv["vision"]["designer"]["lambda_tv"] = 0.5  # a learned designer's regulariser: random masks ignore it
    assert W.vision_run_settings(tv, masks) == W.vision_run_settings(cfg, masks) != W.vision_run_settings(edited, masks)
    assert W.vision_run_settings(edited, vpt) != W.vision_run_settings(cfg, vpt)
    assert W.vision_train_inputs(cfg, dino) == ["data/raw/imagenet/train.parquet", "results/models/vision_base/final/state.json"]
    one = parse_vision_run(cfg, "vision_base/vpt/lr0.0002_s0_seg1_depth0")  # w_depth 0: NYUv2 pools unread
    assert [i for i in W.vision_train_inputs(cfg, one) if "feedback" in i] == [
        "data/raw/ade20k/feedback_meta.parquet", "data/raw/ade20k/feedback_train.parquet"]


def test_cli_trains_a_vision_grid_run_into_its_id(config: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    from vpt import commands, paths

    cfg = copy.deepcopy(config)
    cfg["vision"]["grid"] = {"pareto": {"methods": ["vpt"], "weightings": [[1, 0]]}}
    cfg["vision"]["train"] = {**cfg["vision"]["train"], "steps": 2, "checkpoint_every": 2}
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    run_id = "tiny/vpt/lr0.001_s0_seg1_depth0"
    assert [r.id for r in vision_runs(cfg)] == [run_id]
    args = argparse.Namespace(config=[str(path)], run=run_id, method="vpt", base=False, vision_base=False, vision=None,
                              run_dir=None, steps=None, stop_at=None, device="cpu")
    commands.cmd_train(args)
    run_dir = paths.run_dir(cfg, run_id)
    state = json.loads((run_dir / "final" / "state.json").read_text())
    assert state["finished"] and state["step"] == 2
    import torch

    from vpt.train.checkpoint import latest

    task_state = torch.load(latest(run_dir) / "task.pt", weights_only=True)  # the feedback heads, by evaluator
    assert set(task_state) == {"ade20k"}  # w_depth 0: only the ADE20K evaluator
