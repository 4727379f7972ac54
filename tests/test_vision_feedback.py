"""The dense feedback evaluators (vpt.vision.feedback) on a tiny timm ViT and tiny pool tables in
the download stage's columns: pools decoded like the frozen-backbone evaluators, a head that
learns (positive control), micro-batch losses and gradients that add up to the batch's and match
a brute-force reference built from vpt.vision.probes, the head left alone by losses(), labels
that matter, an exact checkpoint round trip, and errors that name the file and row."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from vpt.config import section_defaults
from vpt.dist import gradient_by_backward
from vpt.errors import VptError
from vpt.value.meta import downstream_gradient
from vpt.vision import probes
from vpt.vision.backbone import create_backbone, normalisation, tokens
from vpt.vision.eval.metrics import IGNORE
from vpt.vision.feedback import DenseFeedback, build_feedback, load_pool
from vpt.vision.images import encode_depth, encode_png

torch.set_num_threads(1)
ARCH = {"embed_dim": 32, "depth": 2, "num_heads": 2, "patch_size": 8, "img_size": 32, "drop_path_rate": 0.2}
C, SIZE, LO, HI = 4, 32, 1e-3, 10.0
PALETTE = np.array([[0, 0, 0], [230, 40, 40], [40, 200, 60], [50, 60, 220], [240, 230, 60]])  # by raw id


def _scene(rng: np.random.Generator, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """16 x 16 blocks (2 x 2 patches) of one raw class each (0 = void), coloured by the class, plus noise."""
    blocks = rng.integers(0, C + 1, size=(hw[0] // 16 + 1, hw[1] // 16 + 1))
    raw = np.kron(blocks, np.ones((16, 16), dtype=np.int64))[: hw[0], : hw[1]].astype(np.uint8)
    image = np.clip(PALETTE[raw] + rng.normal(0, 10, size=(*hw, 3)), 0, 255).astype(np.uint8)
    return image, raw


def _table(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{"id": f"{path.parent.name}/train/{i}", **r} for i, r in enumerate(rows)]).to_parquet(path)
    return path


def _seg_rows(n: int, seed: int, hw: tuple[int, int] = (32, 32)) -> list[dict[str, Any]]:
    rng, rows = np.random.default_rng(seed), []
    for i in range(n):
        size = (40, 48) if i == 1 else hw  # one row resized down to SIZE
        image, raw = _scene(rng, size)
        rows.append({"image": encode_png(image), "label": encode_png(raw), "scene_category": 0, "height": size[0], "width": size[1]})
    return rows


def _depth_rows(n: int, seed: int, empty: int | None = None) -> list[dict[str, Any]]:
    """Depth a function of the block's colour; 10 % invalid pixels; row `empty` has none valid."""
    rng, rows = np.random.default_rng(seed), []
    for i in range(n):
        image, raw = _scene(rng, (32, 32))
        depth = (1.0 + 1.5 * raw).astype(np.float32)
        depth[rng.random(depth.shape) < 0.1] = 0.0
        if i == empty:
            depth[:] = 0.0
        rows.append({"image": encode_png(image), "depth": encode_depth(depth), "height": 32, "width": 32})
    return rows


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("feedback") / "data"
    raw = root / "raw"
    tables = {
        ("ade20k", "feedback_train"): _table(raw / "ade20k" / "feedback_train.parquet", _seg_rows(24, 0)),
        ("ade20k", "feedback_meta"): _table(raw / "ade20k" / "feedback_meta.parquet", _seg_rows(8, 1)),
        ("nyuv2", "feedback_train"): _table(raw / "nyuv2" / "feedback_train.parquet", _depth_rows(24, 2)),
        ("nyuv2", "feedback_meta"): _table(raw / "nyuv2" / "feedback_meta.parquet", _depth_rows(8, 3, empty=2)),
    }
    torch.manual_seed(0)
    backbone = create_backbone({"timm": "vit_base_patch16_dinov3", "architecture": ARCH}).double()
    mean, std = normalisation(backbone)
    pools = {k: load_pool(p, "segmentation" if k[0] == "ade20k" else "depth", SIZE, mean, std, C) for k, p in tables.items()}
    return {"root": root, "tables": tables, "backbone": backbone, "mean": mean, "std": std, "pools": pools}


