"""Download stage: every source goes through `datasets.load_dataset`, hub or local.

A hub source is `path: org/name` with a pinned `revision`; a local one is a builder
(`json`, `csv`, `parquet`) with `data_files`. Either way the result is normalized
(vpt.data.normalize) and written as `<data_dir>/raw/<name>/<split>.parquet` plus a
`manifest.json` recording rows, columns, sha256 of every input and output file, source and
revision. The manifest is written last: if it exists, the parquet files are complete.

Two exceptions to "everything through load_dataset": revisitop (Oxford/Paris retrieval) is not on
the hub and is read from its release layout (vpt.data.revisitop); and a dataset with `pools`
gets its feedback pools, rows drawn from a split by seed, written as extra splits after the
others and checked disjoint (ids and image bytes) from every evaluation split.
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pandas as pd

from vpt import __version__
from vpt.data.normalize import NORMALIZERS
from vpt.data.revisitop import load_revisitop
from vpt.errors import SourceError
from vpt.io import atomic_dir, sha256_file
from vpt.paths import pool_names, source_splits

__all__ = ["SourceError", "download", "load_split"]  # SourceError: raised here, defined in vpt.errors

LOCAL_BUILDERS = ("json", "csv", "parquet")


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return f"{type(exc).__name__}: {exc}"


def expand_data_files(name: str, split: str, pattern: str) -> list[str]:
    files = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    if not files:
        raise SourceError(f"dataset {name!r}, split {split!r}: data_files pattern {pattern!r} matches no file")
    for f in files:
        p = Path(f)
        if not p.is_file():
            raise SourceError(f"dataset {name!r}, split {split!r}: source file {f} does not exist")
        try:
            with open(p, "rb") as fh:
                fh.read(1)
        except OSError as e:
            raise SourceError(f"dataset {name!r}, split {split!r}: cannot read {f}: {e.strerror}") from e
    return files


def _load(spec: dict[str, Any], what: str, **kwargs: Any) -> pd.DataFrame:
    """One load_dataset call, its errors turned into a message naming `what` and the reason."""
    try:
        ds = datasets.load_dataset(spec["path"], revision=spec.get("revision"), **spec.get("read_options", {}), **kwargs)
    except Exception as e:  # datasets wraps parser errors in several layers
        raise SourceError(f"cannot load {what}: {_root_cause(e)}") from e
    assert isinstance(ds, datasets.Dataset)
    return ds.to_pandas()


def load_split(name: str, spec: dict[str, Any], split: str) -> tuple[pd.DataFrame, list[str]]:
    """The raw table of one split and the local files it came from (empty for the hub)."""
    if "data_files" not in spec:
        configs = spec.get("name")
        if isinstance(configs, list):
            frames = []
            for cfg_name in configs:
                df = _load(spec, f"{spec['path']}:{cfg_name} split {split!r}", name=cfg_name, split=split)
                frames.append(df.assign(config=cfg_name))
            return pd.concat(frames, ignore_index=True), []
        return _load(spec, f"{spec['path']} split {split!r}", name=configs, split=split), []

    files = expand_data_files(name, split, spec["data_files"][split])
    regex = spec.get("column_from_filename")
    if not regex:
        return _load(spec, f"{', '.join(files)} (dataset {name!r})", data_files={split: files}, split=split), files
    pattern = re.compile(regex)
    if len(pattern.groupindex) != 1:
        raise SourceError(f"dataset {name!r}: column_from_filename {regex!r} must have exactly one named group")
    (column,) = pattern.groupindex
    frames = []
    for f in files:
        match = pattern.search(Path(f).name)
        if not match:
            raise SourceError(f"dataset {name!r}: file name {Path(f).name!r} does not match column_from_filename {regex!r}")
        df = _load(spec, f"{f} (dataset {name!r})", data_files={split: [f]}, split=split)
        frames.append(df.assign(**{column: match.group(column)}))
    return pd.concat(frames, ignore_index=True), files


def _source_tables(name: str, spec: dict[str, Any]) -> Any:
    """(split, raw table, local files) for every source split, loaded one at a time."""
    if spec["schema"] == "revisitop":
        tables, files = load_revisitop(name, spec)
        for i, split in enumerate(source_splits(spec)):
            yield split, tables[split], files if i == 0 else []
        return
    for split in source_splits(spec):
        raw, files = load_split(name, spec, split)
        yield split, raw, files


def _image_hashes(table: pd.DataFrame) -> list[str]:
    return [hashlib.sha256(b).hexdigest() for b in table["image"]] if "image" in table else []


def draw_pools(name: str, spec: dict[str, Any], tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The feedback pools: rows of their split drawn without replacement by `pools.seed`, pools of
    one split disjoint (taken in name order from one permutation), ids kept from that split."""
    pools = spec.get("pools", {})
    out: dict[str, pd.DataFrame] = {}
    taken: dict[str, int] = {}
    perms: dict[str, np.ndarray] = {}
    for pool in pool_names(spec):
        split, n = pools[pool]["split"], pools[pool]["n"]
        if split not in tables:
            raise SourceError(f"dataset {name!r}: pool {pool!r} draws from split {split!r}; choose one of: {', '.join(tables)}")
        rows = len(tables[split])
        if split not in perms:
            perms[split] = np.random.default_rng(pools.get("seed", 0)).permutation(rows)
        start = taken.get(split, 0)
        if start + n > rows:
            raise SourceError(f"dataset {name!r}: pool {pool!r} asks for {n} rows of split {split!r}, which has {rows} "
                              f"({start} already taken by other pools)")
        out[pool] = tables[split].iloc[np.sort(perms[split][start:start + n])].reset_index(drop=True)
        taken[split] = start + n
    return out


