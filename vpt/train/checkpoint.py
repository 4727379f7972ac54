"""Checkpoints: everything needed to continue a run exactly, written atomically.

<run>/checkpoints/step_0000100/
  learner/            save_pretrained (safetensors)
  designer.pt         designer state_dict (value methods)
  optim.pt            learner and designer optimizer states
  rng.pt              torch / numpy / python RNG states and the run's generators
  config.json         the resolved training config
  state.json          loop state: step, data position, metrics so far (written last)
<run>/checkpoints/latest.json names the newest complete one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from vpt.io import write_json


def step_dir(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step_{step:07d}"


def snapshot_dir(run_dir: Path, step: int) -> Path:
    """<run>/snapshots/step_NNNNNNN: the model only (vpt.paths.snapshot_dir names the same place)."""
    return run_dir / "snapshots" / f"step_{step:07d}"


def save_atomic(target: Path, writer: Any) -> None:
    """Call writer(tmp_dir), then rename tmp_dir onto target (replacing an older copy)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        writer(tmp)
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


def latest(run_dir: Path) -> Path | None:
    pointer = run_dir / "checkpoints" / "latest.json"
    if not pointer.exists():
        return None
    path = run_dir / "checkpoints" / json.loads(pointer.read_text())["checkpoint"]
    return path if (path / "state.json").exists() else None


def mark_latest(run_dir: Path, path: Path, keep: int) -> None:
    write_json(run_dir / "checkpoints" / "latest.json", {"checkpoint": path.name})
    ckpts = sorted(p for p in (run_dir / "checkpoints").glob("step_*") if p.is_dir())
    for old in ckpts[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
