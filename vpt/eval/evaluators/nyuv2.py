"""NYUv2 monocular depth: a linear depth head (BN -> 1x1 conv -> bounded sigmoid, metres) on the
frozen patch tokens, trained with the scale-invariant log loss; RMSE, AbsRel and delta < 1.25 per
image, then averaged (vpt.vision.eval.metrics).

Images are resized to eval.nyuv2.resolution ([480, 640], NYUv2's own size, in the paper); train
depth maps are resized nearest to it (0 = invalid stays 0). At evaluation the predicted depth is
bilinearly resized to each ground truth and clamped to [min_depth, max_depth]; pixels count when
their ground truth lies in (min_depth, max_depth] and, with eigen_crop, inside the Eigen crop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vpt.eval.registry import TASK_REGISTRY, Config, NativeTask, Row


def _needs(e: Config) -> list[tuple[str, str, str]]:
    s = e["nyuv2"]
    return [("eval.nyuv2", s["dataset"], s["train_split"]), ("eval.nyuv2", s["dataset"], s["split"])]


def _evaluate(cfg: Config, model_dir: Path, device: str) -> tuple[dict[str, Any], list[Row]]:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from vpt.vision import probes
    from vpt.vision.eval.features import Evaluation, decoded, read_split, resize
    from vpt.vision.eval.metrics import depth_metrics, mean_depth_metrics
    from vpt.vision.images import decode_depth

    s = cfg["eval"]["nyuv2"]
    lo, hi = float(s["min_depth"]), float(s["max_depth"])
    run = Evaluation("nyuv2", s, model_dir, device)
    size = run.size()
    train, train_path = read_split(cfg, s["dataset"], s["train_split"], s["train_limit"])
    x = run.patch_grid(train, train_path, size)
    gt_train = decoded(train, "depth", train_path, decode_depth, "height", "width")
    y = torch.from_numpy(np.stack([resize(d, size, nearest=True) for d in gt_train]))  # (N, H, W) metres
    head, losses = probes.train_probe(lambda: probes.DepthHead(x.shape[1], lo, hi), x, y, probes.depth_loss(lo, hi), s, run.device)
    del x, y
    val, val_path = read_split(cfg, s["dataset"], s["split"], s["limit"])
    xv = run.patch_grid(val, val_path, size)
    gts = decoded(val, "depth", val_path, decode_depth, "height", "width")
    per_image, rows = [], []
    for idx, pred in probes.predict(head, xv, s["probe_batch_size"], run.device):  # (b, 1, h, w)
        for j, i in enumerate(idx):
            gt = next(gts)
            up = F.interpolate(pred[j:j + 1], size=gt.shape, mode="bilinear", align_corners=False)[0, 0]
            m = depth_metrics(up.clamp(lo, hi).cpu().numpy(), gt, lo, hi, s["eigen_crop"])
            per_image.append(m)
            rows.append({"id": val["id"].iat[i], **(m or {"rmse": None, "absrel": None, "delta1": None, "pixels": 0})})
    metrics = {**mean_depth_metrics(per_image), "train_examples": len(train), "train_loss": losses}
    return run.summary(len(rows), metrics), rows


TASK_REGISTRY.register("nyuv2", NativeTask(
    "NYUv2 linear depth probe on frozen patch tokens; RMSE, AbsRel, delta<1.25 per image (Eigen crop)",
    ("nyuv2",), _needs, _evaluate))
