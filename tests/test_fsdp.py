"""FSDP2 across ranks on CPU (issue 14, item 6): real torch.distributed with gloo, 2 processes
under torchrun, against the 1-process run with the same global batch (float64).

Tolerance: rel 1e-9 on every per-step metric and on the weights. The ranks' shares are summed
(gradients by FSDP's reduce-scatter, the designer's by all-reduce), so the only differences are
the order of floating-point additions."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from test_train import world  # noqa: F401  (the module-scoped fixture: tokenizer, packed corpus)

HERE = Path(__file__).parent
# float64, 4 rows per step: 2 per rank, in micro-batches of 1; vpt's meta steps at 1 and 3
OVERRIDES = {"dtype": "float64", "steps": 4, "micro_batch_size": 1, "checkpoint_every": 2}
KEYS = ("loss", "ce", "grad_norm", "value", "g_down_norm", "designer_grad_norm", "alpha_mean", "alpha_std")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(root: Path, run: str, method: str, ranks: int, stop_at: int | None = None) -> Path:
    spec = root / f"{run}-{ranks}.json"
    spec.write_text(json.dumps({"root": str(root), "run": run, "method": method, "stop_at": stop_at, "overrides": OVERRIDES}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks),
                "--master_addr", "127.0.0.1", "--master_port", str(_free_port())] if ranks > 1 else [sys.executable]
    p = subprocess.run([*launcher, str(HERE / "fsdp_run.py"), str(spec)], env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-6000:]
    return root / run


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_same_run(a: Path, b: Path) -> None:
    ra, rb = rows(a), rows(b)
    assert [r["step"] for r in ra] == [r["step"] for r in rb] == [1, 2, 3, 4]
    for key in KEYS:
        assert [r[key] for r in ra if key in r] == pytest.approx([r[key] for r in rb if key in r], rel=1e-9, abs=1e-13), key
    wa, wb = load_file(a / "final/model.safetensors"), load_file(b / "final/model.safetensors")
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-9, atol=1e-12)
    if (a / "final/designer.pt").exists():
        da, db = torch.load(a / "final/designer.pt"), torch.load(b / "final/designer.pt")
        for k in da:
            torch.testing.assert_close(da[k], db[k], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("method", ["ntp", "vpt"])
def test_two_ranks_train_the_one_process_run(world: dict, method: str) -> None:  # noqa: F811
    """Per-step losses, V, gradient norms, the final model and the designer (so the meta-gradient
    under FSDP too) equal the 1-process run's."""
    one = train(world["root"], f"fsdp-{method}-1", method, ranks=1)
    two = train(world["root"], f"fsdp-{method}-2", method, ranks=2)
    assert any("value" in r for r in rows(two)) == (method == "vpt")
    assert_same_run(two, one)


def test_a_two_rank_run_resumes_on_one_process(world: dict) -> None:  # noqa: F811
    """Interrupted at step 2 on 2 ranks (a sharded checkpoint), finished on 1 process: the rest of
    the run equals the uninterrupted 1-process run."""
    one = world["root"] / "fsdp-vpt-1"
    if not (one / "final").exists():
        train(world["root"], "fsdp-vpt-1", "vpt", ranks=1)
    split = train(world["root"], "fsdp-split", "vpt", ranks=2, stop_at=2)
    assert (split / "checkpoints/step_0000002/sharded/.metadata").exists() and not (split / "final").exists()
    train(world["root"], "fsdp-split", "vpt", ranks=1)
    assert_same_run(split, one)


@pytest.mark.parametrize(("train", "why"), [
    ({"value": {"estimator": "autograd"}}, "double backward.*use finite_difference"),
    ({"value": {"estimator": "jvp"}}, "forward-mode AD.*use finite_difference"),
    ({"value": {"kind": "cosine"}}, "skips FSDP's reduce-scatter.*kind 'dot'"),
    ({"lora": {"r": 4}}, "LoRA learners train on one process"),
])
def test_what_fsdp_cannot_run_is_refused_with_the_reason(train: dict, why: str) -> None:
    from vpt.errors import VptError
    from vpt.train.config import TrainConfig
    from vpt.train.loop import _refuse_under_fsdp

    with pytest.raises(VptError, match=why):
        _refuse_under_fsdp(TrainConfig.from_dict({"method": "vpt", **train}), precision_master=False)
    with pytest.raises(VptError, match="train.weights bfloat16 keeps fp32 masters on one process"):
        _refuse_under_fsdp(TrainConfig.from_dict({"method": "vpt"}), precision_master=True)
