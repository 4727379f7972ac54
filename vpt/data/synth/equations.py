"""The arithmetic of the solutions: `Eq` and `_eq`, which render an equation and compute its value
(refusing anything that leaves the non-negative integers), `_solution`, which formats the steps
and the final `#### N` line, and `_percent_of`, which picks percentages that come out whole.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

_PRECEDENCE = {"+": 0, "-": 0, "*": 1, "/": 1}


@dataclass(frozen=True)
class Eq:
    """A rendered equation and its value; formats as the equation so templates can embed it."""

    text: str
    value: int

    def __str__(self) -> str:
        return self.text


def _eq(first: int, *rest: int | str) -> Eq:
    """`_eq(3, "*", 4)` -> Eq("3 * 4 = 12", 12), evaluated left to right.

    A readers' evaluation uses the usual precedence, so an operator may not bind tighter than
    the one before it (`a + b * c` is refused); every partial result must stay a non-negative
    integer so the text never shows a fraction, a negative number or a remainder.
    """
    if len(rest) % 2:
        raise ValueError(f"unbalanced equation parts: {(first, *rest)!r}")
    value = first
    text = str(first)
    prev: str | None = None
    for op, x in zip(rest[0::2], rest[1::2]):
        if not isinstance(op, str) or op not in _PRECEDENCE or not isinstance(x, int):
            raise ValueError(f"bad equation parts: {(first, *rest)!r}")
        if prev is not None and _PRECEDENCE[op] > _PRECEDENCE[prev]:
            raise ValueError(f"left-to-right order would disagree with precedence: {(first, *rest)!r}")
        if op == "+":
            value += x
        elif op == "-":
            value -= x
        elif op == "*":
            value *= x
        else:
            if x == 0 or value % x:
                raise ValueError(f"inexact division in {(first, *rest)!r}")
            value //= x
        if value < 0:
            raise ValueError(f"negative intermediate in {(first, *rest)!r}")
        text += f" {op} {x}"
        prev = op
    return Eq(f"{text} = {value}", value)


# What every family returns: (problem, solution, answer).
Problem = tuple[str, str, int]


def _solution(steps: Sequence[str], answer: Eq) -> tuple[str, int]:
    return "\n".join([*steps, f"#### {answer.value}"]), answer.value


def _percent_of(rng: random.Random, percents: Sequence[int], lo: int, hi: int) -> tuple[int, int]:
    """A percent and a base in [lo, hi] such that percent% of base is a whole number."""
    pct = rng.choice(percents)
    step = 100 // math.gcd(pct, 100)
    return pct, step * rng.randint(-(-lo // step), hi // step)
