"""Seeded generator of grade-school math word problems in the NuminaMath-CoT schema.

This is the unlabeled pretraining corpus of the offline default, and the lab experiments steer
which skills it contains through the family weights. Each family is therefore one distinct
arithmetic skill, and its templates vary wording and sentence structure while keeping the skill.

Every solution is GSM8K style: one sentence per step, each with an explicit equation
`a op b = c` over non-negative integers, and a last line `#### N`. Equations are built with
`_eq`, which computes the value itself and refuses anything that leaves the integers, so a
template can only be wrong in its wording, never in its arithmetic.

Document i depends only on (seed, i) and the family weights: it has its own
`random.Random(f"{seed}:{i}")`, so a corpus of n documents is a prefix of any longer one and
output does not depend on PYTHONHASHSEED.

The package: vocabulary (the words templates are filled with), equations (the checked
arithmetic and solution format), counting and unit_rates (the eight families), registry
(which family is which generator), and here the public API.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vpt.data.synth.registry import _REGISTRY, FAMILIES, N_TEMPLATES
from vpt.data.synth.vocabulary import PEOPLE, Person
from vpt.data.weights import check_weights
from vpt.io import atomic_path

__all__ = [
    "FAMILIES", "N_TEMPLATES", "PEOPLE", "SOURCE_PREFIX", "Person", "SynthConfig",
    "generate", "parse_source", "write_jsonl",
]

SOURCE_PREFIX = "synth"


@dataclass
class SynthConfig:
    n_docs: int
    seed: int = 0
    families: dict[str, float] = field(default_factory=lambda: {f: 1.0 for f in FAMILIES})  # family -> sampling weight
    # family -> the template indices it may use (held-out-template splits); a family not listed
    # uses all of its templates. None keeps the original draw, so existing corpora are unchanged.
    templates: dict[str, list[int]] | None = None


def _check_families(families: dict[str, float]) -> tuple[list[str], list[float]]:
    """Validated (names, weights) in FAMILIES order, so key order in a config cannot matter."""
    return check_weights("synth family", families, FAMILIES)


def _check_templates(family: str, allowed: Sequence[int]) -> list[int]:
    n = N_TEMPLATES[family]
    if not allowed or any(isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < n for t in allowed):
        raise ValueError(f"synth templates for {family!r}: {list(allowed)!r}; need a non-empty list of indices in 0..{n - 1}")
    return sorted(set(allowed))


def generate(cfg: SynthConfig) -> list[dict[str, Any]]:
    """n_docs documents, each {"problem": str, "solution": str, "source": str, "messages": list[dict]}"""
    if isinstance(cfg.n_docs, bool) or not isinstance(cfg.n_docs, int) or cfg.n_docs < 0:
        raise ValueError(f"n_docs must be a non-negative integer, got {cfg.n_docs!r}")
    names, weights = _check_families(cfg.families)
    docs: list[dict[str, Any]] = []
    for i in range(cfg.n_docs):
        rng = random.Random(f"{cfg.seed}:{i}")
        family = rng.choices(names, weights=weights)[0]
        fn, n_templates = _REGISTRY[family]
        allowed = None if cfg.templates is None else cfg.templates.get(family)
        t = rng.randrange(n_templates) if allowed is None else rng.choice(_check_templates(family, allowed))
        problem, solution, _ = fn(rng, t)
        docs.append({
            "problem": problem,
            "solution": solution,
            "source": f"{SOURCE_PREFIX}:{family}:t{t}",
            "messages": [
                {"role": "user", "content": problem},
                {"role": "assistant", "content": solution},
            ],
        })
    return docs


def write_jsonl(docs: list[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """One JSON object per line, written atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            for doc in docs:
                f.write(json.dumps(doc, ensure_ascii=False) + "\n")


def parse_source(source: str) -> tuple[str, int]:
    """'synth:<family>:t<k>' -> (family, k)"""
    parts = source.split(":")
    if (
        len(parts) != 3
        or parts[0] != SOURCE_PREFIX
        or parts[1] not in _REGISTRY
        or not parts[2].startswith("t")
        or not parts[2][1:].isdigit()
        or not parts[2][1:].isascii()
    ):
        raise ValueError(
            f"not a synth source: {source!r} (expected 'synth:<family>:t<k>' with family one of "
            f"{', '.join(FAMILIES)})"
        )
    return parts[1], int(parts[2][1:])
