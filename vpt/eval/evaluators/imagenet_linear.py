"""ImageNet-1k linear probe: BatchNorm1d(affine=False) + Linear on the frozen CLS token (the
DINOv3 global feature; the register tokens and the patch mean are not used); top-1 accuracy.

Train and evaluation images get the same deterministic view, resize of the shorter side to
resolution / center_crop and the central resolution x resolution crop: features are extracted
once and cached, so there is no training augmentation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vpt.eval.registry import TASK_REGISTRY, Config, NativeTask, Row


def _needs(e: Config) -> list[tuple[str, str, str]]:
    s = e["imagenet_linear"]
    return [("eval.imagenet_linear", s["dataset"], s["train_split"]), ("eval.imagenet_linear", s["dataset"], s["split"])]


def _labels(df: Any, path: Path, c: int) -> Any:
    import torch

    from vpt.errors import VptError

    y = torch.as_tensor(df["label"].to_numpy().astype("int64"))
    bad = (y < 0) | (y >= c)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise VptError(f"{path} row {df['id'].iat[i]!r}: label {int(y[i])} outside 0..{c - 1} (datasets num_classes {c})")
    return y


def _evaluate(cfg: Config, model_dir: Path, device: str) -> tuple[dict[str, Any], list[Row]]:
    import torch.nn.functional as F

    from vpt.vision import probes
    from vpt.vision.eval.features import Evaluation, center_crop, decoded, num_classes, read_split
    from vpt.vision.images import decode_rgb

    s = cfg["eval"]["imagenet_linear"]
    run = Evaluation("imagenet_linear", s, model_dir, device)
    c, size = num_classes(cfg, s["dataset"]), run.size()

    def cls(split: str, limit: int | None) -> tuple[Any, Any, Any]:
        df, path = read_split(cfg, s["dataset"], split, limit)
        views = (center_crop(im, size, s["center_crop"]) for im in decoded(df, "image", path, decode_rgb))
        return df, run.features(views, ("cls",), len(df))["cls"], _labels(df, path, c)

    train, x, y = cls(s["train_split"], s["train_limit"])
    head, losses = probes.train_probe(lambda: probes.LinearClsHead(x.shape[1], c), x, y, F.cross_entropy, s, run.device)
    val, xv, yv = cls(s["split"], s["limit"])
    rows = []
    for idx, logits in probes.predict(head, xv, s["probe_batch_size"], run.device):
        for i, pred in zip(idx, logits.argmax(1).tolist()):  # one device sync per batch
            rows.append({"id": val["id"].iat[i], "label": int(yv[i]), "prediction": pred, "correct": pred == int(yv[i])})
    top1 = sum(r["correct"] for r in rows) / len(rows) if rows else None
    return run.summary(len(rows), {"top1": top1, "train_examples": len(train), "train_loss": losses}), rows


TASK_REGISTRY.register("imagenet_linear", NativeTask(
    "ImageNet linear probe (BN + linear) on the frozen CLS token; top-1 accuracy",
    ("imagenet_linear",), _needs, _evaluate))
