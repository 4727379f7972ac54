"""The probes on synthetic frozen features: a label that is a linear function of the features is
learnt (positive control), a label independent of them stays at chance on held-out data
(negative control), and the same seed trains the same head."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vpt.vision import probes
from vpt.vision.eval.metrics import IGNORE, SegmentationScores, depth_metrics, mean_depth_metrics

torch.set_num_threads(1)
CPU = torch.device("cpu")
D, C = 16, 4


def settings(**kw: float) -> dict:
    return {"epochs": 20, "lr": 1e-2, "weight_decay": 0.0, "probe_batch_size": 64, "seed": 0, **kw}


def outputs(head: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([o for _, o in probes.predict(head, x, 256, CPU)])


def split(*ts: torch.Tensor, n: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    return [t[:n] for t in ts], [t[n:] for t in ts]


# --------------------------------------------------------------------------- classification


def _cls_data(informative: bool, n: int = 2500) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, D, generator=g) * 3 + 1  # off-centre, scaled: the BN has work to do
    y = (x @ torch.randn(D, C, generator=g)).argmax(1) if informative else torch.randint(0, C, (n,), generator=g)
    return x, y


@pytest.mark.parametrize("informative", [True, False])
def test_linear_classifier_controls(informative: bool) -> None:
    (x, y), (xt, yt) = split(*_cls_data(informative), n=2000)
    head, losses = probes.train_probe(lambda: probes.LinearClsHead(D, C), x, y, F.cross_entropy,
                                      settings(lr=0.1, probe_batch_size=128), CPU)
    acc = float((outputs(head, xt).argmax(1) == yt).float().mean())
    if informative:
        assert acc > 0.95 and losses[-1] < losses[0]
    else:  # 500 held-out examples: chance 0.25, binomial sd ~0.02
        assert abs(acc - 1 / C) < 0.07


def test_same_seed_same_head_and_the_callers_rng_is_left_alone() -> None:
    x, y = _cls_data(True, 300)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a, la = probes.train_probe(lambda: probes.LinearClsHead(D, C), x, y, F.cross_entropy, settings(epochs=2), CPU)
    assert torch.equal(torch.get_rng_state(), state)
    b, lb = probes.train_probe(lambda: probes.LinearClsHead(D, C), x, y, F.cross_entropy, settings(epochs=2), CPU)
    c, _ = probes.train_probe(lambda: probes.LinearClsHead(D, C), x, y, F.cross_entropy, settings(epochs=2, seed=1), CPU)
    assert la == lb and torch.equal(a.linear.weight, b.linear.weight) and not torch.equal(a.linear.weight, c.linear.weight)


# --------------------------------------------------------------------------- segmentation


def _grid(n: int, g: torch.Generator) -> torch.Tensor:
    return (torch.randn(n, D, 6, 6, generator=g) * 2 + 0.5).to(torch.float16)  # cached like the patch features


@pytest.mark.parametrize("informative", [True, False])
def test_segmentation_probe_controls(informative: bool) -> None:
    g = torch.Generator().manual_seed(2)
    x = _grid(240, g)
    w = torch.randn(D, C, generator=g)
    if informative:
        y = torch.einsum("ndhw,dc->nchw", x.float(), w).argmax(1).to(torch.uint8)  # (N, h, w) on the patch grid
    else:
        y = torch.randint(0, C, (240, 6, 6), generator=g).to(torch.uint8)
    y[:, 0, 0] = IGNORE  # void pixels: ignored by loss and score
    (xtr, ytr), (xt, yt) = split(x, y, n=180)
    head, _ = probes.train_probe(lambda: probes.LinearSegHead(D, C, dropout=0.1), xtr, ytr, probes.segmentation_loss,
                                 settings(probe_batch_size=16, epochs=25, lr=3e-2), CPU)
    scores = SegmentationScores(C)
    for pred, gt in zip(outputs(head, xt).argmax(1), yt):
        scores.add(pred.to(torch.uint8).numpy(), gt.numpy())
    res = scores.result()
    if informative:
        assert res["miou"] > 0.9
    else:  # 60 x 35 held-out pixels: chance pixel accuracy 0.25
        assert abs(res["pixel_acc"] - 1 / C) < 0.05 and res["miou"] < 0.2


def test_segmentation_loss_upsamples_and_ignores_void() -> None:
    logits = torch.randn(2, C, 3, 3)
    labels = torch.randint(0, C, (2, 6, 6)).to(torch.uint8)
    labels[0] = IGNORE
    up = F.interpolate(logits, size=(6, 6), mode="bilinear", align_corners=False)
    ref = F.cross_entropy(up[1:], labels[1:].long())
    assert probes.segmentation_loss(logits, labels) == pytest.approx(float(ref), rel=1e-6)
    assert float(probes.segmentation_loss(logits, torch.full((2, 6, 6), IGNORE, dtype=torch.uint8))) == 0.0


# --------------------------------------------------------------------------- depth


@pytest.mark.parametrize("informative", [True, False])
def test_depth_probe_controls(informative: bool) -> None:
    lo, hi = 1e-3, 10.0
    g = torch.Generator().manual_seed(3)
    x = _grid(200, g)
    if informative:  # depth a sigmoid of a linear function of the features: what the head can represent
        z = torch.einsum("ndhw,d->nhw", x.float(), torch.randn(D, generator=g) / 4)
        y = lo + (hi - lo) * torch.sigmoid(z)
    else:
        y = torch.rand(200, 6, 6, generator=g) * 8 + 1
    y[:, 0, 0] = 0.0  # invalid pixels
    (xtr, ytr), (xt, yt) = split(x, y, n=150)
    head, _ = probes.train_probe(lambda: probes.DepthHead(D, lo, hi), xtr, ytr, probes.depth_loss(lo, hi),
                                 settings(probe_batch_size=16, epochs=15), CPU)
    pred = outputs(head, xt)[:, 0]
    res = mean_depth_metrics([depth_metrics(p.numpy(), t.numpy(), lo, hi, False) for p, t in zip(pred, yt)])
    valid = yt > lo
    mean_rmse = mean_depth_metrics([depth_metrics(np.full(t.shape, float(ytr[ytr > lo].mean()), np.float32), t.numpy(), lo, hi, False)
                                    for t in yt])["rmse"]
    if informative:
        assert res["rmse"] < 0.15 * mean_rmse and res["delta1"] > 0.95
    else:  # no better than the train mean on held-out images
        assert res["rmse"] > 0.9 * mean_rmse
    assert float(pred.min()) >= lo and float(pred.max()) <= hi and valid.any()
