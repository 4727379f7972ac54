"""Distributed primitives of the value trainer: the process world, FSDP2 sharding of the
learner, the few collectives the loop needs, and sharded checkpoints. Every function is the
plain single-process behaviour on a 1-process World, so one code path serves both."""

from vpt.dist.checkpoint import full_model_state_dict, load_sharded, save_atomic_distributed, save_sharded
from vpt.dist.collectives import all_reduce_sum_, any_rank, broadcast_object, sum_scalar
from vpt.dist.env import World, barrier, close_world, init_world, rank_rows, world_from_env
from vpt.dist.shard import gradient_by_backward, reshard, shard_learner

__all__ = [
    "World", "all_reduce_sum_", "any_rank", "barrier", "broadcast_object", "close_world", "full_model_state_dict",
    "gradient_by_backward", "init_world", "load_sharded", "rank_rows", "reshard", "save_atomic_distributed", "save_sharded",
    "shard_learner", "sum_scalar", "world_from_env",
]
