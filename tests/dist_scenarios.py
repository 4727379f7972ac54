"""The scenarios of tests/test_distributed.py: one 2-rank run doing them all, and the 1-process
references and checkpoints around it.

    python -m torch.distributed.run --nproc_per_node 2 tests/dist_scenarios.py OUT

runs the 2-rank part (`ranks`); the test process itself runs `single_before` (references, a
1-process checkpoint for the 2 ranks to load) and `single_after` (loads the 2-rank checkpoint).
Every result lands in OUT: rank<r>.json (numbers) and *.pt (state dicts, rank 0).
A tiny Qwen2 like config/config.yaml's embedded learner (tied embeddings), in float64.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict
from torch.distributed.tensor import DTensor

from vpt import dist as vd
from vpt.errors import VptError
from vpt.models.learner import build_from_architecture
from vpt.value.estimators import perturbed
from vpt.value.flat import norm
from vpt.value.scope import graph_only_for, scope_parameters

ARCH = {"model_type": "qwen2", "hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64, "tie_word_embeddings": True}
VOCAB, ROWS, SEQ, STEPS = 96, 4, 12, 3
LR, WEIGHT_DECAY, CLIP = 1e-2, 0.1, 0.5  # the clip bites (gradient norms are ~2): clipping is compared too
SCOPE, FD_EPS = "last:2", 1e-3
FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def build(dtype: torch.dtype = torch.float64) -> nn.Module:
    torch.manual_seed(0)  # the same initial weights on every rank and in the reference
    return build_from_architecture(ARCH, VOCAB, 0, 0, "sdpa").to(dtype)


def optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY, fused=True)  # as the trainer's


def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ROWS, SEQ) ids and labels; ragged ignored tails, so the ranks' token counts differ."""
    g = torch.Generator().manual_seed(100 + step)
    ids = torch.randint(1, VOCAB, (ROWS, SEQ), generator=g)
    labels = ids.clone()
    for r in range(ROWS):
        labels[r, SEQ - 1 - int(torch.randint(0, SEQ // 2, (1,), generator=g)):] = -100
    return ids, labels


def token_loss(model: nn.Module, ids: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(sum of the token cross-entropies, number of tokens) of some rows."""
    logits = model(input_ids=ids, use_cache=False).logits[:, :-1]  # (B, T-1, V)
    total = F.cross_entropy(logits.reshape(-1, VOCAB), labels[:, 1:].reshape(-1), ignore_index=-100, reduction="sum")
    return total, int((labels[:, 1:] != -100).sum())


def loss_share(model: nn.Module, step: int, world: vd.World) -> torch.Tensor:
    """This rank's share of the global mean token loss: sum over its rows / the global token count."""
    ids, labels = batch(step)
    rows = vd.rank_rows(ROWS, world)
    total, count = token_loss(model, ids[rows], labels[rows])
    return total / vd.sum_scalar(count)


def train(model: nn.Module, opt: torch.optim.Optimizer, world: vd.World) -> dict[str, list[float]]:
    losses, gnorms = [], []
    for step in range(STEPS):
        loss = loss_share(model, step, world)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(vd.sum_scalar(loss))
        gnorms.append(float(gnorm.item()))
    return {"losses": losses, "grad_norms": gnorms}


def full_states(model: nn.Module, opt: torch.optim.Optimizer) -> tuple[dict[str, Any], dict[str, Any]]:
    """Full (unsharded) model and optimizer state dicts, keyed by parameter name (rank 0's are complete)."""
    return get_state_dict(model, opt, options=FULL)


def scope_of(model: nn.Module) -> list[torch.Tensor]:
    return [p for _, p in scope_parameters(model, SCOPE)]


def local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if isinstance(t, DTensor) else t


def full(t: torch.Tensor) -> torch.Tensor:
    return t.full_tensor() if isinstance(t, DTensor) else t


def perturbed_loss(model: nn.Module, direction: list[torch.Tensor], world: vd.World) -> dict[str, Any]:
    """The loss at theta_S + e u (u the given direction, e = FD_EPS / |u|, as the finite difference
    takes it), and whether perturbed() put the scope back bit for bit."""
    scope = scope_of(model)
    before = [local(p).clone() for p in scope]
    u_norm = float(norm(direction).item())
    with torch.no_grad(), perturbed(scope, direction, FD_EPS / u_norm):
        moved = max(float((local(p) - b).abs().max()) for p, b in zip(scope, before))
        loss = vd.sum_scalar(loss_share(model, 0, world))
    exact = all(torch.equal(local(p), b) for p, b in zip(scope, before))
    return {"perturbed_loss": loss, "direction_norm": u_norm, "moved": moved, "restored_exactly": exact}


def single_before(out: Path) -> None:
    """1-process references: training, g_down by autograd.grad, the perturbed loss; and a checkpoint."""
    world = vd.init_world("cpu")
    assert not world.distributed
    model, res = build(), {}
    opt = optimizer(model)
    res["train"] = train(model, opt, world)
    states = full_states(model, opt)
    torch.save(states, out / "single_trained.pt")
    vd.save_atomic_distributed(out / "ckpt_single", lambda tmp: vd.save_sharded(tmp, model, opt), world)

    model = build()
    scope = scope_of(model)
    g = [x.detach() for x in torch.autograd.grad(loss_share(model, 0, world), scope)]
    torch.save(g, out / "single_grad.pt")
    res["perturb"] = perturbed_loss(model, g, world)
    (out / "single.json").write_text(json.dumps(res))


def single_after(out: Path) -> dict[str, Any]:
    """The 2-rank checkpoint loaded into a plain 1-process model and optimizer: full states."""
    model = build()
    opt = optimizer(model)
    vd.load_sharded(out / "ckpt_ranks", model, opt)
    return {"states": full_states(model, opt), "tied": model.lm_head.weight is model.model.embed_tokens.weight}


def scenario_train(out: Path, world: vd.World) -> tuple[dict[str, Any], nn.Module]:
    """(a) training on 2 ranks; (b) its DCP checkpoint, and the 1-process checkpoint loaded here."""
    model = vd.shard_learner(build(), world)
    opt = optimizer(model)
    res: dict[str, Any] = {"train": train(model, opt, world),
                           "tied": model.lm_head.weight is model.model.embed_tokens.weight,
                           "sharded": all(isinstance(p, DTensor) for p in model.parameters())}
    states = full_states(model, opt)
    if world.is_main:
        torch.save(states, out / "ranks_trained.pt")
    vd.save_atomic_distributed(out / "ckpt_ranks", lambda tmp: vd.save_sharded(tmp, model, opt), world)

    fresh = vd.shard_learner(build(), world)
    fresh_opt = optimizer(fresh)
    vd.load_sharded(out / "ckpt_single", fresh, fresh_opt)
    states = full_states(fresh, fresh_opt)
    if world.is_main:
        torch.save(states, out / "ranks_loaded_single.pt")
    return res, model


def scenario_pretrained(out: Path, model: nn.Module, world: vd.World) -> dict[str, Any]:
    """(c) full_model_state_dict on rank 0 -> save_pretrained -> from_pretrained vs the sharded parameters."""
    from transformers import AutoModelForCausalLM

    sd = vd.full_model_state_dict(model)
    gathered = {n: full(p).detach() for n, p in model.named_parameters()}  # collective: every rank
    res: dict[str, Any] = {"state_dict_is_none": sd is None}
    if world.is_main:
        assert sd is not None
        res["state_dict_keys"] = sorted(sd)  # before save_pretrained, which empties the dict it is given
        model.save_pretrained(out / "pretrained", state_dict=sd, safe_serialization=True)
        loaded = AutoModelForCausalLM.from_pretrained(out / "pretrained", dtype=torch.float64)
        params = dict(loaded.named_parameters())
        res.update(names_match=sorted(params) == sorted(gathered),
                   max_diff=max(float((params[n] - t).abs().max()) for n, t in gathered.items()),
                   loaded_tied=loaded.lm_head.weight is loaded.model.embed_tokens.weight)
    return res


def scenario_gradient(out: Path, world: vd.World) -> dict[str, Any]:
    """(d) g_down by backward under FSDP (plain and under graph_only_for), the learner's .grad kept;
    (e) perturbed() along it."""
    model = vd.shard_learner(build(), world)
    scope = scope_of(model)
    loss_share(model, 1, world).backward()  # the learner gradient the meta step finds in .grad
    held = [local(p.grad).clone() for p in model.parameters()]
    g = vd.gradient_by_backward(lambda: loss_share(model, 0, world), scope, model)
    kept = all(torch.equal(local(p.grad), h) for p, h in zip(model.parameters(), held))
    with graph_only_for(model, scope):
        g_only = vd.gradient_by_backward(lambda: loss_share(model, 0, world), scope, model)
    placement_ok = all(isinstance(x, DTensor) and x.placements == p.placements for x, p in zip(g, scope))
    g_full, g_only_full = [full(x) for x in g], [full(x) for x in g_only]
    if world.is_main:
        torch.save({"backward": g_full, "graph_only_for": g_only_full}, out / "ranks_grad.pt")
    return {"grad_kept": kept, "grad_placement": placement_ok,
            "requires_grad_restored": all(p.requires_grad for p in model.parameters()),
            **perturbed_loss(model, [x.detach() for x in g], world)}


def scenario_mixed_precision(world: vd.World) -> dict[str, Any]:
    """A bf16 MixedPrecisionPolicy forward/backward on a float32 model (what GPUs will run)."""
    total, count = token_loss(build(torch.float32), *batch(0))  # the whole batch, on each rank
    model = vd.shard_learner(build(torch.float32), world, mixed_precision=torch.bfloat16)
    loss = loss_share(model, 0, world)
    loss.backward()
    return {"bf16_loss": vd.sum_scalar(loss), "fp32_loss": float(total) / count,
            "grad_dtypes": sorted({str(p.grad.dtype) for p in model.parameters()}),
            "param_dtypes": sorted({str(p.dtype) for p in model.parameters()})}


def scenario_collectives(world: vd.World) -> dict[str, Any]:
    """(f) any_rank, all_reduce_sum_, sum_scalar, broadcast_object, rank_rows across the ranks."""
    a = torch.full((3,), float(world.rank + 1), dtype=torch.float64)
    b = torch.arange(4, dtype=torch.float32).reshape(2, 2) * (10 ** world.rank)
    vd.all_reduce_sum_([a, b])
    rows = vd.rank_rows(ROWS, world)
    return {"any_rank1": vd.any_rank(world.rank == 1), "any_none": vd.any_rank(False),
            "any_all": vd.any_rank(True), "summed_a": a.tolist(), "summed_b": b.tolist(),
            "sum_scalar": vd.sum_scalar(torch.tensor(world.rank + 0.5)),
            "broadcast": vd.broadcast_object({"from": world.rank}), "rows": [rows.start, rows.stop]}


def scenario_failed_save(out: Path, world: vd.World) -> dict[str, Any]:
    """save_atomic_distributed when rank 1's writer fails: every rank raises, the old target stays."""
    target = out / "atomic"
    vd.save_atomic_distributed(target, lambda tmp: (tmp / f"part{world.rank}").write_text("old"), world)

    def write(tmp: Path) -> None:
        (tmp / f"part{world.rank}").write_text("new")
        if world.rank == 1:
            raise OSError("disk full")

    try:
        vd.save_atomic_distributed(target, write, world)
        raised = ""
    except (OSError, VptError) as e:
        raised = f"{type(e).__name__}: {e}"
    vd.barrier(world)
    return {"raised": raised, "parts": sorted(f"{p.name}={p.read_text()}" for p in target.iterdir()),
            "left": sorted(p.name for p in out.iterdir() if p.name.startswith(".atomic"))}


def ranks(out: Path) -> None:
    torch.set_num_threads(1)
    world = vd.init_world("cpu")
    res: dict[str, Any] = {"world": [world.rank, world.world_size, world.local_rank, world.distributed]}
    try:
        res["collectives"] = scenario_collectives(world)
        res["failed_save"] = scenario_failed_save(out, world)
        res["train"], model = scenario_train(out, world)
        res["pretrained"] = scenario_pretrained(out, model, world)
        res["gradient"] = scenario_gradient(out, world)
        res["mixed_precision"] = scenario_mixed_precision(world)
    finally:
        (out / f"rank{world.rank}.json").write_text(json.dumps(res, indent=1))
        vd.close_world()


if __name__ == "__main__":
    ranks(Path(sys.argv[1]))
