"""vpt.dist on real torch.distributed: gloo, 2 processes on CPU, a tiny real Qwen2 (tied embeddings).

One 2-rank run (tests/dist_scenarios.py under torchrun) does every scenario and writes its
results; the 1-process references and checkpoints are made in this process before and after it
(module fixture `run`). Tolerances (float64): losses and gradient norms 1e-12 relative, weights
after 3 AdamW steps 1e-12 absolute (seen: 8e-15), gradients 1e-14 absolute (seen: 2e-17, of
entries up to 0.06); checkpoints and the save_pretrained round trip: bit for bit.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import dist_scenarios as sc
from conftest import REPO
from vpt import dist as vd
from vpt.errors import VptError

FULL_ENV = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}


# --------------------------------------------------------------------------- 1 process, no spawn
def test_world_from_env() -> None:
    assert vd.world_from_env("cpu", {}) == vd.World()
    assert not vd.World().distributed and vd.World().is_main
    assert vd.world_from_env("cpu", {**FULL_ENV, "WORLD_SIZE": "1", "RANK": "0"}) == vd.World()  # torchrun -n 1
    w = vd.world_from_env("cuda", FULL_ENV)
    assert (w.rank, w.world_size, w.local_rank, w.distributed, w.is_main) == (1, 2, 1, True, False)
    assert w.device == torch.device("cuda", 1)
    with pytest.raises(VptError, match="MASTER_ADDR"):
        vd.world_from_env("cpu", {k: v for k, v in FULL_ENV.items() if k != "MASTER_ADDR"})
    with pytest.raises(VptError, match="WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT missing"):
        vd.world_from_env("cpu", {"RANK": "0"})
    with pytest.raises(VptError, match="RANK=2 must be < WORLD_SIZE=2"):
        vd.world_from_env("cpu", {**FULL_ENV, "RANK": "2"})
    with pytest.raises(VptError, match="MASTER_PORT='x' is not an integer"):
        vd.world_from_env("cpu", {**FULL_ENV, "MASTER_PORT": "x"})
    with pytest.raises(VptError, match="choose one of cpu, cuda"):
        vd.world_from_env("tpu", {})


def test_rank_rows() -> None:
    w = vd.World(rank=2, world_size=4)
    assert vd.rank_rows(8, w) == slice(4, 6)
    assert vd.rank_rows(8, vd.World()) == slice(0, 8)
    with pytest.raises(VptError, match="train.batch_size=6 is not divisible by the world size 4"):
        vd.rank_rows(6, w)


def test_one_process_fallbacks(tmp_path: Path) -> None:
    """No process group: collectives are identities, sharding leaves the model, saves are save_atomic."""
    world = vd.init_world("cpu")
    assert world == vd.World()
    a = torch.ones(3)
    vd.all_reduce_sum_([a])
    assert a.tolist() == [1.0, 1.0, 1.0]
    assert vd.any_rank(True) and not vd.any_rank(False)
    assert vd.sum_scalar(torch.tensor(2.5)) == 2.5 and vd.broadcast_object({"x": 1}) == {"x": 1}
    model = sc.build()
    before = {n: p.clone() for n, p in model.named_parameters()}
    assert vd.shard_learner(model, world, torch.bfloat16) is model
    assert all(torch.equal(p, before[n]) and p.dtype == torch.float64 for n, p in model.named_parameters())
    target = tmp_path / "ckpt"
    vd.save_atomic_distributed(target, lambda tmp: (tmp / "state.json").write_text("{}"), world)
    assert (target / "state.json").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no temporary directory left
    def failing(tmp: Path) -> None:
        (tmp / "state.json").write_text("new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        vd.save_atomic_distributed(target, failing, world)
    assert (target / "state.json").read_text() == "{}" and [p.name for p in tmp_path.iterdir()] == ["ckpt"]
    with pytest.raises(VptError, match="not a sharded checkpoint"):
        vd.load_sharded(target, model, sc.optimizer(model))


# --------------------------------------------------------------------------- 2 ranks
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("dist")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sc.single_before(out)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(_free_port()), str(REPO / "tests" / "dist_scenarios.py"), str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
        after = sc.single_after(out)
    finally:
        torch.set_num_threads(threads)

    def pt(name: str) -> Any:
        return torch.load(out / name, weights_only=False)

    return {"single": json.loads((out / "single.json").read_text()), "after": after,
            "ranks": [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)],
            "single_trained": pt("single_trained.pt"), "ranks_trained": pt("ranks_trained.pt"),
            "ranks_loaded_single": pt("ranks_loaded_single.pt"), "single_grad": pt("single_grad.pt"),
            "ranks_grad": pt("ranks_grad.pt"), "out": out}


def max_diff(a: Any, b: Any, path: str = "") -> float:
    """Largest absolute difference between two nested state dicts (structure and non-tensors must match)."""
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), f"{path}: keys differ"
        return max([max_diff(a[k], b[k], f"{path}.{k}") for k in a], default=0.0)
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{path}: lengths differ"
        return max([max_diff(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b))], default=0.0)
    if isinstance(a, torch.Tensor):
        assert a.shape == b.shape and a.dtype == b.dtype, f"{path}: {a.shape} {a.dtype} vs {b.shape} {b.dtype}"
        return float((a - b).abs().max()) if a.numel() else 0.0
    assert a == b, f"{path}: {a!r} != {b!r}"
    return 0.0


def test_ranks_and_collectives(run: dict[str, Any]) -> None:
    """(f) any_rank / all_reduce_sum_ / sum_scalar / broadcast_object / rank_rows across 2 ranks."""
    for r, res in enumerate(run["ranks"]):
        assert res["world"] == [r, 2, r, True]
        c = res["collectives"]
        assert (c["any_rank1"], c["any_none"], c["any_all"]) == (True, False, True)
        assert c["summed_a"] == [3.0, 3.0, 3.0]  # 1 + 2
        assert c["summed_b"] == [[0.0, 11.0], [22.0, 33.0]]  # x + 10 x, float32 in the same call
        assert c["sum_scalar"] == 2.0 and c["broadcast"] == {"from": 0}
        assert c["rows"] == [2 * r, 2 * r + 2]


def test_failed_distributed_save_raises_everywhere(run: dict[str, Any]) -> None:
    """A writer failing on rank 1: both ranks raise (none is left waiting), the old checkpoint stays whole."""
    r0, r1 = (res["failed_save"] for res in run["ranks"])
    assert r1["raised"] == "OSError: disk full"
    assert r0["raised"].startswith("VptError:") and "another rank failed" in r0["raised"]
    assert r0["parts"] == ["part0=old", "part1=old"] and r0["left"] == []


def test_fsdp_training_equals_one_process(run: dict[str, Any]) -> None:
    """(a) 3 steps of forward, backward, clip (it bites), fused AdamW: 2 ranks on halves == 1 process."""
    ref, got = run["single"]["train"], run["ranks"][0]["train"]
    assert got["sharded"] and got["tied"]  # DTensor parameters; the embedding and the head still one
    for key in ("losses", "grad_norms"):
        assert got["train"][key] == pytest.approx(ref[key], rel=1e-12, abs=0)
    assert min(ref["grad_norms"]) > sc.CLIP
    assert run["ranks"][1]["train"]["train"]["losses"] == got["train"]["losses"]
    model_diff = max_diff(run["single_trained"][0], run["ranks_trained"][0])
    assert model_diff < 1e-12
    assert max_diff(run["single_trained"][1], run["ranks_trained"][1]) < 1e-12  # AdamW moments, step
    moved = max_diff(sc.build().state_dict(), run["single_trained"][0])
    assert moved > 1e-3  # the steps changed the weights: the comparison means something


def test_checkpoint_reshards_both_ways(run: dict[str, Any]) -> None:
    """(b) DCP written on 2 ranks loads on 1 process, and written on 1 process loads on 2: bit for bit."""
    assert max_diff(run["ranks_trained"], run["after"]["states"]) == 0.0
    assert run["after"]["tied"]
    assert max_diff(run["single_trained"], run["ranks_loaded_single"]) == 0.0
    assert not list(run["out"].glob(".ckpt_ranks.*"))  # save_atomic_distributed left no temp dir
    assert (run["out"] / "ckpt_ranks" / ".metadata").exists()


def test_full_state_dict_round_trips_through_save_pretrained(run: dict[str, Any]) -> None:
    """(c) rank 0's full state dict -> save_pretrained -> from_pretrained == the gathered shards."""
    main, other = run["ranks"][0]["pretrained"], run["ranks"][1]["pretrained"]
    assert other == {"state_dict_is_none": True}
    assert not main["state_dict_is_none"] and main["names_match"] and main["loaded_tied"]
    assert main["max_diff"] == 0.0
    assert {"lm_head.weight", "model.embed_tokens.weight"} <= set(main["state_dict_keys"])


