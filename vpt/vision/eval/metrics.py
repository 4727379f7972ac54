"""Dense-prediction metrics: ADE20K-style mIoU and NYUv2-style depth errors.

Segmentation (dinov3's convention): per class, intersection and union are summed over the whole
split and only then divided; mIoU is the mean over classes whose union is non-zero (a class absent
from both the predictions and the ground truth of the entire split has IoU 0/0 = NaN and is
skipped, not counted as 0 or 1). Pixel accuracy is correct / labelled pixels over the split.
Pixels labelled IGNORE (255: ADE's void after reduce_zero_label) count nowhere.

Depth (dinov2's convention, issue #484): RMSE, AbsRel and delta < 1.25 are computed per image,
over that image's valid pixels, then averaged over images; a pixel is valid when its ground truth
lies in (min_depth, max_depth] and, with the Eigen crop, inside the crop; predictions are clamped
to [min_depth, max_depth] first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

IGNORE = 255  # the label of pixels that count nowhere (ADE void after reduce_zero_label)
EIGEN_CROP = (45, 471, 41, 601)  # y0, y1, x0, x1 of the Eigen crop on a 480 x 640 NYUv2 image
EIGEN_SIZE = (480, 640)


def reduce_zero_label(label: np.ndarray) -> np.ndarray:
    """ADE raw ids (0 void, 1..C) -> training ids (void IGNORE, 0..C-1)."""
    out = label.astype(np.int64) - 1
    out[label == 0] = IGNORE
    return out.astype(np.uint8)


def _nan_to_none(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


@dataclass
class SegmentationScores:
    """Per-class intersection and union summed over every image added."""

    num_classes: int
    intersection: np.ndarray = field(init=False)
    union: np.ndarray = field(init=False)
    correct: int = 0
    labelled: int = 0

    def __post_init__(self) -> None:
        self.intersection = np.zeros(self.num_classes, dtype=np.int64)
        self.union = np.zeros(self.num_classes, dtype=np.int64)

    def add(self, pred: np.ndarray, gt: np.ndarray) -> dict[str, Any]:
        """Add one image: pred (H, W) class ids in [0, C), gt (H, W) ids or IGNORE. Returns the
        image's own pixel accuracy and mIoU (over the classes in its prediction or ground truth)."""
        if pred.shape != gt.shape:
            raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
        valid = gt != IGNORE
        p, g = pred[valid].astype(np.int64), gt[valid].astype(np.int64)
        c = self.num_classes
        inter = np.bincount(g[p == g], minlength=c)[:c]
        union = np.bincount(p, minlength=c)[:c] + np.bincount(g, minlength=c)[:c] - inter
        self.intersection += inter
        self.union += union
        self.correct += int(inter.sum())
        self.labelled += int(valid.sum())
        present = union > 0
        return {"pixels": int(valid.sum()), "pixel_acc": _nan_to_none(inter.sum() / valid.sum() if valid.any() else np.nan),
                "miou": _nan_to_none(float(np.mean(inter[present] / union[present])) if present.any() else np.nan),
                "classes": int(present.sum())}

    def result(self) -> dict[str, Any]:
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = self.intersection / self.union  # NaN where the union is 0: class absent from the split
        present = ~np.isnan(iou)
        return {"miou": _nan_to_none(float(np.mean(iou[present])) if present.any() else np.nan),
                "pixel_acc": _nan_to_none(self.correct / self.labelled if self.labelled else np.nan),
                "classes_evaluated": int(present.sum()), "per_class_iou": [_nan_to_none(x) for x in iou]}


def eigen_crop_mask(height: int, width: int) -> np.ndarray:
    """(H, W) bool: the Eigen crop, its 480 x 640 bounds rescaled proportionally to H x W."""
    y0, y1, x0, x1 = EIGEN_CROP
    sy, sx = height / EIGEN_SIZE[0], width / EIGEN_SIZE[1]

    def at(v: float) -> int:  # round half up (Python's round() would round 22.5 to 22 but 23.5 to 24)
        return int(np.floor(v + 0.5))

    mask = np.zeros((height, width), dtype=bool)
    mask[at(y0 * sy):at(y1 * sy), at(x0 * sx):at(x1 * sx)] = True
    return mask


def depth_metrics(pred: np.ndarray, gt: np.ndarray, min_depth: float, max_depth: float,
                  eigen_crop: bool) -> dict[str, float] | None:
    """RMSE, AbsRel, delta1 of one image (pred and gt (H, W) metres), or None when no pixel is valid."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    valid = (gt > min_depth) & (gt <= max_depth)
    if eigen_crop:
        valid &= eigen_crop_mask(*gt.shape)
    if not valid.any():
        return None
    p = np.clip(pred[valid].astype(np.float64), min_depth, max_depth)
    g = gt[valid].astype(np.float64)
    return {"rmse": float(np.sqrt(np.mean((p - g) ** 2))), "absrel": float(np.mean(np.abs(p - g) / g)),
            "delta1": float(np.mean(np.maximum(p / g, g / p) < 1.25)), "pixels": int(valid.sum())}


def mean_depth_metrics(per_image: list[dict[str, float] | None]) -> dict[str, Any]:
    """The per-image metrics averaged over the images that had valid pixels."""
    scored = [m for m in per_image if m is not None]
    out: dict[str, Any] = {k: (float(np.mean([m[k] for m in scored])) if scored else None) for k in ("rmse", "absrel", "delta1")}
    out["images_scored"] = len(scored)
    return out
