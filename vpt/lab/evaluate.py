"""Downstream metrics of one saved learner on a split of the lab.

answer_loss: teacher-forced cross-entropy of the answer tokens (EOS included), averaged per
problem and then over problems, so every problem weighs the same whatever its length.
token_accuracy: teacher-forced, the share of answer tokens whose argmax prediction is the label,
averaged the same way. Unlike the loss it is not improved by making the model less confident
everywhere (any label smoothing lowers a held-out loss whose argmaxes are wrong), so it measures
the skill rather than the calibration.
accuracy: greedy decoding from "Question: ...\\n Answer:" and an exact match on the number after
"####" (the generator's final-answer line).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from vpt.data.pack import IGNORE, encode_document, format_prompt

FINAL = re.compile(r"####\s*(-?[\d,]+)")


def _padded(seqs: list[list[int]], pad: int, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    L = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), L), pad, dtype=torch.long)
    att = torch.zeros((len(seqs), L), dtype=torch.long)
    for r, s in enumerate(seqs):
        sl = slice(L - len(s), L) if left else slice(0, len(s))
        ids[r, sl] = torch.tensor(s)
        att[r, sl] = 1
    return ids, att


@torch.no_grad()
def answer_losses(model: nn.Module, tok: PreTrainedTokenizerBase, df: pd.DataFrame, batch_size: int = 32) -> np.ndarray:
    """(N,) mean answer-token CE of each problem."""
    return answer_scores(model, tok, df, batch_size)[0]


@torch.no_grad()
def answer_scores(model: nn.Module, tok: PreTrainedTokenizerBase, df: pd.DataFrame,
                  batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """((N,) mean answer-token CE, (N,) share of answer tokens predicted exactly by the argmax)."""
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    docs = [encode_document(tok, p, s) for p, s in zip(df["problem"], df["solution"])]
    losses, accs = [], []
    for i in range(0, len(docs), batch_size):
        chunk = docs[i : i + batch_size]
        ids, att = _padded([d[0] for d in chunk], pad, left=False)
        labels, _ = _padded([d[1] for d in chunk], IGNORE, left=False)
        logits = model(input_ids=ids, attention_mask=att).logits[:, :-1].float()  # (B, T-1, V)
        tgt = labels[:, 1:]
        mask = (tgt != IGNORE).float()
        ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), tgt.clamp(min=0), reduction="none")  # (B, T-1)
        hit = (logits.argmax(-1) == tgt).float()  # (B, T-1)
        losses.append(((ce * mask).sum(1) / mask.sum(1)).numpy())
        accs.append(((hit * mask).sum(1) / mask.sum(1)).numpy())
    return np.concatenate(losses), np.concatenate(accs)


@torch.no_grad()
def token_after_accuracy(model: nn.Module, tok: PreTrainedTokenizerBase, df: pd.DataFrame, prev: str, label: str,
                         other: str, batch_size: int = 32) -> dict[str, float]:
    """Over the answer positions whose label is the token `label` right after the token `prev`
    (the conflict's token, e.g. " 100" after " /"), teacher-forced: the argmax accuracy, their
    count, and the mean probability of `label` and of `other` (the conflicting " 10")."""
    prev_id, label_id, other_id = (single_token(tok, t) for t in (prev, label, other))
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    docs = [encode_document(tok, p, s) for p, s in zip(df["problem"], df["solution"])]
    hits = n = 0
    p_label = p_other = 0.0
    for i in range(0, len(docs), batch_size):
        chunk = docs[i : i + batch_size]
        ids, att = _padded([d[0] for d in chunk], pad, left=False)
        labels, _ = _padded([d[1] for d in chunk], IGNORE, left=False)
        logits = model(input_ids=ids, attention_mask=att).logits[:, :-1].float()  # (B, T-1, V)
        at = (labels[:, 1:] == label_id) & (ids[:, :-1] == prev_id)  # (B, T-1)
        probs = logits[at].softmax(-1)  # (n, V)
        hits += int((logits.argmax(-1) == label_id)[at].sum())
        n += int(at.sum())
        p_label += float(probs[:, label_id].sum())
        p_other += float(probs[:, other_id].sum())
    nan = float("nan")
    return {"accuracy": hits / n if n else nan, "count": n, "p_label": p_label / n if n else nan,
            "p_other": p_other / n if n else nan}


def single_token(tok: PreTrainedTokenizerBase, text: str) -> int:
    ids = tok(text, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ValueError(f"{text!r} is {len(ids)} tokens for this tokenizer; the conflict's tokens must be single tokens")
    return ids[0]


def extract_final(text: str) -> str | None:
    m = FINAL.search(text)
    return m.group(1).replace(",", "") if m else None


@torch.no_grad()
def greedy_correct(model: nn.Module, tok: PreTrainedTokenizerBase, df: pd.DataFrame, max_new_tokens: int,
                   batch_size: int = 64) -> tuple[np.ndarray, list[str]]:
    """((N,) 1.0 where the greedy answer's final number equals the gold one, completions)."""
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    prompts = [tok(format_prompt(p), add_special_tokens=False)["input_ids"] for p in df["problem"]]
    texts: list[str] = []
    for i in range(0, len(prompts), batch_size):
        ids, att = _padded(prompts[i : i + batch_size], pad, left=True)
        gen = model.generate(input_ids=ids, attention_mask=att, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=pad, eos_token_id=tok.eos_token_id)
        texts += tok.batch_decode(gen[:, ids.shape[1]:], skip_special_tokens=True)
    gold = [str(a) for a in df["answer"]]
    correct = np.array([float(extract_final(t) == g) for t, g in zip(texts, gold)])
    return correct, texts
