"""FSDP2 sharding of the learner, and the gradient of a loss under it.

Layout: one FSDP group per transformer block (vpt.value.scope.transformer_blocks), and the root
group for the rest (embeddings, final norm, head). Tied embeddings (Qwen's and the embedded
default's tie_word_embeddings) stay one parameter: the input embedding and the head both sit in
the root group, so FSDP shards it once and both uses see the same all-gathered tensor.

After sharding every parameter is a DTensor sharded on dim 0, and so is its .grad. Gradients are
SUMMED over ranks (FSDP's default would average): each rank's loss must be its share of the
global loss, e.g. sum of its token losses / the global token count (vpt.dist.sum_scalar). Then
the summed gradient is exactly the 1-process gradient of the whole batch, whatever the split of
tokens between ranks, and clip_grad_norm_ and AdamW see the same numbers as on 1 process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

from vpt.dist.env import World
from vpt.value.scope import transformer_blocks


def shard_learner(model: nn.Module, world: World, mixed_precision: torch.dtype | None = None) -> nn.Module:
    """Shard `model` in place over all ranks of `world` (and return it); a 1-process World leaves
    it as it is. `mixed_precision` (e.g. torch.bfloat16 on GPU): forward/backward compute in that
    dtype on all-gathered parameters, gradients reduced in float32, the sharded (master) weights
    and the optimizer state keep the model's own dtype."""
    if not world.distributed:
        return model
    mesh = init_device_mesh(world.device_type, (world.world_size,))
    policy = MixedPrecisionPolicy(param_dtype=mixed_precision, reduce_dtype=torch.float32) \
        if mixed_precision is not None else MixedPrecisionPolicy()
    for block in transformer_blocks(model):
        fully_shard(block, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    for module in model.modules():  # both settings are per FSDP group: set them on each
        if isinstance(module, FSDPModule):
            module.set_gradient_divide_factor(1.0)
            # Plain SUM collectives: a float32/bf16 reduce would otherwise use PREMUL_SUM(1.0),
            # which gloo lacks (and NCCL's zero-copy reductions are SUM-only).
            module.set_force_sum_reduction_for_comms(True)
    return model


def gradient_by_backward(loss_fn: Callable[[], torch.Tensor | Iterable[torch.Tensor]], params: Sequence[torch.Tensor],
                         model: nn.Module) -> list[torch.Tensor]:
    """d loss_fn() / d params by loss.backward(), leaving every parameter's .grad as it was.

    Under FSDP this is how a gradient must be taken: the forward runs on unsharded copies of the
    parameters, so torch.autograd.grad toward the sharded ones fails ("appears to not have been
    used in the graph"; None with allow_unused=True), and the reduce-scatter over ranks runs in
    FSDP's backward hooks, which fill the sharded parameters' .grad. The
    result has the parameters' placement (DTensor shards under FSDP). `loss_fn()` returns this
    rank's share of the loss (summed over ranks, like the learner's: see the module docstring).
    The learner's own .grad (already accumulated when the meta step runs) is set aside during the
    call and put back. On 1 process the result equals torch.autograd.grad(loss_fn(), params).

    The forward runs inside (a callable, not a loss): between a forward and its backward FSDP
    swaps the root group's registered parameters for their unsharded copies, so the .grad set
    aside must be read before the forward, while model.parameters() are the sharded DTensors
    (FSDP would otherwise accumulate the new gradient into the learner's)."""
    every = list(model.parameters())
    kept = [p.grad for p in every]
    for p in every:
        p.grad = None
    try:
        losses = loss_fn()  # a loss, or the losses of micro-batches, each formed after the previous backward
        for loss in [losses] if isinstance(losses, torch.Tensor) else losses:
            loss.backward()
        return [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
    finally:
        for p, g in zip(every, kept, strict=True):
            p.grad = g


def reshard(model: nn.Module) -> None:
    """Free every gathered parameter now. Needed after forwards without a backward (the meta
    step's): FSDP keeps the root group gathered after its forward (for the backward that usually
    follows), and the next forward would read those copies, stale once the optimizer has stepped
    the shards. A no-op on an unsharded model."""
    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.reshard()
