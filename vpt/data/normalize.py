"""Normalize each source's raw columns into the schema the rest of the pipeline reads.

One function per `schema:` value in the config. Each takes the raw table (pandas) and the
dataset's spec (for keys such as `num_classes`) and returns the normalized one; a missing column
raises MissingColumns naming what is there. The vision schemas live in vpt.data.normalize_vision.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from vpt.data.columns import MissingColumns, require  # noqa: F401  (MissingColumns: part of this module's interface)
from vpt.data.normalize_vision import NORMALIZERS_VISION

MMLU_LETTERS = "ABCD"



def gsm8k_final_answer(answer: str) -> str:
    """The number after the last '####', commas removed (GSM8K's gold-answer convention)."""
    if "####" not in answer:
        raise ValueError(f"GSM8K answer has no '####' line: {answer[-80:]!r}")
    return answer.rsplit("####", 1)[1].strip().replace(",", "")


def numina(df: pd.DataFrame, spec: Mapping[str, Any] | None = None) -> pd.DataFrame:
    require(df, "numina", "problem", "solution")
    out = pd.DataFrame({"problem": df["problem"].astype(str), "solution": df["solution"].astype(str)})
    out["source"] = df["source"].astype(str) if "source" in df else ""
    if "messages" in df:
        out["messages"] = df["messages"]
    else:
        out["messages"] = [
            [{"role": "user", "content": p}, {"role": "assistant", "content": s}]
            for p, s in zip(out["problem"], out["solution"])
        ]
    return out


def gsm8k(df: pd.DataFrame, spec: Mapping[str, Any] | None = None) -> pd.DataFrame:
    require(df, "gsm8k", "question", "answer")
    return pd.DataFrame(
        {
            "question": df["question"].astype(str),
            "answer": df["answer"].astype(str),
            "final_answer": [gsm8k_final_answer(a) for a in df["answer"].astype(str)],
        }
    )


def math(df: pd.DataFrame, spec: Mapping[str, Any] | None = None) -> pd.DataFrame:
    require(df, "math", "problem", "solution")
    out = pd.DataFrame({"problem": df["problem"].astype(str), "solution": df["solution"].astype(str)})
    for col in ("level", "type", "subject"):
        if col in df:
            out[col] = df[col].astype(str)
    return out


def mmlu(df: pd.DataFrame, spec: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Hub layout (question, subject, choices, answer index) or the original CSV layout
    (question, A, B, C, D, answer letter; subject from the file name)."""
    require(df, "mmlu", "question", "answer", "subject")
    if "choices" in df:
        choices = [list(map(str, c)) for c in df["choices"]]
        answer = df["answer"].astype(int).tolist()
    else:
        require(df, "mmlu", *MMLU_LETTERS)
        choices = df[list(MMLU_LETTERS)].astype(str).values.tolist()
        bad = sorted(set(df["answer"]) - set(MMLU_LETTERS))
        if bad:
            raise ValueError(f"MMLU answer letters must be one of A-D, found {bad[:5]}")
        answer = [MMLU_LETTERS.index(a) for a in df["answer"]]
    if any(len(c) != 4 for c in choices) or any(not 0 <= a < 4 for a in answer):
        raise ValueError("MMLU rows must have 4 choices and an answer index in 0..3")
    return pd.DataFrame(
        {"subject": df["subject"].astype(str), "question": df["question"].astype(str), "choices": choices, "answer": answer}
    )


def _user_text(messages: object) -> str:
    for m in messages or []:  # type: ignore[union-attr]
        if m.get("role") == "user":
            return str(m.get("content", ""))
    return ""


def omega(df: pd.DataFrame, spec: Mapping[str, Any] | None = None) -> pd.DataFrame:
    require(df, "omega", "messages", "ground_truth")
    out = pd.DataFrame({"messages": df["messages"], "ground_truth": df["ground_truth"].astype(str)})
    out["problem"] = [_user_text(m) for m in df["messages"]]
    if "config" in df:
        out["config"] = df["config"].astype(str)
    return out


Normalizer = Callable[[pd.DataFrame, Mapping[str, Any] | None], pd.DataFrame]

NORMALIZERS: dict[str, Normalizer] = {
    "numina": numina,
    "gsm8k": gsm8k,
    "math": math,
    "mmlu": mmlu,
    "omega": omega,
}
NORMALIZERS.update(NORMALIZERS_VISION)
