"""Schedules, precomputed as arrays indexed by the 0-based step: the learning rate (linear warmup,
then cosine to min_lr), and the DINO task's teacher momentum and teacher temperature."""

from __future__ import annotations

import numpy as np


def warmup_cosine(steps: int, lr: float, warmup: int, min_ratio: float) -> np.ndarray:
    s = np.arange(steps, dtype=np.float64)
    warm = lr * (s + 1) / max(warmup, 1)
    progress = np.clip((s - warmup) / max(steps - warmup, 1), 0.0, 1.0)
    cos = lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + np.cos(np.pi * progress)))
    return np.where(s < warmup, warm, cos)


def cosine_to(steps: int, start: float, end: float) -> np.ndarray:
    """Half a cosine from `start` (step 0) to `end` (the last step): the EMA teacher's momentum,
    from its base value toward 1, so the teacher changes less and less as training ends."""
    progress = np.arange(steps, dtype=np.float64) / max(steps - 1, 1)
    return end + (start - end) * 0.5 * (1 + np.cos(np.pi * progress))


def linear_warmup(steps: int, start: float, end: float, warmup: int) -> np.ndarray:
    """`start` at step 0, linearly to `end` at step `warmup`, then `end`: the teacher temperature
    (a cold, sharp teacher first, which keeps the early targets from collapsing to uniform)."""
    if warmup == 0:
        return np.full(steps, end, dtype=np.float64)
    progress = np.clip(np.arange(steps, dtype=np.float64) / warmup, 0.0, 1.0)
    return start + (end - start) * progress
