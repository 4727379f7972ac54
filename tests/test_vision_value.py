"""The vision value objective (vpt.vision.objective) on a tiny DINOv3-architecture ViT in float64:
the three estimators agree with the language tests' tolerances, `autograd` agrees with a
brute-force central difference of V over phi, for both mask designers, and the finite difference
leaves the learner exactly as it was."""

from __future__ import annotations

import pytest
import torch

from vpt.config import section_defaults
from vpt.losses.dino import DINOLoss
from vpt.value.estimators import meta_gradient
from vpt.value.flat import dot, norm
from vpt.value.scope import scope_parameters
from vpt.vision.backbone import create_backbone
from vpt.vision.dino import DinoLearner
from vpt.vision.head import DINOHead
from vpt.vision.masks import MaskDesignerConfig, build_mask_designer
from vpt.vision.objective import VisionValueObjective

from test_value import shifted_eval

torch.set_num_threads(1)

ARCH = {"embed_dim": 32, "depth": 2, "num_heads": 2, "patch_size": 8, "img_size": 32, "init_values": 1.0}


def rel(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return (norm([x - y for x, y in zip(a, b)]) / norm(b)).item()


def _designer(kind: str) -> torch.nn.Module:
    section = section_defaults("vision", "designer")
    section.update(kind=kind, unet={"base_channels": 4, "depth": 2}, sit={"dim": 16, "layers": 1, "heads": 2, "patch_size": 8})
    designer = build_mask_designer(MaskDesignerConfig.from_section(section), 32).double()
    with torch.no_grad():  # away from the constant initial mask, so that phi changes what the student sees
        for p in designer.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return designer


@pytest.fixture(scope="module", params=["unet", "sit"])
def setup(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    backbone = create_backbone({"timm": "vit_base_patch16_dinov3", "architecture": ARCH})
    learner = DinoLearner(backbone, DINOHead(32, 16, 32, 8), DINOLoss(16)).double()
    learner.loss.center.normal_(std=0.1)
    designer = _designer(request.param)
    globals_ = [torch.randn(3, 3, 32, 32, dtype=torch.float64) for _ in range(2)]
    locals_ = [torch.randn(3, 3, 16, 16, dtype=torch.float64) for _ in range(2)]
    with torch.no_grad():
        teacher = learner.teacher(globals_)
    scope = scope_parameters(learner, "last:1")
    obj = VisionValueObjective(learner, scope, designer, globals_, locals_, teacher, 0.05, 3, mask_all=False)
    u = [torch.randn_like(p) * 1e-2 for _, p in scope]
    return learner, designer, obj, scope, u


def test_scope_is_the_students_last_blocks(setup) -> None:  # type: ignore[no-untyped-def]
    _, _, _, scope, _ = setup
    names = [n for n, _ in scope]
    assert names and all(n.startswith("student.backbone.blocks.1.") for n in names)


def test_estimators_agree(setup) -> None:  # type: ignore[no-untyped-def]
    _, designer, obj, scope, u = setup
    params, dp = [p for _, p in scope], list(designer.parameters())
    ref = meta_gradient("autograd", obj, params, u, dp)
    jvp = meta_gradient("jvp", obj, params, u, dp)
    fd = meta_gradient("finite_difference", obj, params, u, dp, fd_eps=1e-4)
    assert rel(jvp.grads, ref.grads) < 1e-6 and abs(jvp.value - ref.value) / abs(ref.value) < 1e-6
    assert rel(fd.grads, ref.grads) < 1e-3 and abs(fd.value - ref.value) / abs(ref.value) < 1e-3
    g_pre = torch.autograd.grad(obj.loss(learner_graph=True), params)
    assert ref.value == pytest.approx(dot(u, g_pre).item(), rel=1e-10)  # V is u^T grad_S L_pre
    assert norm(ref.grads).item() > 0


def test_autograd_matches_brute_force_difference_over_phi(setup) -> None:  # type: ignore[no-untyped-def]
    """d/dh V(phi + h w) by central differences of V itself, for a random direction w in phi."""
    _, designer, obj, scope, u = setup
    params, dp = [p for _, p in scope], list(designer.parameters())
    ref = meta_gradient("autograd", obj, params, u, dp)
    w = [torch.randn_like(p) for p in dp]
    h = 1e-5

    def value_at(shift: float) -> float:
        return shifted_eval(dp, w, shift, lambda: dot(u, torch.autograd.grad(obj.loss(learner_graph=True), params)).item())

    numeric = (value_at(h) - value_at(-h)) / (2 * h)
    assert numeric == pytest.approx(dot(ref.grads, w).item(), rel=1e-6)


def test_finite_difference_leaves_the_learner_and_its_modes_as_they_were(setup) -> None:  # type: ignore[no-untyped-def]
    learner, designer, obj, scope, u = setup
    learner.train()
    before = {k: v.clone() for k, v in learner.state_dict().items()}
    meta_gradient("finite_difference", obj, [p for _, p in scope], u, list(designer.parameters()), fd_eps=1e-2)
    assert all(torch.equal(before[k], v) for k, v in learner.state_dict().items())
    assert learner.student.training and not learner.teacher.training
    assert all(p.requires_grad for p in learner.student.parameters())
