"""Atomic file output, stage inputs and hashing.

Every stage writes into a temporary sibling and renames it into place, so an interrupted or
failed run never leaves a partial output that Snakemake (or a human) could mistake for a
finished one, and a rerun simply overwrites.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vpt.errors import VptError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], last: tuple[str, ...] = ()) -> Iterator[Path]:
    """Yield a temporary directory; on success move each of its files into `path`.

    Files named in `last` (a manifest, a meta.json) are moved after all others, so their
    presence means the rest is complete. Files already in `path` that the block did not write
    are left alone; files it wrote replace the old ones one `os.replace` at a time.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        names = sorted(p.name for p in tmp.iterdir())
        for name in [n for n in names if n not in last] + [n for n in last if n in names]:
            os.replace(tmp / name, path / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_parquet(path: str | os.PathLike[str]) -> Any:
    """A stage's parquet input (a pandas DataFrame), or an error that says to make it first."""
    import pandas as pd

    if not Path(path).exists():
        raise VptError(f"input {path} does not exist; run the stage that makes it first (e.g. `vpt data download`)")
    return pd.read_parquet(path)


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fingerprint(path: str | os.PathLike[str]) -> str | None:
    """Cheap identity of a local file or directory: names, sizes and modification times of its
    files, hashed. Outputs here are only ever replaced whole (rename), so a rewrite changes it.
    None for something that is not on disk (a hub id)."""
    path = Path(path)
    if not path.exists():
        return None
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(path) if f != path else f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]
