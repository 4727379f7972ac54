"""Checkpoints of a sharded learner: torch.distributed.checkpoint (DCP) for resuming, a full
state dict on rank 0 for save_pretrained.

- save_sharded / load_sharded: every rank writes (reads) its own shards of the model and of the
  optimizer state, into one directory; the files describe the global tensors, so a checkpoint
  written on N ranks loads on M ranks (resuming on a different number of GPUs) and on a plain
  1-process module. All ranks must call them (collectives inside).
- full_model_state_dict: the unsharded weights gathered to rank 0's CPU, for a rank-0
  `model.save_pretrained(path, state_dict=...)` (final/, snapshots): save_pretrained of the
  sharded model itself would write each rank's DTensor shards, not a loadable model.
- save_atomic_distributed: vpt.train.checkpoint.save_atomic for several ranks writing into one
  checkpoint directory. The directory must be on a filesystem every rank sees (the run
  directory on a cluster's shared storage).
"""

from __future__ import annotations

import contextlib
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_model_state_dict,
    set_state_dict,
)

from vpt.dist.collectives import any_rank, broadcast_object
from vpt.dist.env import World
from vpt.errors import VptError
from vpt.train import checkpoint as ckpt


def _both(model: nn.Module, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """{"model": ..., "optim": ...} keyed by parameter names (FQNs), not by optimizer position,
    so the layout survives resharding. A fresh optimizer gets its state created first (a step
    with lr 0), so a load has tensors to fill. No optimizer: the model alone."""
    if optimizer is None:
        return {"model": get_model_state_dict(model)}
    model_sd, optim_sd = get_state_dict(model, optimizer)
    return {"model": model_sd, "optim": optim_sd}


@contextlib.contextmanager
def _single_process_is_meant() -> Iterator[None]:
    """DCP warns when it runs without a process group; for a 1-process World that is the intent."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")
        yield


def save_sharded(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
    """Model (and optimizer) state into the directory `path` (created), each rank its shards."""
    with _single_process_is_meant():
        dcp.save(_both(model, optimizer), checkpoint_id=str(path))


def load_sharded(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
    """Model (and optimizer) state from `path` (written by save_sharded on any number of ranks),
    resharded onto this run's layout, in place."""
    if not (Path(path) / ".metadata").exists():
        raise VptError(f"{path}: not a sharded checkpoint (no .metadata; written by vpt.dist.save_sharded?)")
    state = _both(model, optimizer)
    with _single_process_is_meant():
        dcp.load(state, checkpoint_id=str(path))
    if optimizer is None:
        set_model_state_dict(model, state["model"])
        return
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])


def full_model_state_dict(model: nn.Module) -> dict[str, torch.Tensor] | None:
    """The full, unsharded CPU state dict on rank 0, None on the other ranks (all must call it:
    the shards are all-gathered). Tied weights appear under each of their names.
    save_pretrained(path, state_dict=sd) empties `sd` as it writes: copy it first to use it again."""
    sd = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    rank0 = not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0
    return sd if rank0 else None


def save_atomic_distributed(target: Path, write_fn: Callable[[Path], None], world: World) -> None:
    """`write_fn(tmp)` on every rank into one temporary directory, renamed onto `target` when all
    ranks have finished; on 1 process exactly vpt.train.checkpoint.save_atomic.

    Order: rank 0 creates tmp (beside target) and sends its path -> every rank writes -> all wait
    -> rank 0 renames -> all wait (so `target` exists for every rank on return). `write_fn` decides
    what each rank writes: the collective writers (save_sharded, full_model_state_dict) on every
    rank, the written-once files (designer, RNG, config, state.json) under `world.is_main`.
    A failure on any rank removes tmp and raises on every rank (no rank is left waiting), and
    `target` keeps its previous content. Pointers (vpt.train.checkpoint.mark_latest) are rank 0's."""
    if not world.distributed:
        ckpt.save_atomic(target, write_fn)
        return
    made: Path | None = None
    error: str | None = None
    if world.is_main:
        try:
            made = ckpt.temp_dir(target)
        except OSError as e:
            error = f"{target}: cannot create a temporary checkpoint directory beside it: {e}"
    tmp, error = broadcast_object((made, error))
    if error is not None:
        raise VptError(error)
    assert tmp is not None
    _all_or_none(lambda: write_fn(tmp), world, tmp, f"{target}: another rank failed writing its part; nothing was saved")
    _all_or_none(lambda: ckpt.commit(tmp, target) if world.is_main else None, world, tmp,
                 f"{target}: rank 0 failed renaming the complete checkpoint into place")


def _all_or_none(step: Callable[[], Any], world: World, tmp: Path, elsewhere: str) -> None:
    """Run `step` on every rank, then agree (any_rank, also a barrier) whether all succeeded:
    the failing rank re-raises its error, the others raise `elsewhere`."""
    failure: BaseException | None = None
    try:
        step()
    except BaseException as e:  # noqa: BLE001 -- re-raised below, after the other ranks know
        failure = e
    if any_rank(failure is not None):
        if world.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        if failure is not None:
            raise failure
        raise VptError(elsewhere)