def test_gradient_by_backward_equals_autograd_grad(run: dict[str, Any]) -> None:
    """(d) g_down over the last two blocks by backward under FSDP == 1-process autograd.grad, also
    under graph_only_for; the learner's .grad accumulated before is left as it was."""
    ref = run["single_grad"]
    for key in ("backward", "graph_only_for"):
        assert max_diff(ref, run["ranks_grad"][key]) < 1e-14
    assert max(float(g.abs().max()) for g in ref) > 1e-3
    for res in run["ranks"]:
        g = res["gradient"]
        assert g["grad_kept"] and g["grad_placement"] and g["requires_grad_restored"]


def test_perturbed_on_sharded_scope(run: dict[str, Any]) -> None:
    """(e) perturbed() on DTensor scope parameters along a DTensor direction: the same loss as on
    1 process, the same |u| (vpt.value.flat.norm on DTensors), and the shards restored bit for bit."""
    ref = run["single"]["perturb"]
    for res in run["ranks"]:
        g = res["gradient"]
        assert g["perturbed_loss"] == pytest.approx(ref["perturbed_loss"], rel=1e-12, abs=0)
        assert g["direction_norm"] == pytest.approx(ref["direction_norm"], rel=1e-12, abs=0)
        assert g["moved"] > 0 and g["restored_exactly"]
    assert ref["perturbed_loss"] != pytest.approx(run["single"]["train"]["losses"][0], rel=1e-9)  # it moved the loss


def test_bf16_mixed_precision(run: dict[str, Any]) -> None:
    """bf16 compute on float32 master weights: float32 gradients, a loss near the float32 one."""
    for res in run["ranks"]:
        mp = res["mixed_precision"]
        assert mp["grad_dtypes"] == mp["param_dtypes"] == ["torch.float32"]
        assert mp["bf16_loss"] == pytest.approx(mp["fp32_loss"], rel=1e-2)
        assert mp["bf16_loss"] != mp["fp32_loss"]  # it did compute in bf16