def check_pools_disjoint(name: str, pools: dict[str, pd.DataFrame], spec: dict[str, Any],
                         hashes: dict[str, list[str]], ids: dict[str, list[str]]) -> None:
    """No pool row has identical image bytes to a row of an evaluation split (a split no pool
    draws from). Ids cannot collide: a pool keeps its source split's ids, which name that split."""
    sources = {spec["pools"][p]["split"] for p in pools}
    for pool, table in pools.items():
        pool_ids, pool_hashes = list(table["id"]), _image_hashes(table)
        for split in [s for s in ids if s not in sources]:
            where = {h: i for i, h in enumerate(hashes.get(split, []))}
            for i, h in enumerate(pool_hashes):
                if h in where:
                    raise SourceError(f"dataset {name!r}: pool {pool!r} row {i} (id {pool_ids[i]}) has the same image bytes "
                                      f"as {split!r} row {where[h]} (id {ids[split][where[h]]})")


def download(name: str, spec: dict[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """Fetch, normalize and write every split of one source (then its feedback pools); return its manifest."""
    normalize = NORMALIZERS[spec["schema"]]
    manifest: dict[str, Any] = {
        "name": name,
        "schema": spec["schema"],
        "source": {**{k: spec.get(k) for k in ("path", "name", "revision", "data_files", "splits")},
                   **{k: spec[k] for k in ("root", "url", "sha256") if k in spec}},
        "inputs": {},
        "splits": {},
        "versions": {"vpt": __version__, "datasets": datasets.__version__},
    }
    pool_sources = {spec["pools"][p]["split"] for p in pool_names(spec)}
    kept: dict[str, pd.DataFrame] = {}
    hashes: dict[str, list[str]] = {}
    ids: dict[str, list[str]] = {}
    with atomic_dir(out_dir, last=("manifest.json",)) as tmp:
        for split, raw, files in _source_tables(name, spec):
            try:
                table = normalize(raw, spec)
            except ValueError as e:
                where = ", ".join(files) or f"{spec.get('path', spec.get('root'))} split {split!r}"
                raise SourceError(f"dataset {name!r} ({where}) split {split!r}: {e}") from e
            table.insert(0, "id", [f"{name}/{split}/{i}" for i in range(len(table))])
            _write(tmp, split, table, manifest)
            manifest["inputs"].update({f: sha256_file(f) for f in files})
            if pool_sources:
                ids[split], hashes[split] = list(table["id"]), _image_hashes(table)
                if split in pool_sources:
                    kept[split] = table
        pools = draw_pools(name, spec, kept) if pool_sources else {}
        check_pools_disjoint(name, pools, spec, hashes, ids)
        for pool, table in pools.items():
            _write(tmp, pool, table, manifest)
        if pools:
            manifest["pools"] = {p: {**spec["pools"][p], "seed": spec["pools"].get("seed", 0), "ids": list(t["id"])}
                                 for p, t in pools.items()}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _write(tmp: Path, split: str, table: pd.DataFrame, manifest: dict[str, Any]) -> None:
    out = tmp / f"{split}.parquet"
    table.to_parquet(out, index=False)
    manifest["splits"][split] = {"file": f"{split}.parquet", "rows": len(table), "columns": list(table.columns),
                                 "sha256": sha256_file(out)}
