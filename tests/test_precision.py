"""train.weights: bf16 weights with fp32 master weights in the optimizer (vpt.train.precision)."""

from __future__ import annotations

import pytest
import torch

from vpt.errors import VptError
from vpt.train.config import TrainConfig

from test_train import make, params, world  # noqa: F401  (world: the module-scoped fixture)


def test_bf16_weights_keep_fp32_masters_and_resume_exactly(world: dict) -> None:  # noqa: F811
    full = make(world, "bf16-full", "vpt", steps=4, weights="bfloat16", checkpoint_every=2)
    assert {p.dtype for p in full.model.parameters()} == {torch.bfloat16}
    full.run()
    rows = full.metrics.rows
    assert [r["step"] for r in rows if "value" in r] == [1, 3] and all(r["value"] != 0 for r in rows if "value" in r)
    assert full.master is not None and {m.dtype for m in full.master.params} == {torch.float32}
    # the learner is its masters rounded, and the masters moved by more than bf16 could hold
    assert all(torch.equal(p, m.to(torch.bfloat16)) for p, m in zip(full.params, full.master.params))
    assert any(not torch.equal(m, m.to(torch.bfloat16).float()) for m in full.master.params)

    part = make(world, "bf16-part", "vpt", steps=4, weights="bfloat16", checkpoint_every=2)
    part.run(stop_at=2)
    resumed = make(world, "bf16-part", "vpt", steps=4, weights="bfloat16", checkpoint_every=2)
    assert resumed.step == 2
    resumed.run()
    assert [r["loss"] for r in resumed.metrics.rows] == [r["loss"] for r in rows]
    assert all(torch.equal(a, b) for a, b in zip(resumed.master.params, full.master.params))
    assert all(torch.equal(a, b) for a, b in zip(params(resumed), params(full)))


def test_bf16_weights_need_a_bf16_compute_dtype() -> None:
    with pytest.raises(VptError, match="train.weights bfloat16.*train.dtype"):
        TrainConfig.from_dict({"weights": "bfloat16", "dtype": "float32"})


def test_the_memory_arithmetic_counts_qwen_parameters_exactly() -> None:
    """Qwen1.5-0.5B by hand: embedding 151,936 x 1,024 (tied with the head), 24 blocks of q/k/v/o
    (4 x 1,024^2, q/k/v biases 3 x 1,024), SwiGLU (3 x 1,024 x 2,816), two norms, a final norm."""
    from vpt.bench.arithmetic import QWEN15_05B, parameters, state_gb

    block = 4 * 1024 * 1024 + 3 * 1024 + 3 * 1024 * 2816 + 2 * 1024
    assert parameters(QWEN15_05B) == 151936 * 1024 + 24 * block + 1024 == 463_987_712
    assert state_gb(463_987_712, "float32", 1) == pytest.approx(7.42, abs=0.01)
