"""A tiny world for the training-step benchmarks: the embedded config with data_dir/results_dir in a
tmp dir holding a trained tokenizer, the packed corpus, a saved base model and the raw GSM8K
feedback split, where vpt.paths looks for them (used by tests/test_bench_*.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml

from vpt.config import load_config
from vpt.data.pack import PackConfig, pack
from vpt.data.synth import SynthConfig, generate
from vpt.data.tokenizer import corpus_texts, load_tokenizer, train_bpe
from vpt.models.learner import build_from_architecture

from conftest import REPO, SHIPPED

ARCH = {"model_type": "qwen2", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "intermediate_size": 64, "max_position_embeddings": 128, "tie_word_embeddings": True}
SEQ_LEN = 48


def make_world(root: Path, override: dict[str, Any], feedback_rows: int = 0) -> list[str]:
    """Config paths (embedded config + `override` with the tmp data/results dirs); `feedback_rows` > 0
    also writes <data_dir>/raw/gsm8k/train.parquet (the vpt method's feedback split)."""
    override = {"data_dir": str(root / "data"), "results_dir": str(root / "results"), **override}
    (root / "override.yaml").write_text(yaml.safe_dump(override))
    paths = [str(REPO / "config" / "config.yaml"), str(root / "override.yaml")]
    cfg = load_config(paths)
    corpus = pd.DataFrame(generate(SynthConfig(n_docs=300, seed=0)))
    tok_dir = root / "data" / "tokenizer" / cfg["tokenizer"]["name"]
    train_bpe(corpus_texts(corpus["problem"], corpus["solution"]), 400, 2, tok_dir)
    tok = load_tokenizer(tok_dir)
    pack(corpus, tok, PackConfig(seq_len=SEQ_LEN, shuffle_buffer=50, seed=0), root / "data" / "packed" / "corpus" / "decontaminated", "t", "s")
    torch.manual_seed(0)
    model = build_from_architecture(ARCH, len(tok), tok.eos_token_id, tok.pad_token_id, "sdpa")
    model.save_pretrained(root / "results" / "models" / "base" / "final")
    if feedback_rows:
        gsm = pd.read_json(SHIPPED / "gsm8k" / "train.jsonl", lines=True).head(feedback_rows)
        gsm.insert(0, "id", [f"gsm8k/train/{i}" for i in range(len(gsm))])
        (root / "data" / "raw" / "gsm8k").mkdir(parents=True)
        gsm.to_parquet(root / "data" / "raw" / "gsm8k" / "train.parquet", index=False)
    return paths
