"""Decontamination: drop corpus documents that near-duplicate a reference test item.

Two passes, as in the paper (section 4.5): MinHash LSH over word n-gram shingles proposes
candidate pairs cheaply, then the exact n-gram Jaccard of each candidate confirms or rejects
it. LSH runs at a lower threshold than the confirmation so that it misses few true pairs.

Text is normalized before shingling so that trivial edits do not hide a copy: punctuation and
whitespace dropped, every number mapped to one token and every capitalized word (names, and
sentence starts) to another, the rest lower-cased. A copy with its numbers and names changed is
still the same problem; on GSM8K this keeps 100% recall of such edits of the test set while
flagging 0.1% of the (distinct) train questions.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from datasketch import MinHash, MinHashLSH

from vpt.errors import VptError
from vpt.progress import progress

WORD = re.compile(r"[A-Za-z]+|\d+(?:[.,]\d+)*")
NUMBER_TOKEN = "<num>"
CAPITALIZED_TOKEN = "<cap>"
SCHEME = "affine32"  # datasketch >= 2 needs the permutation scheme named when reusing permutations


@dataclass
class DecontamConfig:
    num_perm: int = 128
    ngram: int = 3
    threshold: float = 0.5  # exact Jaccard at or above which a doc is removed
    lsh_threshold: float = 0.3  # LSH candidate threshold (recall knob)
    workers: int = 2
    seed: int = 1  # MinHash permutations; fixed so that runs are reproducible


def _normalize(word: str) -> str:
    if word[0].isdigit():
        return NUMBER_TOKEN
    if len(word) > 1 and word[0].isupper() and word[1:].islower():
        return CAPITALIZED_TOKEN
    return word.lower()


def words(text: str) -> list[str]:
    return [_normalize(w) for w in WORD.findall(text)]


def shingles(text: str, n: int) -> frozenset[str]:
    """Word n-grams of the normalized text; a text shorter than n is one shingle."""
    toks = words(text)
    if len(toks) < n:
        return frozenset([" ".join(toks)]) if toks else frozenset()
    return frozenset(" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)


class _Hasher:
    """MinHash signatures with permutations drawn once (datasketch redraws them per object)."""

    def __init__(self, num_perm: int, seed: int) -> None:
        self.num_perm, self.seed = num_perm, seed
        self.permutations = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME).permutations

    def __call__(self, shingle_set: frozenset[str]) -> np.ndarray:
        m = MinHash(num_perm=self.num_perm, seed=self.seed, permutations=self.permutations, scheme=SCHEME)
        m.update_batch([s.encode("utf-8") for s in shingle_set])
        return m.hashvalues

    def minhash(self, hashvalues: np.ndarray) -> MinHash:
        return MinHash(num_perm=self.num_perm, seed=self.seed, hashvalues=hashvalues, permutations=self.permutations, scheme=SCHEME)


_worker_state: dict[str, Any] = {}


def _init_worker(num_perm: int, seed: int, ngram: int) -> None:
    _worker_state["hasher"] = _Hasher(num_perm, seed)
    _worker_state["ngram"] = ngram


def _signatures(texts: Sequence[str]) -> list[tuple[frozenset[str], np.ndarray]]:
    hasher, n = _worker_state["hasher"], _worker_state["ngram"]
    out = []
    for t in texts:
        s = shingles(t, n)
        out.append((s, hasher(s)))
    return out


def _chunks(seq: Sequence[str], size: int) -> list[Sequence[str]]:
    return [seq[i : i + size] for i in range(0, len(seq), size)]


def signatures(texts: Sequence[str], cfg: DecontamConfig, desc: str = "minhash") -> list[tuple[frozenset[str], np.ndarray]]:
    """(shingles, MinHash values) per text, over `cfg.workers` processes."""
    chunks = _chunks(list(texts), 256)
    bar = progress(total=len(texts), desc=desc, unit="doc")
    out: list[tuple[frozenset[str], np.ndarray]] = []
    if cfg.workers <= 1 or len(texts) < 1024:
        _init_worker(cfg.num_perm, cfg.seed, cfg.ngram)
        for c in chunks:
            out.extend(_signatures(c))
            bar.update(len(c))
    else:
        ctx = mp.get_context("fork")
        with ctx.Pool(cfg.workers, initializer=_init_worker, initargs=(cfg.num_perm, cfg.seed, cfg.ngram)) as pool:
            for res in pool.imap(_signatures, chunks):
                out.extend(res)
                bar.update(len(res))
    bar.close()
    return out


@dataclass
class Reference:
    id: str
    shingles: frozenset[str]


class ReferenceIndex:
    """LSH index over the reference test items; `match` returns the best confirmed hit."""

    def __init__(self, ids: Sequence[str], texts: Sequence[str], cfg: DecontamConfig) -> None:
        self.cfg = cfg
        self.hasher = _Hasher(cfg.num_perm, cfg.seed)
        self.lsh = MinHashLSH(threshold=cfg.lsh_threshold, num_perm=cfg.num_perm)
        self.refs: dict[str, Reference] = {}
        for ref_id, (sh, hv) in zip(ids, signatures(texts, cfg, desc="index references")):
            if not sh:
                continue
            if ref_id in self.refs:
                raise ValueError(f"duplicate reference id {ref_id!r}")
            self.refs[ref_id] = Reference(ref_id, sh)
            self.lsh.insert(ref_id, self.hasher.minhash(hv))

    def candidates(self, hashvalues: np.ndarray) -> list[str]:
        return self.lsh.query(self.hasher.minhash(hashvalues))

    def match(self, sh: frozenset[str], hashvalues: np.ndarray) -> tuple[str, float] | None:
        """(reference id, exact Jaccard) of the best candidate at or above the threshold."""
        best: tuple[str, float] | None = None
        for ref_id in self.candidates(hashvalues):
            score = jaccard(sh, self.refs[ref_id].shingles)
            if score >= self.cfg.threshold and (best is None or score > best[1]):
                best = (ref_id, score)
        return best


def decontaminate(
    corpus: pd.DataFrame, field: str, references: pd.DataFrame, cfg: DecontamConfig
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Split `corpus` into kept rows and a report of the removed ones.

    `references` has columns `id` and `text`; `corpus` has `id` and `field`.
    """
    t0 = time.perf_counter()
    index = ReferenceIndex(references["id"].tolist(), references["text"].tolist(), cfg)
    t1 = time.perf_counter()
    sigs = signatures(corpus[field].astype(str).tolist(), cfg, desc="decontaminate")
    removed = []
    keep = np.ones(len(corpus), dtype=bool)
    for i, (doc_id, (sh, hv)) in enumerate(zip(corpus["id"], sigs)):
        if not sh:
            continue
        hit = index.match(sh, hv)
        if hit is not None:
            keep[i] = False
            removed.append({"id": doc_id, "matched_reference": hit[0], "score": round(hit[1], 6)})
    t2 = time.perf_counter()
    report = {
        "docs_in": int(len(corpus)),
        "docs_out": int(keep.sum()),
        "docs_removed": len(removed),
        "references": int(len(index.refs)),
        "params": asdict(cfg),
        "seconds": {"index": round(t1 - t0, 3), "scan": round(t2 - t1, 3)},
        "docs_per_second": round(len(corpus) / max(t2 - t1, 1e-9), 1),
        "removed": removed,
    }
    return corpus[keep].reset_index(drop=True), report


