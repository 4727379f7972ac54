"""The three meta-gradient estimators against each other and against brute force (float64)."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from vpt.models.designer import DesignerConfig, TaskDesigner
from vpt.language.objective import LanguageValueObjective, logits_of
from vpt.value.estimators import cosine_meta_gradient, meta_gradient
from vpt.value.flat import dot, norm
from vpt.value.scope import scope_parameters

V, K = 50, 6


def shifted_eval(dp: list[torch.Tensor], w: list[torch.Tensor], shift: float, fn):
    """fn() evaluated with the designer parameters moved to phi + shift * w, then put back."""
    with torch.no_grad():
        for p, d in zip(dp, w):
            p.add_(d, alpha=shift)
    try:
        return fn()
    finally:
        with torch.no_grad():
            for p, d in zip(dp, w):
                p.sub_(d, alpha=shift)


def rel(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return (norm([x - y for x, y in zip(a, b)]) / norm(b)).item()


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    # GPT-2 computes in the dtype it is given (Qwen2's norms upcast to float32), so float64 here is exact
    model = GPT2LMHeadModel(GPT2Config(vocab_size=V, n_embd=32, n_layer=3, n_head=4, n_positions=64,
                                       resid_pdrop=0, embd_pdrop=0, attn_pdrop=0, bos_token_id=0, eos_token_id=0))
    model = model.double().eval()
    designer = TaskDesigner(DesignerConfig(vocab_size=V, n_layer=2, n_embd=16, n_head=2, K=K)).double()
    torch.nn.init.normal_(designer.gate.weight, std=0.5)  # make alpha depend on the input
    ids = torch.randint(0, V, (3, 12))
    labels = ids.clone()
    labels[:, :4] = -100  # a prompt
    with torch.no_grad():
        cand = logits_of(model, ids).topk(K, dim=-1).indices
    scope = scope_parameters(model, "last:2")
    obj = LanguageValueObjective(model, scope, designer, ids, labels, cand)
    u = [torch.randn_like(p) * 1e-2 for _, p in scope]
    return model, designer, obj, scope, u


def test_estimators_agree(setup) -> None:
    _, designer, obj, scope, u = setup
    params, dp = [p for _, p in scope], list(designer.parameters())
    ref = meta_gradient("autograd", obj, params, u, dp)
    jvp = meta_gradient("jvp", obj, params, u, dp)
    fd = meta_gradient("finite_difference", obj, params, u, dp, fd_eps=1e-4)
    assert rel(jvp.grads, ref.grads) < 1e-6
    assert abs(jvp.value - ref.value) / abs(ref.value) < 1e-6
    assert rel(fd.grads, ref.grads) < 1e-3
    assert abs(fd.value - ref.value) / abs(ref.value) < 1e-3
    # the value is the plain dot product u^T grad_S L_pre
    g_pre = torch.autograd.grad(obj.loss(learner_graph=True), params)
    assert ref.value == pytest.approx(dot(u, g_pre).item(), rel=1e-10)


def test_finite_difference_leaves_parameters_exactly_as_they_were(setup) -> None:
    _, designer, obj, scope, u = setup
    before = [p.detach().clone() for _, p in scope]
    meta_gradient("finite_difference", obj, [p for _, p in scope], u, list(designer.parameters()), fd_eps=1e-2)
    assert all(torch.equal(a, p) for a, (_, p) in zip(before, scope))


def test_autograd_matches_brute_force_difference_over_phi(setup) -> None:
    """d/dh V(phi + h w) by central differences of V itself, for a random direction w in phi."""
    _, designer, obj, scope, u = setup
    params, dp = [p for _, p in scope], list(designer.parameters())
    ref = meta_gradient("autograd", obj, params, u, dp)
    w = [torch.randn_like(p) for p in dp]
    h = 1e-5

    def value_at(shift: float) -> float:
        return shifted_eval(dp, w, shift, lambda: dot(u, torch.autograd.grad(obj.loss(learner_graph=True), params)).item())

    numeric = (value_at(h) - value_at(-h)) / (2 * h)
    analytic = dot(ref.grads, w).item()
    assert numeric == pytest.approx(analytic, rel=1e-6)


@pytest.mark.parametrize("estimator", ["autograd", "jvp", "finite_difference"])
def test_cosine_variant_matches_brute_force(setup, estimator: str) -> None:
    _, designer, obj, scope, u = setup
    params, dp = [p for _, p in scope], list(designer.parameters())
    g_pre = torch.autograd.grad(obj.loss(learner_graph=True), params)
    mg = cosine_meta_gradient(estimator, obj, params, u, g_pre, dp, fd_eps=1e-4)
    assert mg.value == pytest.approx((dot(u, g_pre) / (norm(u) * norm(g_pre))).item(), rel=1e-3)
    w = [torch.randn_like(p) for p in dp]
    h = 1e-5

    def cos_at(shift: float) -> float:
        def cos() -> float:
            g = torch.autograd.grad(obj.loss(learner_graph=True), params)
            return (dot(u, g) / (norm(u) * norm(g))).item()

        return shifted_eval(dp, w, shift, cos)

    numeric = (cos_at(h) - cos_at(-h)) / (2 * h)
    assert dot(mg.grads, w).item() == pytest.approx(numeric, rel=1e-3)


def test_scope_selection() -> None:
    model = GPT2LMHeadModel(GPT2Config(vocab_size=V, n_embd=16, n_layer=4, n_head=2, n_positions=32))
    last2 = {n for n, _ in scope_parameters(model, "last:2")}
    assert last2 and all(n.startswith(("transformer.h.2.", "transformer.h.3.")) for n in last2)
    assert len(scope_parameters(model, "all")) == len(list(model.parameters()))
    from vpt.errors import VptError

    with pytest.raises(VptError, match="choose one of"):
        scope_parameters(model, "first:2")
    with pytest.raises(VptError, match="has 4 blocks"):
        scope_parameters(model, "last:9")


# ---------------------------------------------------------------------------- fast paths


def qwen2_setup():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(1)
    cfg = Qwen2Config(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=64, attn_implementation="eager")
    model = Qwen2ForCausalLM(cfg).double().eval()
    designer = TaskDesigner(DesignerConfig(vocab_size=V, n_layer=1, n_embd=16, n_head=2, K=K)).double()
    torch.nn.init.normal_(designer.gate.weight, std=0.5)
    ids = torch.randint(0, V, (2, 10))
    labels = ids.clone()
    labels[:, :3] = -100
    return model, designer, ids, labels


@pytest.mark.parametrize("model_kind", ["gpt2", "qwen2"])
@pytest.mark.parametrize("estimator", ["autograd", "jvp", "finite_difference"])
def test_scope_boundary_replay_matches_the_full_forward(setup, model_kind: str, estimator: str) -> None:
    """The fast path (meta-step forwards start at the scope from the kept activations) gives the
    plain path's numbers for every estimator, and leaves the model's blocks as they were."""
    from vpt.value.boundary import ScopeBoundary
    from vpt.value.scope import transformer_blocks

    if model_kind == "gpt2":
        model, designer, obj0, scope, u = setup
        ids, labels, cand = obj0.ids, None, obj0.cand
        labels = ids.clone()
        labels[:, :4] = -100
    else:
        model, designer, ids, labels = qwen2_setup()
        with torch.no_grad():
            cand = logits_of(model, ids).topk(K, dim=-1).indices
        scope = scope_parameters(model, "last:2")
        u = [torch.randn_like(p) * 1e-2 for _, p in scope]
    params, dp = [p for _, p in scope], list(designer.parameters())
    blocks_before = list(transformer_blocks(model))
    boundary = ScopeBoundary(model, "last:2")
    assert boundary.index == len(blocks_before) - 2
    with boundary.capture(ids):
        logits_of(model, ids)
    plain = LanguageValueObjective(model, scope, designer, ids, labels, cand)
    fast = LanguageValueObjective(model, scope, designer, ids, labels, cand, boundary)
    assert fast.boundary is boundary and plain.boundary is None
    calls: list[int] = []
    hook = blocks_before[0].register_forward_hook(lambda *_: calls.append(1))
    fast_out = fast.learner_outputs()
    assert not calls  # the blocks below the scope did not run ...
    assert torch.allclose(fast_out, plain.learner_outputs(), rtol=0, atol=1e-12)  # ... and nothing changed
    assert calls
    hook.remove()
    a = meta_gradient(estimator, plain, params, u, dp, fd_eps=1e-4)
    b = meta_gradient(estimator, fast, params, u, dp, fd_eps=1e-4)
    assert b.value == pytest.approx(a.value, rel=1e-9)
    assert rel(b.grads, a.grads) < 1e-9
    assert list(transformer_blocks(model)) == blocks_before
    # a boundary kept for another batch is never used
    assert LanguageValueObjective(model, scope, designer, ids.clone(), labels, cand, boundary).boundary is None


def test_fused_finite_difference_equals_the_two_sided_one(setup) -> None:
    _, designer, obj, scope, u = setup
    params, dp = [p for _, p in scope], list(designer.parameters())
    fused = meta_gradient("finite_difference", obj, params, u, dp, fd_eps=1e-4, fused=True)
    plain = meta_gradient("finite_difference", obj, params, u, dp, fd_eps=1e-4, fused=False)
    ref = meta_gradient("autograd", obj, params, u, dp)
    assert fused.value == pytest.approx(plain.value, rel=1e-9)
    assert rel(fused.grads, plain.grads) < 1e-9
    assert rel(fused.grads, ref.grads) < 1e-3


def test_feedback_graph_toward_the_scope_only_gives_the_same_gradient() -> None:
    from vpt.language.objective import ntp_loss
    from vpt.value.scope import graph_only_for

    model, _, ids, labels = qwen2_setup()
    scope = [p for _, p in scope_parameters(model, "last:1")]
    full = torch.autograd.grad(ntp_loss(model, ids, labels), scope)
    with graph_only_for(model, scope):
        assert sum(p.requires_grad for p in model.parameters()) == len(scope)
        loss = ntp_loss(model, ids, labels)
        fast = torch.autograd.grad(loss, scope)
    assert all(p.requires_grad for p in model.parameters())  # restored
    assert all(torch.equal(a, b) for a, b in zip(full, fast))
