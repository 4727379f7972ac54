"""DVC versioning of the pipeline's outputs: datasets (synthetic, raw, decontaminated, packed,
tokenizer), the base model, every run's checkpoints and final model, evaluations, probes,
benchmarks, tables and figures. One .dvc pointer per stage directory, committed to git; the
files go to a DVC remote (by default a local directory next to the repository, see .dvc/config).

Producer:  snakemake ... all && vpt dvc push            then git add/commit the printed files
Consumer:  git clone ... && dvc pull && snakemake --touch --cores 1 all
`--touch` right after the pull: DVC restores files with arbitrary modification times, and
Snakemake would otherwise rerun jobs whose inputs look newer than their outputs. Later config
edits still rerun exactly the affected jobs (vpt.workflow.stamp does not rely on Snakemake's
metadata, which a clone does not have)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from vpt import paths
from vpt.errors import VptError

DATA_STAGES = ("synth", "raw", "decontaminated", "tokenizer", "packed")
RESULT_STAGES = ("models", "runs", "eval", "probe", "bench", "tables", "figures")


def tracked_paths(cfg: dict[str, Any], root: Path = Path(".")) -> list[Path]:
    """The stage directories that exist under the config's data_dir and results_dir."""
    candidates = [paths.data_dir(cfg) / s for s in DATA_STAGES] + [paths.results_dir(cfg) / s for s in RESULT_STAGES]
    return [p for p in candidates if (root / p).is_dir()]


def _dvc(*args: str, cwd: Path) -> None:
    cmd = [sys.executable, "-m", "dvc", *args]
    res = subprocess.run(cmd, cwd=cwd)
    if res.returncode != 0:
        raise VptError(f"`dvc {' '.join(args)}` failed with exit code {res.returncode} (in {cwd})")


def push(cfg: dict[str, Any], remote: str | None = None, root: Path = Path(".")) -> list[Path]:
    """dvc add every existing stage directory, then dvc push; return the .dvc files to commit."""
    if not (root / ".dvc").is_dir():
        raise VptError(f"{root.resolve()} is not a DVC repository (no .dvc/); run `dvc init` or use the repository root")
    targets = tracked_paths(cfg, root)
    if not targets:
        raise VptError(f"nothing to track: none of {', '.join(map(str, (paths.data_dir(cfg) / s for s in DATA_STAGES)))} ... exists; run the pipeline first")
    _dvc("add", "--quiet", *map(str, targets), cwd=root)
    _dvc("push", *(["--remote", remote] if remote else []), cwd=root)
    pointers = [Path(f"{t}.dvc") for t in targets]
    ignores = sorted({t.parent / ".gitignore" for t in targets})
    return pointers + [g for g in ignores if (root / g).exists()]
