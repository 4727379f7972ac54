"""Batches for the learner (packed unlabeled rows) and for the value (feedback examples)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from transformers import PreTrainedTokenizerBase

from vpt.data.pack import IGNORE, encode_document, open_packed
from vpt.eval.answers import CALCULATOR



class PackedBatches:
    """Rows of a packed directory in a seeded permutation per epoch; resumable by (epoch, cursor)."""

    def __init__(self, directory: str | Path, batch_size: int, seed: int) -> None:
        self.ids, self.labels, self.meta = open_packed(directory)
        if len(self.ids) < batch_size:
            raise ValueError(f"{directory}: {len(self.ids)} packed rows, fewer than batch_size {batch_size}")
        self.batch_size, self.seed = batch_size, seed
        self.epoch, self.cursor = 0, 0
        self._perm: tuple[int, np.ndarray] | None = None

    def _permutation(self) -> np.ndarray:
        if self._perm is None or self._perm[0] != self.epoch:
            self._perm = (self.epoch, np.random.default_rng([self.seed, self.epoch]).permutation(len(self.ids)))
        return self._perm[1]

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cursor + self.batch_size > len(self.ids):
            self.epoch, self.cursor = self.epoch + 1, 0
        idx = np.sort(self._permutation()[self.cursor : self.cursor + self.batch_size])
        self.cursor += self.batch_size
        return torch.from_numpy(self.ids[idx].astype(np.int64)), torch.from_numpy(self.labels[idx].astype(np.int64))

    @property
    def tokens_per_batch(self) -> int:
        return self.batch_size * self.ids.shape[1]

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "cursor": self.cursor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])


def select_rows(table: pd.DataFrame, n: int, seed: int, exclude: set[str] | frozenset[str] = frozenset()) -> np.ndarray:
    """A seeded choice of n rows (sorted positions), skipping rows whose id is in `exclude`."""
    pool = np.array([i for i, rid in enumerate(table["id"].astype(str)) if rid not in exclude])
    if n > len(pool):
        raise ValueError(f"feedback n={n} exceeds the {len(pool)} available examples")
    return np.sort(np.random.default_rng(seed).choice(pool, size=n, replace=False))


class FeedbackSet:
    """The labeled feedback subset (GSM8K train by default), formatted like the corpus.

    Only used to compute g_down; the learner is never trained on it. GSM8K's calculator
    annotations (<<3*4=12>>) are removed so that the text reads like the unlabeled corpus.
    An example longer than max_len loses the start of its question, never its answer: the
    answer tokens are the only ones the feedback loss reads.
    """

    def __init__(
        self, table: pd.DataFrame, tok: PreTrainedTokenizerBase, n: int, seed: int, max_len: int,
        exclude: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        rows = select_rows(table, n, seed, exclude)
        self.row_ids = [str(table["id"].iloc[i]) for i in rows]
        self.examples: list[tuple[np.ndarray, np.ndarray]] = []  # arrays, not lists of Python ints (8x smaller)
        for i in rows:
            q, a = str(table["question"].iloc[i]), CALCULATOR.sub("", str(table["answer"].iloc[i]))
            ids, labels = encode_document(tok, q, a)
            self.examples.append((np.asarray(ids[-max_len:], dtype=np.int64), np.asarray(labels[-max_len:], dtype=np.int64)))
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def __len__(self) -> int:
        return len(self.examples)

    def batch(self, index: list[int] | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded (ids, labels); causal attention makes right padding invisible to real tokens."""
        chosen = [self.examples[int(i)] for i in index]
        L = max(len(ids) for ids, _ in chosen)
        ids = torch.full((len(chosen), L), self.pad_id, dtype=torch.long)
        labels = torch.full((len(chosen), L), IGNORE, dtype=torch.long)
        for r, (x, y) in enumerate(chosen):
            ids[r, : len(x)] = torch.from_numpy(x)
            labels[r, : len(y)] = torch.from_numpy(y)
        return ids, labels

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return self.batch(torch.randperm(len(self), generator=generator)[:batch_size].numpy())
