"""Pictures of the designer's masks: one PNG, one row per image, [crop | mask | masked view].

The cells are upscaled by an integer factor (nearest: every pixel stays a visible square) so a
32-64 px crop reads at >= MIN_CELL px, with SEPARATOR white pixels between cells and rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from vpt.io import atomic_path
from vpt.vision.images import encode_png
from vpt.vision.masks import soft_mask

MIN_CELL = 96  # px: the smallest side of a cell after upscaling
SEPARATOR = 2  # px of white between cells and rows


def scale_for(size: int) -> int:
    """The integer upscaling factor of an S-pixel crop (1 when it is already large)."""
    return max(1, math.ceil(MIN_CELL / size))


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(3, S, S) in [0, 1] -> (S, S, 3) uint8, rounded."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def _denormalise(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    m = torch.tensor(list(mean), dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(list(std), dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return x * s + m


def write_mask_pictures(path: Path, crops: torch.Tensor, masks: torch.Tensor, mean: Sequence[float],
                        std: Sequence[float]) -> None:
    """crops (n, 3, S, S) normalised, masks (n, 1, S, S) in [0, 1] -> one PNG at `path`, written
    atomically: row i is [crop i | mask i (grey) | soft_mask(crop i, mask i)], all de-normalised."""
    crops, masks = crops.detach().double().cpu(), masks.detach().double().cpu()
    n, _, size, _ = crops.shape
    views = [_denormalise(crops, mean, std), masks.expand(-1, 3, -1, -1),
             _denormalise(soft_mask(crops, masks), mean, std)]  # 3 x (n, 3, S, S) in [0, 1]
    k = scale_for(size)
    cell = k * size
    canvas = np.full((n * cell + (n - 1) * SEPARATOR, 3 * cell + 2 * SEPARATOR, 3), 255, dtype=np.uint8)
    for i in range(n):
        top = i * (cell + SEPARATOR)
        for j, view in enumerate(views):
            left = j * (cell + SEPARATOR)
            canvas[top:top + cell, left:left + cell] = _to_uint8(view[i]).repeat(k, axis=0).repeat(k, axis=1)
    data = encode_png(canvas)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
