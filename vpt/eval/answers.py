"""Answer extraction, normalization and scoring: GSM8K final numbers, OMEGA boxed answers,
and the unbiased Pass@k estimator."""

from __future__ import annotations

import math
import re
from fractions import Fraction

# ----------------------------------------------------------------------------- GSM8K

NUMBER = re.compile(r"-?[$]?\d[\d,]*(?:\.\d+)?")

# GSM8K's calculator annotations, <<48/2=24>>: stripped from demonstrations and feedback answers
CALCULATOR = re.compile(r"<<[^>]*>>")


def normalize_number(text: str) -> str:
    """'#### $1,234.50.' -> '1234.5'; '18.0' -> '18'. Non-numbers are returned stripped."""
    s = text.strip()
    s = s.removeprefix("####").strip()
    s = s.replace(",", "").replace("$", "").rstrip(".").strip()
    try:
        value = Fraction(s)
    except (ValueError, ZeroDivisionError):
        return s
    if value.denominator == 1:
        return str(value.numerator)
    return format(float(value), "g") if "." in s else s


def extract_gsm8k(completion: str) -> str | None:
    """The final numeric answer: the first number after the last '####' if there is one,
    otherwise the last number in the text."""
    if "####" in completion:
        after = completion.rsplit("####", 1)[1]
        found = NUMBER.search(after)
        if found:
            return normalize_number(found.group(0))
    numbers = NUMBER.findall(completion)
    return normalize_number(numbers[-1]) if numbers else None


def gsm8k_correct(completion: str, gold: str) -> bool:
    pred = extract_gsm8k(completion)
    return pred is not None and pred == normalize_number(gold)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimator 1 - C(n-c, k) / C(n, k) of Pass@k from n samples with c correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


# ----------------------------------------------------------------------------- OMEGA


def first_boxed(text: str) -> str | None:
    """Content of the first \\boxed{...}, braces matched (\\boxed{\\frac{1}{2}} -> \\frac{1}{2})."""
    start = text.find("\\boxed")
    while start != -1:
        i = start + len("\\boxed")
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "{":
            depth = 0
            for j in range(i, len(text)):
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        return text[i + 1 : j]
            return None  # unbalanced
        start = text.find("\\boxed", i)
    return None


def extract_omega(completion: str) -> str:
    """Paper A.4: the first \\boxed{} if present, else the text after the last 'Answer:', else
    the last non-empty line."""
    boxed = first_boxed(completion)
    if boxed is not None:
        return boxed
    if "Answer:" in completion:
        return completion.rsplit("Answer:", 1)[1].strip()
    lines = [line.strip() for line in completion.splitlines() if line.strip()]
    return lines[-1] if lines else ""


_WRAPPERS = [
    (re.compile(r"\\(?:text|mathrm|textbf|mathbf|operatorname)\{([^{}]*)\}"), r"\1"),
    (re.compile(r"\\(?:left|right|displaystyle|,|;|!|quad|qquad)"), ""),
    (re.compile(r"\\[dt]frac"), r"\\frac"),
    (re.compile(r"^\$+|\$+$"), ""),
    (re.compile(r"^\\\(|\\\)$|^\\\[|\\\]$"), ""),
]


def normalize_omega(answer: str) -> str:
    """Strip common LaTeX wrappers and all whitespace."""
    s = answer.strip()
    for _ in range(2):  # wrappers can nest ($\\text{...}$)
        for pattern, repl in _WRAPPERS:
            s = pattern.sub(repl, s.strip())
    return re.sub(r"\s+", "", s).rstrip(".")


_FRAC = re.compile(r"^(-?)\\frac\{(-?[\d.]+)\}\{(-?[\d.]+)\}$")


def parse_number(s: str) -> float | None:
    """A decimal, an integer, a/b, or \\frac{a}{b} (after normalize_omega); None otherwise."""
    s = s.replace(",", "")
    m = _FRAC.match(s)
    try:
        if m:
            sign = -1.0 if m.group(1) else 1.0
            return sign * float(m.group(2)) / float(m.group(3))
        if re.fullmatch(r"-?[\d.]+/-?[\d.]+", s):
            a, b = s.split("/")
            return float(a) / float(b)
        if re.fullmatch(r"-?\d+(?:\.\d*)?|-?\.\d+", s):
            return float(s)
    except (ValueError, ZeroDivisionError):
        return None
    return None


def omega_correct(prediction: str, gold: str, tol: float = 1e-3) -> bool:
    """Exact match after normalization, or numeric match within tol * max(1, |gold|)."""
    p, g = normalize_omega(prediction), normalize_omega(gold)
    if p == g:
        return True
    pv, gv = parse_number(p), parse_number(g)
    return pv is not None and gv is not None and abs(pv - gv) <= tol * max(1.0, abs(gv))
