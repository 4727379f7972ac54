"""Fast path: learner forwards of the value step start at the alignment scope.

With scope `last:k`, the estimators only move the last k blocks (theta_S + e u), and the meta
step runs at the same theta and on the same batch as the learner step that precedes it. So the
output of the block just below the scope is the same in every learner forward of the meta step:
it is kept (detached) from the learner step's own forward, and later forwards replay it instead
of recomputing the blocks below. Embeddings, the final norm and the head still run as usual.

Replay swaps the lower blocks for modules that return the kept output whatever their input, so
it works for any model whose blocks sit in one ModuleList and pass their output to the next
block (Qwen2, Llama, GPT-2, ...); `tests/test_value.py` checks it is exact against the plain path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from vpt.value.scope import parse_scope, transformer_blocks


def _detach(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, tuple):
        return tuple(_detach(v) for v in x)
    return x


def _cast(x: Any, dtype: torch.dtype) -> Any:
    if isinstance(x, torch.Tensor):
        return x.to(dtype) if x.is_floating_point() else x
    if isinstance(x, tuple):
        return tuple(_cast(v, dtype) for v in x)
    return x


class _Replay(nn.Module):
    def __init__(self, output: Any) -> None:
        super().__init__()
        self.output = output

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.output


def scope_boundary(model: nn.Module, scope: str, objective_type: type) -> ScopeBoundary | None:
    """A boundary when it is valid: the scope is the last k blocks and the objective declares that
    the designer leaves the learner's input untouched (else the lower blocks' output would change
    between the meta step's forwards, and a replay would be silently wrong)."""
    spec = parse_scope(scope)
    if spec.kind != "last" or not getattr(objective_type, "input_untouched", False):
        return None
    return ScopeBoundary(model, scope)


class ScopeBoundary:
    """Keeps the input of the first block of a `last:<k>` scope; does nothing when k covers every block."""

    def __init__(self, model: nn.Module, scope: str) -> None:
        spec = parse_scope(scope)
        if spec.last_blocks is None:
            raise ValueError(f"a scope boundary needs a 'last:<k>' scope, not {scope!r}")
        self.blocks = transformer_blocks(model)
        self.index = len(self.blocks) - spec.last_blocks  # blocks [0, index) lie below the scope
        self.kept: list[tuple[torch.Tensor, Any]] = []  # (ids, kept output): one per captured micro-batch

    @property
    def usable(self) -> bool:
        return self.index > 0

    @contextlib.contextmanager
    def capture(self, ids: torch.Tensor) -> Iterator[None]:
        """Keep the output of block index-1 during one forward on `ids` (once per micro-batch of a step)."""
        if not self.usable:
            yield
            return
        out: list[Any] = []

        def hook(_m: nn.Module, _args: Any, output: Any) -> None:
            out[:] = [_detach(output)]  # the last call wins (a recomputation gives the same output)

        handle = self.blocks[self.index - 1].register_forward_hook(hook)
        try:
            yield
        finally:
            handle.remove()
        if out:
            self.kept.append((ids, out[0]))

    def _output(self, ids: torch.Tensor) -> Any:
        return next((o for i, o in self.kept if i is ids), None)

    def holds(self, ids: torch.Tensor) -> bool:
        return self._output(ids) is not None

    def clear(self) -> None:
        self.kept = []

    @contextlib.contextmanager
    def replay(self, ids: torch.Tensor) -> Iterator[None]:
        """Forwards on `ids` inside skip the lower blocks and start from the output kept for them."""
        output = self._output(ids)
        assert output is not None, "ScopeBoundary.replay of a batch it did not capture"
        lower = [self.blocks[i] for i in range(self.index)]
        # in the dtype of the scope's weights: a bf16-weight learner is upcast for the meta step
        dtype = next(self.blocks[self.index].parameters()).dtype
        stand_in = _Replay(_cast(output, dtype))
        for i in range(self.index):
            self.blocks[i] = stand_in
        try:
            yield
        finally:
            for i, block in enumerate(lower):
                self.blocks[i] = block