def _evaluator(world: dict[str, Any], kind: str, **kw: Any) -> DenseFeedback:
    name = "ade20k" if kind == "segmentation" else "nyuv2"
    p = world["pools"]
    args: dict[str, Any] = {"batch_size": 8, "head_steps": 2, "head_lr": 1e-2, "micro_batch": None, "dtype": torch.float64,
                            "min_depth": LO, "max_depth": HI, "num_classes": C, **kw}
    return DenseFeedback(name, kind, 1.0, world["backbone"], p[name, "feedback_train"], p[name, "feedback_meta"], **args)


def _gen(seed: int = 7) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _scope(backbone: torch.nn.Module) -> list[torch.nn.Parameter]:
    return list(backbone.blocks[-1].parameters())


# --------------------------------------------------------------------------- pools


def test_pools_decode_like_the_evaluators(world: dict[str, Any]) -> None:
    images, labels = world["pools"]["ade20k", "feedback_train"]
    assert images.shape == (24, 3, SIZE, SIZE) and images.dtype == torch.float32
    assert labels.shape == (24, SIZE, SIZE) and labels.dtype == torch.uint8
    df = pd.read_parquet(world["tables"]["ade20k", "feedback_train"])
    for row in (0, 1):  # 32 x 32 as is; 40 x 48 resized
        raw = np.asarray(Image.open(io.BytesIO(df["label"].iat[row])).resize((SIZE, SIZE), Image.NEAREST)).astype(np.int64)
        ref = np.where(raw == 0, IGNORE, raw - 1)  # reduce_zero_label by hand
        assert np.array_equal(labels[row].numpy(), ref)
        rgb = np.asarray(Image.open(io.BytesIO(df["image"].iat[row])).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR))
        x = (rgb / 255.0 - np.array(world["mean"])) / np.array(world["std"])
        np.testing.assert_allclose(images[row].permute(1, 2, 0).numpy(), x, atol=1e-5)
    depth = world["pools"]["nyuv2", "feedback_meta"][1]
    assert depth.dtype == torch.float32 and float(depth[2].abs().max()) == 0.0
    src = set(np.unique(1.0 + 1.5 * np.arange(C + 1)).tolist()) | {0.0}
    assert set(np.unique(depth.numpy()).tolist()) <= src  # nearest: no interpolated depths; 0 stays invalid


# --------------------------------------------------------------------------- learning


def _chance(world: dict[str, Any], kind: str) -> float:
    """The loss of the best prediction that ignores the image: uniform logits (CE = log C), or
    one constant depth per image (SILog = the std of its log depth when the mean error is 0)."""
    if kind == "segmentation":
        return float(np.log(C))
    depth = world["pools"]["nyuv2", "feedback_train"][1]
    return float(np.mean([torch.log(d[(d > LO) & (d <= HI)]).std(unbiased=False) for d in depth if ((d > LO) & (d <= HI)).any()]))


@pytest.mark.parametrize("kind", ["segmentation", "depth"])
def test_update_head_lowers_the_head_loss(world: dict[str, Any], kind: str) -> None:
    ev, gen = _evaluator(world, kind, head_steps=4, head_lr=3e-2), _gen()
    history = [ev.update_head(gen)["head_loss"] for _ in range(8)]
    assert history[-1] < 0.7 * history[0] and history[-1] < 0.5 * _chance(world, kind), history


# --------------------------------------------------------------------------- the batch's loss


def _reference(world: dict[str, Any], ev: DenseFeedback, seed: int) -> torch.Tensor:
    """The full-batch loss by brute force: the rows the generator draws, probes' own losses."""
    images, target = ev.meta_pool
    idx = torch.randperm(len(images), generator=_gen(seed))[: ev.batch_size]
    backbone = world["backbone"].eval()
    feats = tokens(backbone, images[idx].double())["patch"].permute(0, 3, 1, 2)
    with torch.no_grad():
        out = ev.head.eval()(feats)
    if ev.kind == "segmentation":
        return probes.segmentation_loss(out, target[idx])
    gt = target[idx].double()  # the pool keeps float32 metres; log them in float64 like the evaluator
    per_image = [probes.depth_loss(LO, HI)(out[i:i + 1], gt[i:i + 1]) for i in range(len(idx))]
    return torch.stack(per_image).mean()


