"""Collectives of the trainer, each a no-op (or the identity) on 1 process.

They act on the default process group that vpt.dist.env.init_world creates; without one (a
1-process World) there is nothing to exchange. Tensors travel on the backend's device: CPU for
gloo, the current GPU for nccl.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def _active() -> bool:
    return dist.is_initialized() and dist.get_world_size() > 1


def _comm_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def all_reduce_sum_(tensors: Sequence[torch.Tensor]) -> None:
    """Sum each tensor over ranks, in place (the replicated designer's gradients: each rank holds
    the gradient of its share of the loss, the sum is the gradient of the whole). One collective
    per dtype: the tensors are packed into one flat buffer, which matters for many small tensors."""
    if not _active() or not tensors:
        return
    by_dtype: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for t in tensors:
        by_dtype.setdefault((t.dtype, t.device), []).append(t)
    for (_, device), group in by_dtype.items():
        flat = torch.cat([t.detach().reshape(-1) for t in group]).to(_comm_device())  # (sum of numels,)
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat = flat.to(device)
        offset = 0
        with torch.no_grad():
            for t in group:
                t.copy_(flat[offset:offset + t.numel()].view_as(t))
                offset += t.numel()


def any_rank(flag: bool) -> bool:
    """True on every rank if it is True on any rank (the preemption flag: a signal reaches one
    rank, and every rank must stop at the same step, or the others hang in the next collective).
    Also a barrier: every rank waits for the others."""
    if not _active():
        return flag
    t = torch.tensor([int(flag)], dtype=torch.int32, device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def sum_scalar(x: float | torch.Tensor) -> float:
    """The sum over ranks of a number (a token count, a loss share), in float64."""
    value = x.detach().to(torch.float64).reshape(()) if isinstance(x, torch.Tensor) else torch.tensor(float(x), dtype=torch.float64)
    if not _active():
        return float(value.item())
    t = value.reshape(1).to(_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item())


def broadcast_object(obj: T) -> T:
    """Rank 0's `obj` on every rank (picklable; what the other ranks pass is ignored)."""
    if not _active():
        return obj
    box: list[Any] = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[no-any-return]
