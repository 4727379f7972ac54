"""Checkpoints: everything needed to continue a run exactly, written atomically.

<run>/checkpoints/step_0000100/
  learner/            save_pretrained (safetensors)
  designer.pt         designer state_dict (value methods)
  optim.pt            learner and designer optimizer states
  rng.pt              torch / numpy / python RNG states and the run's generators
  config.json         the resolved training config
  state.json          loop state: step, data position, metrics so far (written last)
<run>/checkpoints/latest.json names the newest complete one.
The directory names are vpt.paths' (checkpoint_dir, latest_pointer, snapshot_dir, final_dir).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from vpt import paths
from vpt.io import write_json


def step_dir(run_dir: Path, step: int) -> Path:
    """<run>/checkpoints/step_NNNNNNN"""
    return paths.checkpoint_dir(run_dir, step)


def snapshot_dir(run_dir: Path, step: int) -> Path:
    """<run>/snapshots/step_NNNNNNN: the model only."""
    return paths.snapshot_dir(run_dir, step)


def temp_dir(target: Path) -> Path:
    """A fresh temporary directory beside `target` (same filesystem: the rename is atomic)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))


def commit(tmp: Path, target: Path) -> None:
    """Rename the complete `tmp` onto `target`, replacing an older copy; `tmp` is gone afterwards."""
    try:
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def save_atomic(target: Path, writer: Any) -> None:
    """Call writer(tmp_dir), then rename tmp_dir onto target (replacing an older copy).
    Several ranks writing one checkpoint: vpt.dist.save_atomic_distributed."""
    tmp = temp_dir(target)
    try:
        writer(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    commit(tmp, target)


def latest(run_dir: Path) -> Path | None:
    pointer = paths.latest_pointer(run_dir)
    if not pointer.exists():
        return None
    path = paths.checkpoints_dir(run_dir) / json.loads(pointer.read_text())["checkpoint"]
    return path if (path / "state.json").exists() else None


def mark_latest(run_dir: Path, path: Path, keep: int) -> None:
    write_json(paths.latest_pointer(run_dir), {"checkpoint": path.name})
    root = paths.checkpoints_dir(run_dir)
    ckpts = sorted(p for p in root.iterdir() if p.is_dir() and paths.is_step_label(p.name))
    for old in ckpts[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
