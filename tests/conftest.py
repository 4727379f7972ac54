from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "data" / "shipped"


@pytest.fixture(scope="session")
def gsm8k_test() -> pd.DataFrame:
    return pd.read_json(SHIPPED / "gsm8k" / "test.jsonl", lines=True)


@pytest.fixture(scope="session")
def gsm8k_train() -> pd.DataFrame:
    return pd.read_json(SHIPPED / "gsm8k" / "train.jsonl", lines=True)


def make_workdir(path: Path) -> Path:
    """A fresh working directory that looks like a clone: config/ and data/shipped/ only."""
    shutil.copytree(REPO / "config", path / "config")
    (path / "data").mkdir(parents=True)
    os.symlink(SHIPPED, path / "data" / "shipped")
    return path


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return make_workdir(tmp_path / "work")


def run(cmd: list[str], cwd: Path, timeout: int = 900, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **(env or {})}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env)


def vpt(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "vpt", *args], cwd=cwd)


def snakemake(*args: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("snakemake")
    return run([str(exe), "-s", str(REPO / "Snakefile"), *args], cwd=cwd, timeout=timeout)


# --------------------------------------------------------------------------- SLURM
# A real single-node SLURM cluster on this machine (tests/slurm/cluster.sh: installs slurm-wlm
# and munge when missing, needs root), started once per session by the tests that ask for it
# and stopped at the end (VPT_SLURM_KEEP=1 keeps it running; VPT_SKIP_SLURM=1 skips them).
SLURM_SCRIPT = REPO / "tests" / "slurm" / "cluster.sh"


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[None]:
    if os.environ.get("VPT_SKIP_SLURM") == "1":
        pytest.skip("VPT_SKIP_SLURM=1: the SLURM tests are skipped")
    if os.geteuid() != 0:
        pytest.fail("the SLURM tests start a cluster with tests/slurm/cluster.sh and need root; "
                    "run as root or set VPT_SKIP_SLURM=1 to skip them")
    r = subprocess.run(["bash", str(SLURM_SCRIPT), "start"], capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        subprocess.run(["bash", str(SLURM_SCRIPT), "stop"], capture_output=True, text=True, timeout=120)
        pytest.fail(f"tests/slurm/cluster.sh start failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    try:
        yield
    finally:
        if os.environ.get("VPT_SLURM_KEEP") != "1":
            subprocess.run(["bash", str(SLURM_SCRIPT), "stop"], capture_output=True, text=True, timeout=120)
