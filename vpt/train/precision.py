"""The learner's precision: what its weights, gradients and AdamW states are held in, and what
its forward computes in (train.dtype, train.weights).

    weights float32 (default)  fp32 weights, gradients and AdamW moments: 4 + 4 + 8 = 16 B/param.
                               Compute: bf16 under autocast on GPU (dtype auto / bfloat16), fp32 on CPU.
    weights bfloat16           bf16 weights and gradients, and fp32 master weights with the AdamW
                               moments in the optimizer: 2 + 2 + 4 + 8 = 16 B/param, plus the fp32
                               gradients at the optimizer step (4 B/param). Compute: bf16 without
                               autocast's per-forward weight casts.

The value meta step always runs in full precision (fp32, TF32 off): its finite difference moves
the scope by fd_eps in total, a change per weight far below bf16's resolution, so a bf16 forward
would difference rounding noise (`vpt bench precision` measures the agreement). With bf16 weights,
the learner is upcast from its fp32 masters for the meta step and rounded back after it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

WEIGHTS = ("float32", "bfloat16")


@dataclass(frozen=True)
class Precision:
    param_dtype: torch.dtype  # the learner's weights
    autocast_dtype: torch.dtype | None  # the forward's autocast, None: none
    master_weights: bool  # fp32 masters in the optimizer (bf16 weights)


def precision_of(dtype: str, weights: str, device: torch.device) -> Precision:
    """train.dtype x train.weights on `device` (the combinations are checked by TrainConfig)."""
    if weights == "bfloat16":
        return Precision(torch.bfloat16, None, True)
    if dtype == "auto":
        return Precision(torch.float32, torch.bfloat16 if device.type == "cuda" else None, False)
    if dtype == "bfloat16":
        return Precision(torch.float32, torch.bfloat16, False)
    return Precision({"float32": torch.float32, "float64": torch.float64}[dtype], None, False)


def cast_parameters(model: nn.Module, dtype: torch.dtype) -> None:
    """The parameters (the same Parameter objects, so scope and optimizer lists stay valid) in
    `dtype`; buffers as they are (rotary frequencies stay fp32, as from_pretrained keeps them)."""
    for p in model.parameters():
        p.data = p.data.to(dtype)


class MasterWeights:
    """fp32 copies of bf16 learner weights: the optimizer steps these, and the learner gets them rounded."""

    def __init__(self, params: Sequence[nn.Parameter]) -> None:
        self.model_params = list(params)
        self.params = [nn.Parameter(p.detach().float().clone()) for p in self.model_params]

    def pull_grads(self) -> None:
        """The learner's (accumulated) bf16 gradients, as fp32 gradients of the masters."""
        for m, p in zip(self.params, self.model_params):
            m.grad = None if p.grad is None else p.grad.float()
            p.grad = None

    @torch.no_grad()
    def push(self) -> None:
        """The learner's weights := the masters, rounded to bf16."""
        for m, p in zip(self.params, self.model_params):
            p.copy_(m)

    @contextlib.contextmanager
    def full_precision(self, model: nn.Module) -> Iterator[None]:
        """The learner in fp32 with the exact master values inside (the meta step), bf16 again after."""
        dtype = self.model_params[0].dtype
        cast_parameters(model, torch.float32)
        with torch.no_grad():
            for m, p in zip(self.params, self.model_params):
                p.copy_(m)
        try:
            yield
        finally:
            cast_parameters(model, dtype)  # = round(master): the value every step leaves the learner at

    def state_dict(self) -> dict[str, Any]:
        return {"master": [m.detach() for m in self.params]}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        for m, saved in zip(self.params, state["master"], strict=True):
            m.copy_(saved)
