"""DINO's parts against references: the loss and its center (brute force per pair, in numpy),
the EMA teacher, the schedules' endpoints, the projection head and the multi-crop views."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vpt.config import section_defaults
from vpt.errors import VptError
from vpt.losses.dino import DINOLoss
from vpt.train.schedule import cosine_to, linear_warmup
from vpt.vision.head import DINOHead
from vpt.vision.multicrop import MultiCropConfig, crop_box, multi_crop

torch.set_num_threads(1)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def _brute_loss(student: list[np.ndarray], teacher: list[np.ndarray], center: np.ndarray, ts: float, tt: float,
                skip_same: bool = True) -> float:
    """Per pair (g, v != g), per row, the cross-entropy written out element by element."""
    terms = []
    for g, t in enumerate(teacher):
        for v, s in enumerate(student):
            if v == g and skip_same:
                continue
            per_row = []
            for b in range(t.shape[0]):
                q = _softmax((t[b] - center) / tt)
                logp = np.log(_softmax(s[b] / ts))
                per_row.append(-sum(q[k] * logp[k] for k in range(len(q))))
            terms.append(np.mean(per_row))
    return float(np.mean(terms))


def test_dino_loss_equals_the_brute_force_pairs_with_the_center_and_the_same_view_skip() -> None:
    gen = torch.Generator().manual_seed(0)
    B, K, G, L = 3, 7, 2, 3
    student = [torch.randn(B, K, generator=gen, dtype=torch.float64) * 3 for _ in range(G + L)]
    teacher = [torch.randn(B, K, generator=gen, dtype=torch.float64) * 3 for _ in range(G)]
    loss = DINOLoss(K, student_temp=0.1, center_momentum=0.9).double()
    loss.center.copy_(torch.randn(1, K, generator=gen, dtype=torch.float64))
    got = loss(student, teacher, teacher_temp=0.04).item()
    s_np, t_np, c_np = [s.numpy() for s in student], [t.numpy() for t in teacher], loss.center[0].numpy()
    want = _brute_loss(s_np, t_np, c_np, 0.1, 0.04)
    assert got == pytest.approx(want, rel=1e-5)
    # the same-view pairs are skipped: counting them gives another number
    assert abs(_brute_loss(s_np, t_np, c_np, 0.1, 0.04, skip_same=False) - want) > 1e-3
    # the center matters (a zero center gives another loss)
    assert _brute_loss(s_np, t_np, 0 * c_np, 0.1, 0.04) != pytest.approx(got, rel=1e-3)
    # micro-batch shares (denominator = the whole batch) add up to the whole
    parts = sum(loss([s[r] for s in student], [t[r] for t in teacher], 0.04, denominator=B).item()
                for r in (slice(0, 1), slice(1, 3)))
    assert parts == pytest.approx(got, rel=1e-10)


def test_dino_loss_gradient_reaches_the_student_only() -> None:
    gen = torch.Generator().manual_seed(1)
    student = [torch.randn(2, 5, generator=gen, requires_grad=True) for _ in range(3)]
    teacher = [torch.randn(2, 5, generator=gen, requires_grad=True) for _ in range(2)]
    DINOLoss(5)(student, teacher, 0.04).backward()
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in student)
    assert all(t.grad is None for t in teacher)


def test_center_update_is_the_momentum_average_of_the_teacher_batch_mean() -> None:
    gen = torch.Generator().manual_seed(2)
    loss = DINOLoss(4, center_momentum=0.9).double()
    c0 = torch.randn(1, 4, generator=gen, dtype=torch.float64)
    loss.center.copy_(c0)
    teacher = [torch.randn(3, 4, generator=gen, dtype=torch.float64) for _ in range(2)]
    loss.update_center(teacher)
    rows = np.concatenate([t.numpy() for t in teacher])  # (6, 4)
    want = 0.9 * c0.numpy()[0] + 0.1 * rows.mean(axis=0)
    np.testing.assert_allclose(loss.center[0].numpy(), want, rtol=1e-12)
    assert "center" in loss.state_dict()  # a buffer: checkpointed with the learner


def test_ema_update_moves_the_teacher_toward_the_student_by_one_minus_m() -> None:
    from vpt.vision.dino import DinoLearner

    torch.manual_seed(0)
    backbone = torch.nn.Sequential(torch.nn.Linear(3, 4))  # any module: the EMA is per parameter
    learner = DinoLearner(backbone, DINOHead(4, 6, hidden_dim=5, bottleneck_dim=3), DINOLoss(6))
    assert all(torch.equal(a, b) for a, b in zip(learner.student.parameters(), learner.teacher.parameters()))
    assert not any(p.requires_grad for p in learner.teacher.parameters())
    with torch.no_grad():
        for p in learner.student.parameters():
            p.add_(torch.randn_like(p))
    before = [p.clone() for p in learner.teacher.parameters()]
    learner.update_teacher(0.75)
    for t0, s, t1 in zip(before, learner.student.parameters(), learner.teacher.parameters()):
        torch.testing.assert_close(t1, 0.75 * t0 + 0.25 * s, rtol=0, atol=1e-6)
    learner.train()
    assert learner.student.training and not learner.teacher.training


def test_schedules_endpoints_and_shapes() -> None:
    m = cosine_to(100, 0.996, 1.0)
    assert m.shape == (100,) and m[0] == pytest.approx(0.996) and m[-1] == pytest.approx(1.0)
    assert np.all(np.diff(m) >= 0) and m[50] == pytest.approx(0.998, abs=1e-4)  # the midpoint of a half cosine
    t = linear_warmup(10, 0.04, 0.07, 4)
    np.testing.assert_allclose(t, [0.04, 0.0475, 0.055, 0.0625, 0.07, 0.07, 0.07, 0.07, 0.07, 0.07])
    assert np.all(linear_warmup(5, 0.04, 0.07, 0) == 0.07)


def test_head_outputs_cosines_to_unit_prototypes() -> None:
    torch.manual_seed(0)
    head = DINOHead(8, 16, hidden_dim=12, bottleneck_dim=4)
    with torch.no_grad():
        head.last_layer.mul_(5.0)  # the prototypes' norms do not reach the logits
    out = head(torch.randn(5, 8))
    assert out.shape == (5, 16) and out.abs().max() <= 1 + 1e-5
    z = torch.nn.functional.normalize(head.mlp(torch.randn(1, 8)), dim=-1)
    assert torch.allclose(z.norm(), torch.tensor(1.0))


def _images(n: int, seed: int = 0, sizes: tuple[tuple[int, int], ...] = ((48, 40),)) -> list[torch.Tensor]:
    rng = np.random.default_rng(seed)
    return [torch.from_numpy(rng.integers(0, 256, (*sizes[i % len(sizes)], 3), dtype=np.uint8)) for i in range(n)]


def _crops() -> MultiCropConfig:
    ssl = section_defaults("vision", "ssl")
    ssl.update(global_crops=2, local_crops=3, global_size=32, local_size=16)
    return MultiCropConfig.from_ssl(ssl)


def test_multi_crop_shapes_and_determinism_under_a_seed() -> None:
    cfg, ims = _crops(), _images(4, sizes=((48, 40), (30, 64)))  # images of different sizes in one batch

    def views(seeds: list[int]) -> list[torch.Tensor]:
        g, loc = multi_crop(ims, cfg, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), [torch.Generator().manual_seed(s) for s in seeds])
        assert [tuple(x.shape) for x in g] == [(4, 3, 32, 32)] * 2 and [tuple(x.shape) for x in loc] == [(4, 3, 16, 16)] * 3
        return g + loc

    a, b, c = views([0, 1, 2, 3]), views([0, 1, 2, 3]), views([0, 1, 2, 9])
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert all(torch.isfinite(x).all() and x.min() >= -2 - 1e-6 and x.max() <= 2 + 1e-6 for x in a)  # (v - 0.5) / 0.25
    # image i's views depend on its own generator only
    assert all(torch.equal(x[:3], y[:3]) and not torch.equal(x[3], y[3]) for x, y in zip(a, c))
    assert not torch.equal(a[0], a[1])  # the two global views differ


def test_crop_box_is_inside_the_image_with_the_drawn_area() -> None:
    gen = torch.Generator().manual_seed(0)
    areas = []
    for _ in range(200):
        top, left, h, w = crop_box(60, 80, (0.2, 0.5), gen)
        assert 0 <= top and top + h <= 60 and 0 <= left and left + w <= 80 and h > 0 and w > 0
        areas.append(h * w / (60 * 80))
    assert 0.18 <= min(areas) and max(areas) <= 0.52  # rounding the sides moves the area a little


def test_full_view_without_photometrics_is_the_image_resized() -> None:
    """A crop of the whole image with no flip/jitter/gray is the bilinear resize of the image."""
    ssl = section_defaults("vision", "ssl")
    ssl.update(global_crops=1, local_crops=0, global_size=16, global_scale=[1.0, 1.0], flip_p=0.0, grayscale_p=0.0)
    ssl["color_jitter"]["p"] = 0.0
    cfg = MultiCropConfig.from_ssl(ssl)
    ims = _images(2, sizes=((32, 32),))  # square: the ratio draw may fail, the fallback is the full image
    (g,), _ = multi_crop(ims, cfg, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), [torch.Generator().manual_seed(i) for i in range(2)])
    x = torch.stack(ims).permute(0, 3, 1, 2).float() / 255.0
    want = torch.nn.functional.avg_pool2d(x, 2)  # a 2x downscale: each output pixel averages its 2x2 block
    torch.testing.assert_close(g, want, atol=1e-5, rtol=0)


def _brute_sinkhorn(logits: np.ndarray, temp: float, iterations: int) -> np.ndarray:
    """The SwAV/DINOv2 iteration written out on the (K, N) matrix, element by element sums."""
    q = np.exp(logits / temp).T  # (K, N)
    k, n = q.shape
    q = q / sum(q[i, j] for i in range(k) for j in range(n))
    for _ in range(iterations):
        for i in range(k):  # each prototype's row to 1 / K
            q[i] = q[i] / q[i].sum() / k
        for j in range(n):  # each sample's column to 1 / N
            q[:, j] = q[:, j] / q[:, j].sum() / n
    return (q * n).T  # (N, K): each sample's distribution over the prototypes


def test_sinkhorn_knopp_targets_equal_the_brute_force_iteration_over_all_global_crops() -> None:
    gen = torch.Generator().manual_seed(3)
    B, K, G, L = 4, 6, 2, 2
    student = [torch.randn(B, K, generator=gen, dtype=torch.float64) * 3 for _ in range(G + L)]
    teacher = [torch.randn(B, K, generator=gen, dtype=torch.float64) * 3 for _ in range(G)]
    loss = DINOLoss(K, student_temp=0.1, centering="sinkhorn_knopp", sk_iterations=3).double()
    joint = torch.cat(teacher).numpy()  # (G * B, K): one assignment over every global crop
    want_q = _brute_sinkhorn(joint, 0.04, 3)
    got_q = loss.teacher_targets(torch.cat(teacher), 0.04).numpy()
    np.testing.assert_allclose(got_q, want_q, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(got_q.sum(axis=1), 1.0, rtol=1e-12)
    # the loss is the cross-entropy of those targets over the pairs (g, v != g)
    q = [want_q[g * B:(g + 1) * B] for g in range(G)]
    logp = [np.log(np.stack([_softmax(row / 0.1) for row in s.numpy()])) for s in student]
    want = np.mean([-(q[g] * logp[v]).sum(axis=1).mean() for g in range(G) for v in range(G + L) if v != g])
    assert loss(student, teacher, 0.04).item() == pytest.approx(want, rel=1e-10)
    # per-crop assignments would be another number: the crops are normalised together
    per_crop = np.concatenate([_brute_sinkhorn(t.numpy(), 0.04, 3) for t in teacher])
    assert np.abs(per_crop - want_q).max() > 1e-3
    # no running state: update_center leaves the (unused) buffer alone
    loss.update_center(teacher)
    assert torch.equal(loss.center, torch.zeros(1, K, dtype=torch.float64))


def test_sinkhorn_knopp_balances_the_prototypes() -> None:
    """Near-collapse (every row's logits favour the last prototype) is what centering is for."""
    gen = torch.Generator().manual_seed(4)
    teacher = 0.1 * torch.randn(40, 8, generator=gen) + torch.linspace(0, 0.5, 8)  # (N, K)
    raw = torch.softmax(teacher / 0.04, dim=-1).sum(dim=0)  # (K,): mass per prototype, ~all on the last
    few = DINOLoss(8, centering="sinkhorn_knopp", sk_iterations=3).teacher_targets(teacher, 0.04)
    many = DINOLoss(8, centering="sinkhorn_knopp", sk_iterations=100).teacher_targets(teacher, 0.04)
    assert few.dtype == torch.float32 and torch.allclose(few.sum(dim=1), torch.ones(40), atol=1e-5)
    assert (raw - 5).abs().max() > 10 and (few.sum(dim=0) - 5).abs().max() < 0.1 * (raw - 5).abs().max()
    torch.testing.assert_close(many.sum(dim=0), torch.full((8,), 40 / 8), rtol=1e-4, atol=0)  # the limit: N / K each
    # cosine-like logits at a teacher temperature where float32 exp would overflow: still finite
    cos = torch.tanh(torch.randn(16, 8, generator=gen)) * 0.999
    sharp = DINOLoss(8, centering="sinkhorn_knopp").teacher_targets(cos, 0.005)
    assert torch.isfinite(sharp).all() and torch.allclose(sharp.sum(dim=1), torch.ones(16), atol=1e-5)


def test_softmax_centering_is_the_default_and_unchanged() -> None:
    gen = torch.Generator().manual_seed(5)
    student = [torch.randn(3, 5, generator=gen) * 3 for _ in range(4)]
    teacher = [torch.randn(3, 5, generator=gen) * 3 for _ in range(2)]
    default, explicit = DINOLoss(5), DINOLoss(5, centering="softmax", sk_iterations=7)
    c = torch.randn(1, 5, generator=gen)
    default.center.copy_(c)
    explicit.center.copy_(c)
    assert torch.equal(default(student, teacher, 0.04), explicit(student, teacher, 0.04))
    for t in teacher:  # the targets are the centred softmax, bit for bit
        assert torch.equal(explicit.teacher_targets(t, 0.04), torch.softmax((t - c) / 0.04, dim=-1))
    explicit.update_center(teacher)
    assert not torch.equal(explicit.center, c)


def test_unknown_centering_names_the_key_and_the_choices() -> None:
    with pytest.raises(VptError, match=r"vision\.ssl\.centering.*softmax, sinkhorn_knopp"):
        DINOLoss(4, centering="sk")
    with pytest.raises(VptError, match=r"vision\.ssl\.sk_iterations"):
        DINOLoss(4, centering="sinkhorn_knopp", sk_iterations=0)
