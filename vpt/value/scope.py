"""The alignment scope: which learner parameters V = g_down^T g_pre is computed over."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from torch import nn

from vpt.errors import VptError

SCOPES = "'all', 'adapters', or 'last:<k>' (the last k transformer blocks)"


def transformer_blocks(model: nn.Module) -> nn.ModuleList:
    """The model's stack of trainable blocks: the longest ModuleList with trainable parameters (Qwen2
    `model.layers`, GPT-2 `transformer.h`, a DINO learner's student ViT `blocks`, not its frozen EMA teacher's)."""
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList) and any(p.requires_grad for p in m.parameters())]
    if not lists:
        raise VptError(f"{type(model).__name__} has no ModuleList of blocks; use scope 'all'")
    return max(lists, key=len)


@dataclass(frozen=True)
class ScopeSpec:
    """A parsed scope: kind 'all', 'adapters' or 'last' (then `last_blocks` = k)."""

    kind: str
    last_blocks: int | None = None


def parse_scope(scope: str) -> ScopeSpec:
    if scope in ("all", "adapters"):
        return ScopeSpec(scope)
    if scope.startswith("last:"):
        try:
            return ScopeSpec("last", int(scope.split(":", 1)[1]))
        except ValueError:
            raise VptError(f"scope {scope!r}: k must be an integer; choose one of {SCOPES}") from None
    raise VptError(f"unknown alignment scope {scope!r}; choose one of {SCOPES}")


def scope_parameters(model: nn.Module, scope: str) -> list[tuple[str, nn.Parameter]]:
    spec = parse_scope(scope)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if spec.kind == "all":
        return named
    if spec.kind == "adapters":
        out = [(n, p) for n, p in named if "lora_" in n]
        if not out:
            raise VptError("scope 'adapters' needs a LoRA learner (train.lora); the model has no lora_ parameters")
        return out
    k = spec.last_blocks
    assert k is not None
    blocks = transformer_blocks(model)
    if not 1 <= k <= len(blocks):
        raise VptError(f"scope {scope!r}: the model has {len(blocks)} blocks")
    ids = {id(p) for b in list(blocks)[-k:] for p in b.parameters()}
    return [(n, p) for n, p in named if id(p) in ids]


@contextlib.contextmanager
def graph_only_for(model: nn.Module, params: Sequence[nn.Parameter]) -> Iterator[None]:
    """Fast path for g_down = grad over the scope: the other parameters stop requiring grad for
    the forward, so autograd records (and keeps activations for) only what leads to the scope.
    The gradient over the scope is unchanged; the flags are restored afterwards."""
    keep = {id(p) for p in params}
    off = [p for p in model.parameters() if p.requires_grad and id(p) not in keep]
    for p in off:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in off:
            p.requires_grad_(True)
