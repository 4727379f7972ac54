"""Vision metrics against independent references: revisitop mAP against a brute-force
enumeration, mIoU against a confusion matrix, depth errors against plain numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vpt.vision.eval.metrics import (IGNORE, SegmentationScores, depth_metrics, eigen_crop_mask, mean_depth_metrics,
                                     reduce_zero_label)
from vpt.vision.eval.retrieval import mean_aps, protocol_aps, query_ap


# --------------------------------------------------------------------------- retrieval


def brute_ap(ranking: list[int], positives: set[int], ignored: set[int]) -> float:
    """AP by definition: drop ignored images from the ranking; at the k-th positive, found at
    1-based position n, the recall step 1/P times the trapezoid of the precision just before it,
    (k-1)/(n-1) (1 at n = 1), and at it, k/n."""
    if not positives:
        return math.nan
    kept = [d for d in ranking if d not in ignored]
    area, k = 0.0, 0
    for n, d in enumerate(kept, start=1):
        if d in positives:
            k += 1
            before = 1.0 if n == 1 else (k - 1) / (n - 1)
            area += (before + k / n) / 2 / len(positives)
    return area


def test_hand_built_rankings() -> None:
    # positive, negative, positive: (1 + 1)/2/2 + (1/2 + 2/3)/2/2
    assert query_ap(np.array([0, 1, 2]), [0, 2], []) == pytest.approx(0.5 + 7 / 24)
    assert query_ap(np.array([5, 0, 1, 2]), [0, 2], [5]) == pytest.approx(0.5 + 7 / 24)  # junk first: removed
    assert query_ap(np.array([1, 0]), [0], []) == pytest.approx(0.25)
    assert math.isnan(query_ap(np.array([0, 1]), [], [1]))
    # database 0 negative, 1 hard, 2 easy, 3 junk, ranked 3, 0, 1, 2
    gnd = {"easy": [2], "hard": [1], "junk": [3]}
    aps = protocol_aps(np.array([3, 0, 1, 2]), gnd)
    assert aps["easy"] == pytest.approx(0.25)  # hard and junk ignored: 0, 2
    assert aps["hard"] == pytest.approx(0.25)  # easy and junk ignored: 0, 1
    assert aps["medium"] == pytest.approx((0 + 1 / 2) / 4 + (1 / 2 + 2 / 3) / 4)  # 0, 1, 2
    empty = protocol_aps(np.array([0, 1, 2]), {"easy": [0], "hard": [], "junk": [2]})
    assert math.isnan(empty["hard"]) and empty["easy"] == 1.0 and empty["medium"] == 1.0


def test_map_skips_queries_without_positives() -> None:
    m = mean_aps([{"easy": 1.0, "medium": 0.5, "hard": math.nan}, {"easy": 0.0, "medium": 0.25, "hard": 0.75}])
    assert m == {"map_easy": 0.5, "queries_easy": 2, "map_medium": 0.375, "queries_medium": 2, "map_hard": 0.75, "queries_hard": 1}
    assert mean_aps([{"easy": math.nan, "medium": math.nan, "hard": math.nan}])["map_hard"] is None


def test_ap_equals_the_brute_force_on_random_rankings() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 40))
        ranking = rng.permutation(n)
        role = rng.choice(["easy", "hard", "junk", "none"], size=n, p=[0.2, 0.2, 0.2, 0.4])
        gnd = {k: [int(i) for i in np.flatnonzero(role == k)] for k in ("easy", "hard", "junk")}
        aps = protocol_aps(ranking, gnd)
        e, h, j = set(gnd["easy"]), set(gnd["hard"]), set(gnd["junk"])
        expected = {"easy": brute_ap(list(ranking), e, j | h), "medium": brute_ap(list(ranking), e | h, j),
                    "hard": brute_ap(list(ranking), h, j | e)}
        for k, v in expected.items():
            assert (math.isnan(v) and math.isnan(aps[k])) or aps[k] == pytest.approx(v, abs=1e-12), (k, ranking, gnd)


# --------------------------------------------------------------------------- segmentation


def test_reduce_zero_label() -> None:
    assert reduce_zero_label(np.array([0, 1, 2, 150], dtype=np.uint8)).tolist() == [IGNORE, 0, 1, 149]


def test_miou_equals_a_split_wide_confusion_matrix() -> None:
    rng = np.random.default_rng(1)
    c = 6  # class 5 never appears in ground truth or prediction: excluded, not 0
    scores, gts, preds = SegmentationScores(c), [], []
    for shape in [(7, 9), (12, 5), (4, 4), (10, 10)]:
        gt = rng.integers(0, 5, size=shape).astype(np.uint8)
        gt[rng.random(shape) < 0.2] = IGNORE
        pred = np.where(rng.random(shape) < 0.6, gt, rng.integers(0, 5, size=shape)).astype(np.uint8)
        pred[pred == IGNORE] = 0  # a prediction is always a class
        row = scores.add(pred, gt)
        v = gt != IGNORE
        assert row["pixel_acc"] == pytest.approx(np.mean(pred[v] == gt[v])) and row["pixels"] == v.sum()
        gts.append(gt[v]), preds.append(pred[v])
    g, p = np.concatenate(gts).astype(int), np.concatenate(preds).astype(int)
    cm = np.bincount(g * c + p, minlength=c * c).reshape(c, c)  # rows: truth, columns: prediction
    union = cm.sum(0) + cm.sum(1) - np.diag(cm)
    iou = [cm[k, k] / union[k] for k in range(c) if union[k] > 0]
    res = scores.result()
    assert res["classes_evaluated"] == 5 and res["per_class_iou"][5] is None
    assert res["miou"] == pytest.approx(np.mean(iou), abs=1e-12)
    assert res["pixel_acc"] == pytest.approx(np.trace(cm) / cm.sum(), abs=1e-12)
    # averaging per-image IoUs would be a different number: the split-wide sum is what is reported
    assert scores.add(np.zeros((2, 2), np.uint8), np.full((2, 2), IGNORE, np.uint8))["pixel_acc"] is None


# --------------------------------------------------------------------------- depth


def test_eigen_crop_mask() -> None:
    full = np.zeros((480, 640), bool)
    full[45:471, 41:601] = True
    assert (eigen_crop_mask(480, 640) == full).all()
    half = np.zeros((240, 320), bool)
    half[23:236, 21:301] = True  # 22.5, 235.5, 20.5, 300.5 rounded half up
    assert (eigen_crop_mask(240, 320) == half).all()


def test_depth_metrics_against_numpy_with_crop_and_clipping() -> None:
    rng = np.random.default_rng(2)
    gt = rng.uniform(0.5, 12.0, size=(48, 64)).astype(np.float32)  # some above max_depth: invalid
    gt[rng.random(gt.shape) < 0.1] = 0.0  # invalid
    pred = (gt * rng.uniform(0.7, 1.4, size=gt.shape)).astype(np.float32)
    pred[0, :] = 50.0  # clipped to max_depth, but row 0 lies outside the crop anyway
    pred[20, 20] = -3.0  # clipped to min_depth
    lo, hi = 1e-3, 10.0
    for crop in (False, True):
        m = depth_metrics(pred, gt, lo, hi, crop)
        valid = (gt > lo) & (gt <= hi)
        if crop:
            box = np.zeros_like(valid)
            box[5:47, 4:60] = True  # 4.5, 47.1, 4.1, 60.1
            valid &= box
        p, g = np.clip(pred[valid], lo, hi).astype(float), gt[valid].astype(float)
        assert m["pixels"] == valid.sum()
        assert m["rmse"] == pytest.approx(np.sqrt(np.mean((p - g) ** 2)))
        assert m["absrel"] == pytest.approx(np.mean(np.abs(p - g) / g))
        assert m["delta1"] == pytest.approx(np.mean(np.maximum(p / g, g / p) < 1.25))
    assert depth_metrics(pred, np.zeros_like(gt), lo, hi, True) is None


def test_depth_metrics_are_averaged_per_image() -> None:
    gt = np.full((4, 4), 2.0, np.float32)
    small, big = gt.copy(), gt.copy()
    big[:1, :1] = 4.0  # one pixel off by 2: rmse 2/4 = 0.5 on its image
    per = [depth_metrics(small, gt, 1e-3, 10, False), depth_metrics(big, gt, 1e-3, 10, False), None]
    out = mean_depth_metrics(per)
    assert out["rmse"] == pytest.approx(0.25) and out["images_scored"] == 2 and out["delta1"] == pytest.approx((1 + 15 / 16) / 2)
