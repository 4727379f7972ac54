"""Vectors of the alignment scope, kept as lists of per-parameter tensors (never concatenated,
so nothing scope-sized is copied)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.distributed.tensor import DTensor, distribute_tensor

Vec = Sequence[torch.Tensor]


def dot(a: Vec, b: Vec) -> torch.Tensor:
    out = sum((x * y).sum() for x, y in zip(a, b, strict=True))
    # sharded vectors (FSDP's DTensors): the sum over every rank's shard, as a plain tensor
    return out.full_tensor() if isinstance(out, DTensor) else out  # type: ignore[union-attr,return-value]


def norm(a: Vec) -> torch.Tensor:
    return dot(a, a).sqrt()


def random_like(a: Vec, target_norm: float | torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
    """A Gaussian direction with the given norm (the `random_feedback` ablation)."""
    out = [_like(torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu"), x) for x in a]
    scale = torch.as_tensor(target_norm, dtype=out[0].dtype, device=out[0].device) / norm(out).clamp(min=1e-30)
    return [x * scale for x in out]


def _like(full: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`full` (drawn identically on every rank) placed like x: x's shard of it when x is a DTensor."""
    if isinstance(x, DTensor):
        return distribute_tensor(full.to(x.device), x.device_mesh, x.placements)
    return full.to(x.device)
