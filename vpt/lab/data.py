"""The lab's data: one seeded generator, several disjoint splits.

    corpus      all 8 families, target at `target_share`, target restricted to training templates
    feedback    target family, training templates (labels used only through g_down)
    validation  target family, held-out templates (hyper-parameter tuning only)
    test        target family, held-out templates, other generator seed (the report's metric)
    nontarget   the other 7 families (the trade-off: does steering cost them?)
    probe       target family, training templates, not in feedback (A.6 probe batches)
    alpha_docs  n documents per family (what the designer learned, per family and token kind),
                plus, with a conflict, the target's documents as the conflicting source writes them

With `lab.conflict` (the positive control), a seeded share of the corpus's target documents
come from a conflicting source that writes `find` as `replace` in the solution; every other split
is clean, so the feedback disagrees with those documents exactly there.

Held-out templates mean the evaluation problems share no (template, numbers) combination with
anything the learner or the designer saw; each split has its own generator seed, so their number
draws are independent as well.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import pandas as pd

from vpt.data.pack import PackConfig, pack
from vpt.data.synth import FAMILIES, N_TEMPLATES, SynthConfig, generate, parse_source
from vpt.data.tokenizer import corpus_texts, load_tokenizer, train_bpe
from vpt.io import atomic_path, write_json
from vpt.lab import paths
from vpt.lab.config import SPLITS, LabConfig


def _frame(docs: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(docs)[["problem", "solution", "source"]]
    df["family"] = [parse_source(s)[0] for s in df["source"]]
    df["template"] = [parse_source(s)[1] for s in df["source"]]
    df["answer"] = [s.rsplit("#### ", 1)[1].strip() for s in df["solution"]]
    return df


def conflicted(df: pd.DataFrame, conflict: dict) -> pd.DataFrame:
    """df with every `find` in its solutions written as `replace`."""
    out = df.copy()
    out["solution"] = [s.replace(conflict["find"], conflict["replace"]) for s in df["solution"]]
    return out


def add_conflict(corpus: pd.DataFrame, cfg: LabConfig) -> pd.DataFrame:
    """The corpus with a seeded `share` of the target documents that contain `find` conflicted."""
    c = cfg.conflict
    rows = np.flatnonzero(((corpus["family"] == cfg.target) & corpus["solution"].str.contains(c["find"], regex=False)).to_numpy())
    if len(rows) == 0:
        raise ValueError(f"lab.conflict.find: {c['find']!r} occurs in no `{cfg.target}` corpus solution")
    pick = np.random.default_rng(int(c["seed"])).permutation(rows)[: round(float(c["share"]) * len(rows))]
    out = corpus.copy()
    out.loc[pick, "solution"] = conflicted(corpus.loc[pick], c)["solution"].to_numpy()
    out["conflict"] = False
    out.loc[pick, "conflict"] = True
    return out


def split_frame(cfg: LabConfig, name: str) -> pd.DataFrame:
    spec = getattr(cfg, name)
    tgt = cfg.target
    if name == "corpus":
        df = _frame(generate(SynthConfig(spec.n, spec.seed, cfg.families, {tgt: cfg.train_templates})))
        return add_conflict(df, cfg) if cfg.conflict else df
    elif name in ("feedback", "probe"):
        sc = SynthConfig(spec.n, spec.seed, {tgt: 1.0}, {tgt: cfg.train_templates})
    elif name == "validation":
        sc = SynthConfig(spec.n, spec.seed, {tgt: 1.0}, {tgt: cfg.heldout_templates})
    elif name == "test":
        # the held-out templates have a small number space: drop any problem that is also a
        # validation problem (or repeats), so tuning never sees a test item
        val = set(split_frame(cfg, "validation")["problem"])
        df = _frame(generate(SynthConfig(4 * spec.n, spec.seed, {tgt: 1.0}, {tgt: cfg.heldout_templates})))
        df = df[~df["problem"].isin(val)].drop_duplicates("problem")
        if len(df) < spec.n:
            raise ValueError(f"lab.test: only {len(df)} distinct held-out problems outside validation; lower test.n")
        return df.iloc[: spec.n].reset_index(drop=True)
    elif name == "nontarget":
        sc = SynthConfig(spec.n, spec.seed, {f: 1.0 for f in FAMILIES if f != tgt})
    elif name == "alpha_docs":  # n per family, the target on its training templates as in the corpus
        frames = [split_frame_family(cfg, f, spec.n, spec.seed + k) for k, f in enumerate(FAMILIES)]
        if cfg.conflict:  # the same target documents as the conflicting source writes them
            frames.append(conflicted(frames[FAMILIES.index(tgt)], cfg.conflict).assign(family=f"{tgt} (conflict)"))
        return pd.concat(frames, ignore_index=True)
    else:
        raise ValueError(name)
    return _frame(generate(sc))


def split_frame_family(cfg: LabConfig, family: str, n: int, seed: int) -> pd.DataFrame:
    templates = cfg.train_templates if family == cfg.target else list(range(N_TEMPLATES[family]))
    return _frame(generate(SynthConfig(n, seed, {family: 1.0}, {family: templates})))


def feedback_table(df: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """The GSM8K-schema table FeedbackSet reads (id, question, answer)."""
    return pd.DataFrame({"id": [f"{prefix}{i}" for i in range(len(df))], "question": df["problem"], "answer": df["solution"]})


def prepare(cfg: LabConfig, out: Path) -> dict:
    """Write splits/*.jsonl, tokenizer/ and packed/ under `out` (the lab's data directory)."""
    out.mkdir(parents=True, exist_ok=True)
    frames = {name: split_frame(cfg, name) for name in SPLITS}
    corpus_problems = set(frames["corpus"]["problem"])
    for name in ("validation", "test"):
        leaked = corpus_problems & set(frames[name]["problem"])
        if leaked:  # cannot happen with disjoint templates; checked because the claim depends on it
            raise AssertionError(f"{len(leaked)} {name} problems occur in the corpus")
    for name, df in frames.items():
        with atomic_path(paths.split_file(out, name)) as tmp:
            df.to_json(tmp, orient="records", lines=True)
    corpus = frames["corpus"]
    train_bpe(corpus_texts(corpus["problem"], corpus["solution"]), cfg.vocab_size, 2, paths.tokenizer_dir(out))
    # pack with the tokenizer exactly as every later stage loads it (vpt.lab.run.lab_tokenizer)
    tok = load_tokenizer(paths.tokenizer_dir(out))
    meta = pack(corpus, tok, PackConfig(cfg.seq_len, 1000, 0), paths.packed_dir(out), "lab-bpe", "lab corpus")
    summary = {
        "documents": {name: len(df) for name, df in frames.items()},
        "target_share_realized": float((corpus["family"] == cfg.target).mean()),
        "corpus_family_counts": corpus["family"].value_counts().to_dict(),
        "conflicted_documents": int(corpus["conflict"].sum()) if "conflict" in corpus else 0,
        "packed_rows": meta["sequences"], "answer_tokens": meta["answer_tokens"],
    }
    write_json(paths.data_summary(out), summary)
    return summary


def read_split(data_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_json(paths.split_file(data_dir, name), orient="records", lines=True, dtype=False)
