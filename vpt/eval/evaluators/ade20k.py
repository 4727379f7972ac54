"""ADE20K semantic segmentation: a linear (Dropout2d -> BN -> 1x1 conv) probe on the frozen
patch tokens, mIoU over the whole split (vpt.vision.eval.metrics).

Images are resized to eval.ade20k.resolution (square: the aspect ratio is not kept, so a
batch is one tensor); train labels are resized nearest to the same size and the probe's logits
are bilinearly upsampled to them; at evaluation the logits are upsampled to each image's own
label size. Labels follow reduce_zero_label (raw 0 = void -> ignored, 1..C -> 0..C-1).

`ade20k_tuning` is the same probe scored on eval.ade20k_tuning.split: a lab that reports on a
test split (eval.ade20k.split) tunes on a validation split with it, so that the two scores are
separate records and the tuning never reads the test split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vpt.eval.registry import TASK_REGISTRY, Config, NativeTask, Row


def _needs(e: Config) -> list[tuple[str, str, str]]:
    s = e["ade20k"]
    return [("eval.ade20k", s["dataset"], s["train_split"]), ("eval.ade20k", s["dataset"], s["split"])]


def _needs_tuning(e: Config) -> list[tuple[str, str, str]]:
    s = e["ade20k"]
    return [("eval.ade20k", s["dataset"], s["train_split"]), ("eval.ade20k_tuning", s["dataset"], e["ade20k_tuning"]["split"])]


def _evaluate_tuning(cfg: Config, model_dir: Path, device: str) -> tuple[dict[str, Any], list[Row]]:
    return _evaluate(cfg, model_dir, device, cfg["eval"]["ade20k_tuning"]["split"])


def _evaluate(cfg: Config, model_dir: Path, device: str, split: str | None = None) -> tuple[dict[str, Any], list[Row]]:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from vpt.vision import probes
    from vpt.vision.eval.features import Evaluation, class_maps, num_classes, read_split, resize
    from vpt.vision.eval.metrics import SegmentationScores

    s = {**cfg["eval"]["ade20k"], **({"split": split} if split else {})}
    run = Evaluation("ade20k" if split is None else "ade20k_tuning", s, model_dir, device)
    c, size = num_classes(cfg, s["dataset"]), run.size()
    train, train_path = read_split(cfg, s["dataset"], s["train_split"], s["train_limit"])
    x = run.patch_grid(train, train_path, size)
    y = torch.from_numpy(np.stack([resize(lab, size, nearest=True) for lab in class_maps(train, train_path, c)]))  # (N, H, W)
    head, losses = probes.train_probe(lambda: probes.LinearSegHead(x.shape[1], c, s["dropout"]), x, y,
                                      probes.segmentation_loss, s, run.device)
    del x, y
    val, val_path = read_split(cfg, s["dataset"], s["split"], s["limit"])
    xv = run.patch_grid(val, val_path, size)
    scores, rows, gts = SegmentationScores(c), [], class_maps(val, val_path, c)
    for idx, logits in probes.predict(head, xv, s["probe_batch_size"], run.device):  # (b, C, h, w)
        for j, i in enumerate(idx):
            gt = next(gts)
            up = F.interpolate(logits[j:j + 1], size=gt.shape, mode="bilinear", align_corners=False)
            pred = up[0].argmax(0).to(torch.uint8).cpu().numpy()
            rows.append({"id": val["id"].iat[i], **scores.add(pred, gt)})
    metrics = {**scores.result(), "train_examples": len(train), "train_loss": losses}
    return run.summary(len(rows), metrics), rows


TASK_REGISTRY.register("ade20k", NativeTask(
    "ADE20K linear segmentation probe on frozen patch tokens; mIoU over the split, pixel accuracy",
    ("ade20k",), _needs, _evaluate))
TASK_REGISTRY.register("ade20k_tuning", NativeTask(
    "the ADE20K probe scored on eval.ade20k_tuning.split (a lab's validation split, for tuning only)",
    ("ade20k", "ade20k_tuning"), _needs_tuning, _evaluate_tuning, default=False))