def _loss_and_grad(ev: DenseFeedback, backbone: torch.nn.Module, seed: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    total, grads = torch.zeros((), dtype=torch.float64), None
    for loss in ev.losses(_gen(seed)):
        g = torch.autograd.grad(loss, _scope(backbone))
        total, grads = total + loss.detach(), list(g) if grads is None else [a + b for a, b in zip(grads, g)]
    assert grads is not None
    return total, grads


@pytest.mark.parametrize("kind", ["segmentation", "depth"])
def test_micro_batches_add_up_to_the_batch_and_match_the_reference(world: dict[str, Any], kind: str) -> None:
    backbone = world["backbone"]
    ev = _evaluator(world, kind)
    ev.update_head(_gen(1))  # BatchNorm running statistics away from their initial values
    assert len(list(ev.losses(_gen(3)))) == 1  # micro_batch None: the whole batch in one forward
    whole, g_whole = _loss_and_grad(ev, backbone, 3)
    ev.micro_batch = 3
    assert len(list(ev.losses(_gen(3)))) == 3  # 3 + 3 + 2 rows
    split, g_split = _loss_and_grad(ev, backbone, 3)
    torch.testing.assert_close(split, whole, rtol=1e-12, atol=1e-14)
    for a, b in zip(g_split, g_whole):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(whole, _reference(world, ev, 3).detach(), rtol=1e-10, atol=1e-13)
    assert any(float(g.abs().max()) > 0 for g in g_whole)


def test_losses_leave_the_head_alone_and_restore_the_modes(world: dict[str, Any]) -> None:
    backbone = world["backbone"].train()
    ev = _evaluator(world, "segmentation", micro_batch=4)
    ev.update_head(_gen(1))
    ev.head.train()  # a mode losses() must not keep (it evaluates in eval mode) nor leave changed
    for p in ev.head.parameters():
        p.grad = torch.ones_like(p)
    before = {k: v.clone() for k, v in ev.head.state_dict().items()}
    by_grad = _loss_and_grad(ev, backbone, 2)[1]
    by_backward = gradient_by_backward(lambda: ev.losses(_gen(2)), _scope(backbone), backbone)  # FSDP's .grad path
    for a, b in zip(by_grad, by_backward):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)
    assert all(m.training for m in backbone.modules())  # eval inside, train mode restored
    assert ev.head.training and all(p.requires_grad for p in ev.head.parameters())
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in ev.head.parameters())
    assert all(torch.equal(v, before[k]) for k, v in ev.head.state_dict().items())  # BN running stats too
    assert all(p.grad is None for p in backbone.parameters())


# --------------------------------------------------------------------------- determinism, labels


def test_same_generator_same_loss_and_labels_matter(world: dict[str, Any]) -> None:
    backbone = world["backbone"].train()  # drop path on outside: losses() must still be deterministic
    half = _evaluator(world, "depth", batch_size=4)  # 4 of the 8 meta rows
    a, b = _loss_and_grad(half, backbone, 4), _loss_and_grad(half, backbone, 4)
    assert torch.equal(a[0], b[0]) and all(torch.equal(x, y) for x, y in zip(a[1], b[1]))
    assert not torch.equal(a[0], _loss_and_grad(half, backbone, 5)[0])  # another draw, another batch
    ev = _evaluator(world, "depth")
    images, target = ev.meta_pool
    perm = torch.roll(torch.arange(len(target)), 1)
    same = _evaluator(world, "depth")
    shuffled = DenseFeedback("nyuv2", "depth", 1.0, backbone, ev.train_pool, (images, target[perm]), 8, 2, 1e-2,
                             dtype=torch.float64, min_depth=LO, max_depth=HI)
    g = {k: downstream_gradient([e], backbone, _scope(backbone), _gen(6))[0] for k, e in (("a", ev), ("same", same), ("perm", shuffled))}
    assert all(torch.equal(x, y) for x, y in zip(g["a"], g["same"]))
    diff = sum(float((x - y).norm()) for x, y in zip(g["a"], g["perm"]))
    assert diff > 1e-3 * sum(float(x.norm()) for x in g["a"])


