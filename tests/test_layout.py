"""One place for the layout of a run directory (vpt.paths): checkpoint and snapshot names, the
latest pointer, final/, and the labels the evaluations use."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vpt import grid, paths
from vpt.config import load_config
from vpt.errors import VptError
from vpt.train import checkpoint as ckpt

from conftest import REPO


def test_labels_round_trip_and_match_the_wildcard_pattern() -> None:
    assert paths.step_label(200) == "step_0000200"
    for step in (None, 20, 1800):
        label = paths.checkpoint_label(step)
        assert paths.parse_checkpoint_label(label) == step
        assert re.fullmatch(paths.CHECKPOINT_LABEL_PATTERN, label)
    assert paths.checkpoint_label(None) == paths.FINAL == "final"
    assert not re.fullmatch(paths.CHECKPOINT_LABEL_PATTERN, "step_20")  # the eval rule takes padded labels only
    with pytest.raises(VptError, match="neither 'final' nor step_<N>"):
        paths.parse_checkpoint_label("best")
    assert grid.checkpoint_label is paths.checkpoint_label  # re-exported, not repeated


def test_run_directory_layout(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert paths.checkpoint_dir(run, 100) == ckpt.step_dir(run, 100) == run / "checkpoints" / "step_0000100"
    assert paths.latest_pointer(run) == run / "checkpoints" / "latest.json"
    assert paths.snapshot_dir(run, 20) == ckpt.snapshot_dir(run, 20) == run / "snapshots" / "step_0000020"
    assert paths.final_state(run) == paths.final_dir(run) / "state.json" == run / "final" / "state.json"
    assert paths.saved_model(run) == run / "final"
    assert paths.saved_model(run, paths.checkpoint_label(20)) == paths.snapshot_dir(run, 20)


def test_model_dir_and_eval_dir_use_the_labels() -> None:
    cfg = load_config([REPO / "config" / "config.yaml"])
    run_id = "base/vpt/lr0.0003_s0_fb1024_decontaminated"
    label = paths.checkpoint_label(20)
    assert paths.model_dir(cfg, run_id, label) == paths.snapshot_dir(paths.run_dir(cfg, run_id), 20)
    assert paths.model_dir(cfg, "base") == paths.final_dir(paths.base_run_dir(cfg))
    assert paths.eval_dir(cfg, run_id, label) == Path("results/eval") / run_id / "step_0000020"


def test_latest_pointer_and_pruning(tmp_path: Path) -> None:
    run = tmp_path / "run"
    for step in (10, 20, 30):
        d = ckpt.step_dir(run, step)
        ckpt.save_atomic(d, lambda tmp: (tmp / "state.json").write_text("{}"))
        ckpt.mark_latest(run, d, keep=2)
    assert json.loads(paths.latest_pointer(run).read_text()) == {"checkpoint": "step_0000030"}
    assert ckpt.latest(run) == ckpt.step_dir(run, 30)
    assert sorted(p.name for p in paths.checkpoints_dir(run).iterdir() if p.is_dir()) == ["step_0000020", "step_0000030"]


# Places that still spell the layout themselves, owned by work in progress elsewhere (the trainer
# rewrite, the run-assembly move out of the CLI, the lab rewrite); new code calls vpt.paths.
SPELLINGS = re.compile(r'/ "final"|"checkpoints"|"snapshots"|latest\.json"|f"step_\{|:07d\}')


def test_no_other_module_spells_the_run_layout() -> None:
    offenders = []
    for path in sorted((REPO / "vpt").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel != "vpt/paths.py" and SPELLINGS.search(path.read_text()):
            offenders.append(rel)
    assert offenders == [], f"spell the run layout through vpt.paths: {offenders}"