def decontaminate_stage(cfg: dict[str, Any], out: str | Path | None = None) -> tuple[dict[str, Any], Path]:
    """The `decontaminate` section of a config: read its corpus split and every reference split
    (the raw downloads), drop the near-duplicates and write the kept split and report.json to
    `out` (default: the workflow's path); (report, where it went)."""
    from vpt.io import atomic_dir, read_parquet
    from vpt.paths import decontaminated_dir, raw_split

    dc = cfg["decontaminate"]
    corpus_ref = dc["corpus"]
    corpus = read_parquet(raw_split(cfg, corpus_ref["dataset"], corpus_ref["split"]))
    refs = []
    for r in dc["references"]:
        df = read_parquet(raw_split(cfg, r["dataset"], r["split"]))
        if r["field"] not in df.columns:
            raise VptError(f"reference {r['dataset']}/{r['split']} has no field {r['field']!r}; columns: {list(df.columns)}")
        refs.append(pd.DataFrame({"id": df["id"], "text": df[r["field"]].astype(str)}))
    if corpus_ref["field"] not in corpus.columns:
        raise VptError(f"corpus has no field {corpus_ref['field']!r}; columns: {list(corpus.columns)}")
    params = DecontamConfig(**{k: dc[k] for k in ("num_perm", "ngram", "threshold", "lsh_threshold", "workers")})
    kept, report = decontaminate(corpus, corpus_ref["field"], pd.concat(refs, ignore_index=True), params)
    report["corpus"] = corpus_ref
    report["references_from"] = dc["references"]
    path = Path(out) if out else decontaminated_dir(cfg, corpus_ref["dataset"])
    with atomic_dir(path, last=("report.json",)) as tmp:
        kept.to_parquet(tmp / f"{corpus_ref['split']}.parquet", index=False)
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report, path
