"""The tokenizer every stage after download uses.

The paper's learner brings its own (`AutoTokenizer.from_pretrained(hub id, revision)`); the
embedded default trains a small byte-level BPE on its corpus and saves it in Hugging Face
format, so that exactly the same `from_pretrained` call loads it from a local directory.
"""

from __future__ import annotations

import json

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from vpt.errors import VptError
from vpt.io import atomic_dir

EOS = "<|endoftext|>"
PAD = "<|pad|>"


def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int, out_dir: str | Path) -> PreTrainedTokenizerFast:
    """Byte-level BPE (GPT-2 style: any text is encodable, no unknown token)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD, bos_token=None, unk_token=None)
    with atomic_dir(out_dir, last=("tokenizer_config.json",)) as tmp:
        hf.save_pretrained(tmp)
    return hf


GENERIC_CLASSES = ("TokenizersBackend", "PreTrainedTokenizerFast")


def load_tokenizer(path: str | Path, revision: str | None = None) -> PreTrainedTokenizerBase:
    """The one loading path: a hub id with a pinned revision, or a local directory.

    A tokenizer we trained (generic class, saved next to a model) is loaded as exactly its
    tokenizer.json: AutoTokenizer would follow the model's config.json (model_type qwen2) and
    rebuild it as a Qwen2 tokenizer that splits digits, tokenizing differently from training."""
    config = Path(path) / "tokenizer_config.json"
    generic = config.is_file() and json.loads(config.read_text()).get("tokenizer_class") in GENERIC_CLASSES
    try:
        if generic:
            tok = PreTrainedTokenizerFast.from_pretrained(str(path))
        else:
            tok = AutoTokenizer.from_pretrained(str(path), revision=revision)
    except (OSError, ValueError) as e:
        raise VptError(f"cannot load tokenizer from {path!r} (revision {revision}): {e}") from e
    if tok.eos_token_id is None:
        raise VptError(f"tokenizer {path!r} has no EOS token; packing needs one to end each document")
    return tok


def tokenizer_source(cfg: dict[str, Any], local_dir: Path) -> tuple[str, str | None]:
    """(path, revision) to load the configured tokenizer from."""
    spec = cfg["tokenizer"]
    if "pretrained" in spec:
        return spec["pretrained"]["path"], spec["pretrained"].get("revision")
    return str(local_dir), None


def corpus_texts(problems: Iterable[str], solutions: Iterable[str]) -> Iterator[str]:
    """Training text for the BPE: the same formatted documents the learner will see."""
    from vpt.data.pack import format_prompt, format_answer

    for p, s in zip(problems, solutions):
        yield format_prompt(p) + format_answer(s)


def tokenizer_stage(cfg: dict[str, Any], out: str | Path | None = None) -> tuple[PreTrainedTokenizerBase, Path]:
    """The `tokenizer` section of a config: fetch the pretrained tokenizer or train the BPE on
    its corpus split, saved in Hugging Face format to `out` (default: the workflow's path)."""
    from vpt.io import read_parquet
    from vpt.paths import raw_split, tokenizer_dir

    spec = cfg["tokenizer"]
    path = Path(out) if out else tokenizer_dir(cfg)
    if "pretrained" in spec:
        tok = load_tokenizer(spec["pretrained"]["path"], spec["pretrained"].get("revision"))
        with atomic_dir(path, last=("tokenizer_config.json",)) as tmp:
            tok.save_pretrained(tmp)
    else:
        t = spec["train"]
        df = read_parquet(raw_split(cfg, t["dataset"], t["split"]))
        tok = train_bpe(corpus_texts(df["problem"], df["solution"]), t["vocab_size"], t["min_frequency"], path)
    return tok, path
