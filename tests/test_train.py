"""The training loop: methods, the feedback-label firewall, alpha = 0, resume, non-finite stops."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from vpt.data.pack import PackConfig, pack
from vpt.data.synth import SynthConfig, generate
from vpt.data.tokenizer import corpus_texts, load_tokenizer, train_bpe
from vpt.language.objective import (Shifted, chunked_learner_loss, hidden_of, learner_loss, logits_of, step_targets,
                                    targets_from_topk)
from vpt.losses.chunked import Head, head_topk
from vpt.language.task import RunSpec, language_trainer
from vpt.losses.soft_target import candidate_logprobs
from vpt.train.config import METHODS, TrainConfig
from vpt.train.loop import NonFiniteError, Trainer

from conftest import SHIPPED

ARCH = {"model_type": "qwen2", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "intermediate_size": 64, "max_position_embeddings": 128, "tie_word_embeddings": True}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("world")
    corpus = pd.DataFrame(generate(SynthConfig(n_docs=400, seed=0)))
    train_bpe(corpus_texts(corpus["problem"], corpus["solution"]), 400, 2, root / "tok")
    pack(corpus, load_tokenizer(root / "tok"), PackConfig(seq_len=48, shuffle_buffer=50, seed=0), root / "packed", "t", "s")
    gsm = pd.read_json(SHIPPED / "gsm8k/train.jsonl", lines=True).head(64)
    gsm.insert(0, "id", [f"gsm8k/train/{i}" for i in range(len(gsm))])
    return {"root": root, "feedback": gsm}


def make(world: dict, run: str, method: str, feedback: pd.DataFrame | None = None, **overrides) -> Trainer:
    train = {
        "method": method, "steps": 6, "batch_size": 4, "lr": 3e-3, "warmup_steps": 2, "checkpoint_every": 3,
        "designer": {"K": 5, "n_layer": 1, "n_embd": 16, "n_head": 2, "lr": 1e-2},
        "value": {"meta_every": 2, "estimator": "finite_difference", "scope": "last:1", "fd_eps": 1e-3},
        "feedback": {"n": 32, "batch_size": 4, "max_len": 64},
    }
    for k, v in overrides.items():
        if isinstance(v, dict):
            train[k] = {**train.get(k, {}), **v}
        else:
            train[k] = v
    spec = RunSpec(run_dir=world["root"] / run, packed_dir=world["root"] / "packed", tokenizer_path=str(world["root"] / "tok"),
                   architecture=ARCH, feedback_table=world["feedback"] if feedback is None else feedback)
    torch.manual_seed(0)
    return language_trainer(TrainConfig.from_dict(train), spec, device="cpu")


def params(t: Trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in t.model.parameters()]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_and_writes_a_loadable_model(world: dict, method: str) -> None:
    t = make(world, f"m-{method}", method)
    summary = t.run()
    assert summary["finished"] and summary["step"] == 6
    rows = [json.loads(line) for line in (t.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 7))
    assert all(r["ce"] > 0 and r["tokens_per_s"] > 0 for r in rows)
    if method in ("vpt", "random_feedback"):
        assert [r["step"] for r in rows if "value" in r] == [1, 3, 5]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(t.run_dir / "final")
    assert AutoTokenizer.from_pretrained(t.run_dir / "final").eos_token == "<|endoftext|>"
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), t.model.state_dict().values()))


def test_learner_never_sees_feedback_labels(world: dict) -> None:
    a = make(world, "fw-a", "vpt")
    theta0, designer0 = params(a), copy.deepcopy(a.designer.state_dict())
    ids, labels = a.task.data.next()
    a.task.data.load_state_dict({"epoch": 0, "cursor": 0})
    row_a = a.train_step()  # step 1 is a meta step

    # the same update by hand: a plain AdamW step on the same batch with the designer's targets
    b = make(world, "fw-b", "ntp")
    for p, q in zip(b.model.parameters(), theta0):
        p.data.copy_(q)
    b.designer = copy.deepcopy(a.designer)
    b.designer.load_state_dict(designer0)
    h = hidden_of(b.model, ids)
    head = Head.of(b.model, b.cfg.loss_chunk_tokens)
    sh = Shifted.of(ids, labels, head.loss_dtype)
    top_vals, cand = head_topk(h, head, 5)
    loss, _ = chunked_learner_loss(h, head, sh, targets_from_topk("vpt", top_vals, cand, sh, 0.25, b.designer, head.loss_dtype))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(b.params, b.cfg.grad_clip)
    for g in b.opt.param_groups:
        g["lr"] = float(a.lrs[0])
    b.opt.step()
    assert all(torch.equal(p, q) for p, q in zip(params(a), params(b)))

    # other feedback labels: the designer moves differently, the learner does not
    shuffled = world["feedback"].copy()
    shuffled["answer"] = list(reversed(shuffled["answer"].tolist()))
    c = make(world, "fw-c", "vpt", feedback=shuffled)
    row_c = c.train_step()
    assert all(torch.equal(p, q) for p, q in zip(params(a), params(c)))
    # (Adam's first step is ~lr * sign(g), so compare the gradient it averaged, not the parameters)
    m_a = [a.d_opt.state[p]["exp_avg"] for p in a.d_params]
    m_c = [c.d_opt.state[p]["exp_avg"] for p in c.d_params]
    assert not all(torch.equal(x, y) for x, y in zip(m_a, m_c))
    assert row_c["value"] != row_a["value"]


def test_alpha_zero_reproduces_ntp_exactly(world: dict) -> None:
    ref = make(world, "a0-ntp", "ntp", steps=4)
    ref.run()
    losses = [r["loss"] for r in ref.metrics.rows]
    for method in ("vpt", "random_feedback", "uniform_smoothing", "self_distill"):
        t = make(world, f"a0-{method}", method, steps=4, fixed_alpha=0.0, designer={"alpha_max": 0.0})
        t.run()
        assert [r["loss"] for r in t.metrics.rows] == losses, method
        assert all(torch.equal(p, q) for p, q in zip(params(t), params(ref))), method


def test_ablation_targets_match_their_definitions() -> None:
    logits = torch.tensor([[[2.0, 0.0, 1.0, -1.0, 3.0]]])  # (B=1, T=1, V=5)
    sh = Shifted(context=torch.tensor([[0]]), target=torch.tensor([[2]]), mask=torch.ones(1, 1))
    u = step_targets("uniform_smoothing", logits, sh, 3, 0.3, None)
    assert u.cand.tolist() == [[[4, 0, 2]]]
    assert torch.allclose(u.probs, torch.full((1, 1, 3), 1 / 3)) and torch.allclose(u.alpha, torch.tensor([[0.3]]))
    s = step_targets("self_distill", logits, sh, 3, 0.3, None)
    e = torch.exp(torch.tensor([3.0, 2.0, 1.0]))
    assert torch.allclose(s.probs[0, 0], e / e.sum())
    # the loss is CE(q, p_theta) with q = 0.7 delta_y + 0.3 p over the candidates
    loss, ce = learner_loss(logits, sh, s)
    logp = logits.log_softmax(-1)[0, 0]
    q = torch.zeros(5)
    q[2] += 0.7
    q[[4, 0, 2]] += 0.3 * e / e.sum()
    assert torch.allclose(loss, -(q * logp).sum()) and torch.allclose(ce, -logp[2])
    assert torch.allclose(candidate_logprobs(logits, torch.tensor([[[1, 3]]])), logp[[1, 3]].view(1, 1, 2))


def test_resume_is_exact(world: dict) -> None:
    straight = make(world, "r-straight", "vpt", steps=20, checkpoint_every=5)
    straight.run()
    first = make(world, "r-split", "vpt", steps=20, checkpoint_every=5)
    first.run(stop_at=10)
    assert (first.run_dir / "checkpoints/step_0000010/sharded/.metadata").exists()  # vpt.train.state.SHARDED
    second = make(world, "r-split", "vpt", steps=20, checkpoint_every=5)  # a new process would do this
    assert second.step == 10
    second.run()
    a = [(r["loss"], r.get("value")) for r in straight.metrics.rows]
    b = [(r["loss"], r.get("value")) for r in second.metrics.rows]
    assert a == b and len(b) == 20
    rows = (second.run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["step"] for r in rows] == list(range(1, 21))
    assert all(torch.equal(p, q) for p, q in zip(params(straight), params(second)))


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(world: dict) -> None:
    t = make(world, "nan", "ntp", steps=10, checkpoint_every=2)
    t.run(stop_at=4)
    shards = t.run_dir / "checkpoints/step_0000004/sharded"
    good = {f.name: f.read_bytes() for f in shards.iterdir()}
    with torch.no_grad():
        next(t.model.parameters()).fill_(float("nan"))
    with pytest.raises(NonFiniteError, match="step 5: loss is nan on rank 0"):
        t.run()
    assert json.loads((t.run_dir / "checkpoints/latest.json").read_text())["checkpoint"] == "step_0000004"
    assert {f.name: f.read_bytes() for f in shards.iterdir()} == good
    assert not (t.run_dir / "final").exists()
    resumed = make(world, "nan", "ntp", steps=10, checkpoint_every=2)
    assert resumed.step == 4 and all(torch.isfinite(p).all() for p in resumed.model.parameters())


def test_changed_config_starts_fresh_instead_of_resuming(world: dict) -> None:
    first = make(world, "changed", "ntp", steps=6, checkpoint_every=2)
    first.run(stop_at=4)
    same = make(world, "changed", "ntp", steps=6, checkpoint_every=2)
    assert same.step == 4
    other = make(world, "changed", "ntp", steps=6, checkpoint_every=2, lr=1e-3)
    assert other.step == 0 and other.resume_from is None
    assert not (other.run_dir / "checkpoints").exists()


def test_feedback_truncation_keeps_the_answer(world: dict) -> None:
    from vpt.language.data import FeedbackSet

    fb = FeedbackSet(world["feedback"], load_tokenizer(world["root"] / "tok"), n=16, seed=0, max_len=32)
    for ids, labels in fb.examples:
        assert len(ids) <= 32 and labels[-1] != -100  # the answer's end (EOS) is kept


def test_probe_pairs_and_statistics(world: dict) -> None:
    import numpy as np

    from vpt.language.data import FeedbackSet, PackedBatches
    from vpt.stats import pearson, pearson_ci
    from vpt.language.probe import run_probe
    from vpt.value.scope import scope_parameters

    t = make(world, "probe", "ntp")
    tok = load_tokenizer(world["root"] / "tok")
    sub = FeedbackSet(world["feedback"], tok, 16, 0, 64)
    held = FeedbackSet(world["feedback"], tok, 16, 1, 64, exclude=set(sub.row_ids))
    assert not set(sub.row_ids) & set(held.row_ids)
    scope = scope_parameters(t.model, "all")
    before = [p.detach().clone() for _, p in scope]
    res = run_probe(t.model, scope, PackedBatches(world["root"] / "packed", 4, 9), held, sub, 8, 1e-3, 4)
    assert all(torch.equal(a, p) for a, (_, p) in zip(before, scope))  # the probe step is undone
    x = np.array([p["predicted"] for p in res["pairs"]])
    y = np.array([p["realized"] for p in res["pairs"]])
    assert res["pearson_r"] == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)
    lo, hi = res["pearson_r_ci95"]
    assert lo <= res["pearson_r"] <= hi
    # first order: with a small step the realized drop matches the prediction closely
    assert np.allclose(x, y, rtol=0.05, atol=1e-6)
    a = np.array([0.0, 1.0, 2.0, 3.0])
    assert pearson(a, -a) == pytest.approx(-1.0) and pearson_ci(a, a, 100, 0) == pytest.approx((1.0, 1.0))


def test_lora_learner_aligns_on_adapters_and_keeps_the_base_frozen(world: dict) -> None:
    from vpt.models.learner import build_from_architecture

    tok = load_tokenizer(world["root"] / "tok")
    base_dir = world["root"] / "lora-base"
    torch.manual_seed(0)
    build_from_architecture(ARCH, len(tok), tok.eos_token_id, tok.pad_token_id, "sdpa").save_pretrained(base_dir)
    train = {
        "method": "vpt", "steps": 4, "batch_size": 4, "lr": 1e-2, "warmup_steps": 1, "checkpoint_every": 2,
        "designer": {"K": 5, "n_layer": 1, "n_embd": 16, "n_head": 2},
        "value": {"meta_every": 2, "estimator": "jvp", "scope": "adapters"},
        "feedback": {"n": 32, "batch_size": 4, "max_len": 64},
        "lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]},
    }
    spec = RunSpec(run_dir=world["root"] / "lora-run", packed_dir=world["root"] / "packed", tokenizer_path=str(world["root"] / "tok"),
                   learner_path=str(base_dir), feedback_table=world["feedback"])
    t = language_trainer(TrainConfig.from_dict(train), spec, device="cpu")
    assert t.scope and all("lora_" in n for n, _ in t.scope)
    frozen = {n: p.detach().clone() for n, p in t.model.named_parameters() if "lora_" not in n}
    lora = {n: p.detach().clone() for n, p in t.model.named_parameters() if "lora_B" in n}
    t.run()
    now = dict(t.model.named_parameters())
    assert all(torch.equal(now[n], p) for n, p in frozen.items())
    assert any(not torch.equal(now[n], p) for n, p in lora.items())
    assert (t.run_dir / "final" / "adapter_model.safetensors").exists()
    assert all("value" in r for r in t.metrics.rows if r["step"] in (1, 3))

    # the adapter run resumes exactly too
    spec.run_dir = world["root"] / "lora-split"
    language_trainer(TrainConfig.from_dict(train), spec, device="cpu").run(stop_at=2)
    resumed = language_trainer(TrainConfig.from_dict(train), spec, device="cpu")
    assert resumed.step == 2
    resumed.run()
    assert [r["loss"] for r in resumed.metrics.rows] == [r["loss"] for r in t.metrics.rows]


def test_a_rebuilt_input_at_the_same_path_starts_fresh(world: dict, tmp_path: Path) -> None:
    import shutil

    packed = tmp_path / "packed"
    shutil.copytree(world["root"] / "packed", packed)
    spec = lambda: RunSpec(run_dir=tmp_path / "run", packed_dir=packed, tokenizer_path=str(world["root"] / "tok"), architecture=ARCH)  # noqa: E731
    cfg = TrainConfig.from_dict({"method": "ntp", "steps": 4, "batch_size": 4, "checkpoint_every": 2})
    language_trainer(cfg, spec(), device="cpu").run(stop_at=2)
    assert language_trainer(cfg, spec(), device="cpu").step == 2
    corpus = pd.DataFrame(generate(SynthConfig(n_docs=400, seed=5)))  # the corpus is repacked in place
    pack(corpus, load_tokenizer(world["root"] / "tok"), PackConfig(seq_len=48, shuffle_buffer=50, seed=0), packed, "t", "s")
    assert language_trainer(cfg, spec(), device="cpu").step == 0


def test_fast_meta_paths_train_the_same_run_as_the_plain_path(world: dict) -> None:
    """Fused finite difference + scope-boundary replay against the plain two-sided full-forward
    path, in a whole run (scope last:1 of 2 blocks, so the replay really skips a block)."""
    rows = {}
    for name, fast in (("fast", True), ("plain", False)):
        t = make(world, f"paths-{name}", "vpt", steps=8, dtype="float64",
                 value={"fd_fused": fast, "scope_cache": fast, "feedback_scope_graph": fast, "fd_eps": 1e-4})
        assert (t.task.boundary is not None) == fast
        t.run()
        rows[name] = t.metrics.rows
        rows[name + "_params"] = params(t)
    values = [(r["value"], s["value"]) for r, s in zip(rows["fast"], rows["plain"]) if "value" in r]
    assert len(values) == 4
    assert all(a == pytest.approx(b, rel=1e-6) for a, b in values)
    assert [r["loss"] for r in rows["fast"]] == pytest.approx([r["loss"] for r in rows["plain"]], rel=1e-6)
    assert all(torch.allclose(p, q, rtol=1e-6, atol=1e-9) for p, q in zip(rows["fast_params"], rows["plain_params"]))


def test_soft_target_loss_keeps_no_extra_vocab_sized_tensor_for_backward() -> None:
    """Top-K, the designer's target and the soft CE add only (B, T, K)-sized state to what the
    ntp loss keeps for backward: no dense [B, T, vocab] target or second log-softmax."""
    from vpt.models.designer import DesignerConfig, TaskDesigner

    B, T, Vocab, K = 2, 16, 512, 8
    torch.manual_seed(0)
    designer = TaskDesigner(DesignerConfig(vocab_size=Vocab, n_layer=1, n_embd=16, n_head=2, K=K))
    ids = torch.randint(0, Vocab, (B, T))
    sh = Shifted.of(ids, ids, torch.float32)

    def saved_bytes(method: str) -> tuple[int, int]:
        logits = torch.randn(B, T, Vocab, requires_grad=True)
        saved: dict[int, int] = {}  # storage -> bytes: a tensor saved by several ops is kept once

        def pack(x: torch.Tensor) -> torch.Tensor:
            if x.data_ptr() != logits.data_ptr():  # the logits themselves: in both
                saved[x.data_ptr()] = x.numel() * x.element_size()
            return x

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
            targets = step_targets(method, logits, sh, K, 0.25, designer)
            loss, _ = learner_loss(logits, sh, targets)
        loss.backward()
        vocab_sized = sum(1 for s in saved.values() if s >= B * T * Vocab * 4)
        return sum(saved.values()), vocab_sized

    ntp_bytes, ntp_vocab = saved_bytes("ntp")
    for method in ("vpt", "uniform_smoothing", "self_distill"):
        got, vocab = saved_bytes(method)
        assert vocab <= ntp_vocab, method
        assert got - ntp_bytes <= 8 * B * T * (K + 1) * 8, (method, got, ntp_bytes)  # a few (B, T, 1+K) tensors


def test_designer_covers_a_padded_learner_vocabulary(world: dict) -> None:
    """Qwen-style learners have more output rows than tokens (151,936 vs 151,646): top-K
    candidates can be padding ids, which the designer must be able to embed."""
    tok = load_tokenizer(world["root"] / "tok")
    t = make(world, "padded", "vpt", steps=2)
    padded = {**ARCH, "vocab_size": len(tok) + 100}
    spec = RunSpec(run_dir=world["root"] / "padded2", packed_dir=world["root"] / "packed", tokenizer_path=str(world["root"] / "tok"),
                   architecture=padded, feedback_table=world["feedback"])
    torch.manual_seed(0)
    t = language_trainer(t.cfg, spec, device="cpu")
    with torch.no_grad():  # make every top-K candidate a padding id
        t.model.get_output_embeddings().bias = None
        t.model.lm_head.weight[len(tok):] *= 50
    assert t.designer.cfg.vocab_size == len(tok) + 100
    ids, _ = t.task.data.next()
    t.task.data.cursor = 0
    with torch.no_grad():
        assert (t.model(input_ids=ids).logits.topk(5, dim=-1).indices >= len(tok)).any()
    row = t.train_step()
    assert "value" in row and row["step"] == 1


def test_the_trainer_meta_step_ascends_the_value(world: dict) -> None:
    """The real Trainer's meta step raises V at the theta, batch and g_down it was computed with:
    fails if the sign of the ascent is flipped anywhere between the estimator and the optimizer."""
    from vpt.value.estimators import meta_gradient

    t = make(world, "ascent", "vpt", designer={"lr": 1e-3}, value={"scope_cache": False})
    values: list[float] = []
    real = t.designer_step

    def spy(objective, scope, g_down, generator, *args, **kwargs):  # the real update, then V again (theta unchanged)
        row = real(objective, scope, g_down, generator, *args, **kwargs)
        values.extend([row["value"], meta_gradient("finite_difference", objective, scope, g_down, t.d_params, 1e-3).value])
        return row

    t.designer_step = spy
    assert "value" in t.train_step()  # step 1 is a meta step
    before, after = values
    assert after > before + 1e-3 * abs(before), (before, after)
