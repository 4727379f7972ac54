"""What the designer learned: alpha per problem family and per kind of target token."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from vpt.data.pack import encode_document
from vpt.models.designer import TaskDesigner
from vpt.language.objective import Shifted, logits_of

KINDS = ("number", "operator", "word", "other")
_OPERATOR = re.compile(r"^[+\-*/=#$%]+$")
_WORD = re.compile(r"^[A-Za-z']+$")


def token_kind(text: str) -> str:
    """The kind of one decoded token: digits -> number, arithmetic / answer marks -> operator,
    letters -> word; anything else (punctuation, newlines, EOS, mixed pieces) -> other."""
    s = text.strip()
    if s.isdigit() or re.fullmatch(r"\d+[.,]?\d*", s or "x"):
        return "number"
    if s and _OPERATOR.match(s):
        return "operator"
    if s and _WORD.match(s):
        return "word"
    return "other"


@torch.no_grad()
def alpha_table(model: nn.Module, designer: TaskDesigner, tok: PreTrainedTokenizerBase, docs: pd.DataFrame) -> pd.DataFrame:
    """One row per labeled (answer) target token of each document: family, kind, alpha."""
    K = designer.cfg.K
    kind_of: dict[int, str] = {}
    rows: list[dict[str, Any]] = []
    for problem, solution, family in zip(docs["problem"], docs["solution"], docs["family"]):
        ids, labels = encode_document(tok, problem, solution)
        x, y = torch.tensor([ids]), torch.tensor([labels])
        logits = logits_of(model, x)  # (1, T-1, V)
        b = Shifted.of(x, y, logits.dtype)
        cand = logits.topk(K, dim=-1).indices  # (1, T-1, K)
        alpha = designer(b.context, b.target, cand).alpha[0]  # (T-1,)
        for t in torch.nonzero(b.mask[0]).flatten().tolist():
            tid, pid = int(b.target[0, t]), int(b.context[0, t])
            for i in (tid, pid):
                if i not in kind_of:
                    kind_of[i] = "other" if i == tok.eos_token_id else token_kind(tok.decode([i]))
            rows.append({"family": family, "kind": kind_of[tid], "alpha": float(alpha[t]), "label_id": tid, "prev_id": pid})
    return pd.DataFrame(rows)


def summarize(table: pd.DataFrame) -> dict[str, Any]:
    def agg(col: str) -> dict[str, dict[str, float]]:
        g = table.groupby(col)["alpha"]
        return {k: {"mean": float(v.mean()), "std": float(v.std(ddof=0)), "n": int(len(v))} for k, v in g}

    out: dict[str, Any] = {"by_family": agg("family"), "by_kind": agg("kind")}
    out["quantiles"] = {str(q): float(np.quantile(table["alpha"], q)) for q in (0.05, 0.25, 0.5, 0.75, 0.95)}
    by = defaultdict(dict)
    for (f, k), v in table.groupby(["family", "kind"])["alpha"]:
        by[f][k] = float(v.mean())
    out["family_by_kind"] = dict(by)
    return out
