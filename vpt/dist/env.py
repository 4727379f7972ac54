"""The process world: which rank this process is, out of how many, and its process group.

The launcher sets the environment (torchrun, or submitit.helpers.TorchDistributedEnvironment
under SLURM: one task per GPU); `init_world` reads it once. A 1-process run (no WORLD_SIZE, or
WORLD_SIZE=1) gets a World without a process group, so every primitive of vpt.dist falls back to
its plain single-process form and the trainer runs exactly as it does without vpt.dist.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist

from vpt.errors import VptError

# What a launcher must set for a multi-process run (torchrun and submitit both set all of them).
ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
BACKENDS = {"cpu": "gloo", "cuda": "nccl"}  # the process group backend of each device type


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of one run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device_type: str = "cpu"

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes what is written once (metrics, pointers, final model)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process (then a process group exists)."""
        return self.world_size > 1

    @property
    def device(self) -> torch.device:
        """This rank's device: cuda:LOCAL_RANK on GPU nodes (one process per GPU), else cpu."""
        return torch.device("cuda", self.local_rank) if self.device_type == "cuda" else torch.device("cpu")


def _int(env: Mapping[str, str], name: str, low: int) -> int:
    raw = env[name]
    try:
        value = int(raw)
    except ValueError:
        raise VptError(f"environment variable {name}={raw!r} is not an integer") from None
    if value < low:
        raise VptError(f"environment variable {name}={value} must be >= {low}")
    return value


def world_from_env(device_type: str, env: Mapping[str, str] | None = None) -> World:
    """The World the environment describes (validated), without creating a process group."""
    if device_type not in BACKENDS:
        raise VptError(f"device type {device_type!r}: choose one of {', '.join(BACKENDS)}")
    env = os.environ if env is None else env
    present = [v for v in ENV_VARS if v in env]
    if not present or ("WORLD_SIZE" in env and _int(env, "WORLD_SIZE", 1) == 1):
        return World(device_type=device_type)
    missing = [v for v in ENV_VARS if v not in env]
    if missing:
        raise VptError(f"incomplete distributed environment: {', '.join(present)} set but {', '.join(missing)} "
                       f"missing; launch with torchrun or submitit (they set all of {', '.join(ENV_VARS)}), "
                       f"or unset them for a 1-process run")
    world_size = _int(env, "WORLD_SIZE", 1)
    rank, local_rank = _int(env, "RANK", 0), _int(env, "LOCAL_RANK", 0)
    _int(env, "MASTER_PORT", 1)
    if rank >= world_size:
        raise VptError(f"environment variable RANK={rank} must be < WORLD_SIZE={world_size}")
    return World(rank, world_size, local_rank, device_type)


def init_world(device_type: str) -> World:
    """Read the launcher's environment; with several processes, join the process group (gloo on
    cpu, nccl on cuda, this rank's GPU = LOCAL_RANK). Idempotent: a second call returns the same World."""
    world = world_from_env(device_type)
    if not world.distributed or dist.is_initialized():
        return world
    if device_type == "cuda":
        if world.local_rank >= torch.cuda.device_count():
            raise VptError(f"LOCAL_RANK={world.local_rank} but this node has {torch.cuda.device_count()} GPUs; "
                           f"launch one process per GPU")
        torch.cuda.set_device(world.local_rank)
    # device_id: NCCL binds the communicator to this rank's GPU at once (no guessing in barriers).
    dist.init_process_group(BACKENDS[device_type], rank=world.rank, world_size=world.world_size,
                            device_id=world.device if device_type == "cuda" else None)
    return world


def close_world() -> None:
    """Leave the process group (nothing to do on 1 process)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(world: World) -> None:
    """Wait until every rank arrives here (nothing to do on 1 process)."""
    if world.distributed:
        dist.barrier()


def rank_rows(n_rows: int, world: World, key: str = "train.batch_size") -> slice:
    """This rank's contiguous share of a global batch of n_rows rows (rank r: rows [r n/W, (r+1) n/W));
    `key` names the setting in the error."""
    if n_rows % world.world_size:
        raise VptError(f"{key}={n_rows} is not divisible by the world size {world.world_size} "
                       f"(WORLD_SIZE); choose a multiple of {world.world_size}")
    share = n_rows // world.world_size
    return slice(world.rank * share, (world.rank + 1) * share)
