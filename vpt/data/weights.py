"""Validated sampling weights (the synth corpus's problem families, the renderer's scene families
and object classes): unknown names list the valid ones, weights must be positive and finite."""

from __future__ import annotations

import math
from collections.abc import Mapping


def check_weights(what: str, weights: Mapping[str, float], valid: tuple[str, ...]) -> tuple[list[str], list[float]]:
    """(names, weights) in `valid` order, so key order in a config cannot matter."""
    choices = ", ".join(valid)
    if not weights:
        raise ValueError(f"{what} weights must name at least one of: {choices}")
    for name, w in weights.items():
        if name not in valid:
            raise ValueError(f"unknown {what} {name!r}; choose one of: {choices}")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not (math.isfinite(w) and w > 0):
            raise ValueError(f"{what} {name!r} has weight {w!r}; weights must be positive finite numbers (choices: {choices})")
    names = [n for n in valid if n in weights]
    return names, [float(weights[n]) for n in names]