def test_state_dict_round_trip_is_exact(world: dict[str, Any]) -> None:
    a = _evaluator(world, "segmentation")
    a.update_head(_gen(1))
    a.update_head(_gen(2))
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    b = _evaluator(world, "segmentation", seed=1)
    assert not torch.equal(a.head.conv.weight, b.head.conv.weight)
    b.load_state_dict(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    for p in b.head.parameters():  # what g_down's backward under FSDP may leave: zeroed before each step
        p.grad = torch.full_like(p, 1e3)
    assert a.update_head(_gen(3)) == b.update_head(_gen(3))
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa["head"][k], sb["head"][k]) for k in sa["head"])
    assert torch.equal(torch.stack([x.detach() for x in a.losses(_gen(4))]), torch.stack([x.detach() for x in b.losses(_gen(4))]))
    with pytest.raises(VptError, match="depth"):
        _evaluator(world, "depth").load_state_dict(sa)


# --------------------------------------------------------------------------- errors, config


def test_bad_pools_name_the_file_and_row(world: dict[str, Any], tmp_path: Path) -> None:
    mean, std = world["mean"], world["std"]
    missing = tmp_path / "raw" / "ade20k" / "feedback_meta.parquet"
    with pytest.raises(VptError, match=re.escape(str(missing))):
        load_pool(missing, "segmentation", SIZE, mean, std, C)
    rows = _seg_rows(3, 9)
    rows[2]["label"] = encode_png(np.full((32, 32), C + 1, dtype=np.uint8))
    bad = _table(tmp_path / "raw" / "ade20k" / "bad.parquet", rows)
    with pytest.raises(VptError, match=rf"{re.escape(str(bad))}.*row 'ade20k/train/2'.*label id {C + 1} > .*num_classes {C}"):
        load_pool(bad, "segmentation", SIZE, mean, std, C)
    rows = _seg_rows(3, 9)
    rows[1]["label"] = encode_png(np.ones((32, 24), dtype=np.uint8))
    with pytest.raises(VptError, match=r"row 'ade20k/train/1'.*label 24x32 does not match image 48x40"):
        load_pool(_table(tmp_path / "raw" / "ade20k" / "size.parquet", rows), "segmentation", SIZE, mean, std, C)
    rows = _depth_rows(2, 9)
    rows[0]["image"] = b"not an image"
    with pytest.raises(VptError, match=r"row 'nyuv2/train/0', column 'image'"):
        load_pool(_table(tmp_path / "raw" / "nyuv2" / "img.parquet", rows), "depth", SIZE, mean, std)
    with pytest.raises(VptError, match="exceeds the 8 rows"):
        _evaluator(world, "depth", batch_size=9)


def _config(world: dict[str, Any], ade: float, nyu: float, resolution: int = SIZE) -> dict[str, Any]:
    task = {"dataset": "", "train_split": "feedback_train", "meta_split": "feedback_meta"}
    return {"data_dir": str(world["root"]), "datasets": {"ade20k": {"num_classes": C}}, "eval": section_defaults("eval"),
            "vision": {"feedback": {"resolution": resolution, "batch_size": 8, "head_steps": 1, "head_lr": 1e-2,
                                    "tasks": {"ade20k": {**task, "dataset": "ade20k", "weight": ade},
                                              "nyuv2": {**task, "dataset": "nyuv2", "weight": nyu}}}}}


def test_build_feedback_from_the_config(world: dict[str, Any]) -> None:
    backbone, mean, std = world["backbone"], world["mean"], world["std"]
    evs = build_feedback(_config(world, 2.0, 0.5), backbone, mean, std, "cpu", torch.float64, None)
    assert [(e.name, e.kind, e.weight) for e in evs] == [("ade20k", "segmentation", 2.0), ("nyuv2", "depth", 0.5)]
    assert torch.equal(evs[0].meta_pool[1], world["pools"]["ade20k", "feedback_meta"][1])
    assert (evs[1].head.min_depth, evs[1].head.max_depth) == (LO, HI)  # from eval.nyuv2
    only = build_feedback(_config(world, 0.0, 1.0), backbone, mean, std, "cpu", torch.float64, 4)
    assert [e.name for e in only] == ["nyuv2"] and only[0].micro_batch == 4
    with pytest.raises(VptError, match="every task has weight 0"):
        build_feedback(_config(world, 0.0, 0.0), backbone, mean, std, "cpu", torch.float64, None)
    with pytest.raises(VptError, match="vision.feedback.resolution"):
        build_feedback(_config(world, 1.0, 1.0, resolution=36), backbone, mean, std, "cpu", torch.float64, None)
