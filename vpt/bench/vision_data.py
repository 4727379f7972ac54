"""Synthetic image tables for the vision benchmarks on a machine without the downloads (the GPU
check): random images for vision.data's table and random labels for the feedback pools, in the
download stage's columns, under a temporary data_dir where vpt.paths looks for them.

What a step costs is set by shapes (crop sizes, batch, model, pool resolution, classes), not by
pixel values: the images are smooth random fields plus noise (JPEG, as ImageNet's are, so the
decode in the multi-crop phase is a real one), segmentation labels random raw ids in
[0, num_classes] (0 = void), depth random metres inside eval.nyuv2's valid range.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from vpt import paths
from vpt.vision.images import encode_depth, encode_png

Config = dict[str, Any]


def _image(rng: np.random.Generator, side: int) -> np.ndarray:
    """(side, side, 3) uint8: an 8 x 8 random field upsampled bilinearly, plus pixel noise."""
    coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((side, side), Image.BILINEAR)
    return np.clip(np.asarray(coarse, dtype=np.float32) + rng.normal(0, 12, (side, side, 3)), 0, 255).astype(np.uint8)


def _jpeg(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    from vpt.io import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([{"id": f"{path.parent.name}/{path.stem}/{i}", **r} for i, r in enumerate(rows)])
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def pool_rows(kind: str, n: int, side: int, rng: np.random.Generator, num_classes: int, depth_range: tuple[float, float],
              ) -> list[dict[str, Any]]:
    """n rows of a segmentation or depth pool at side x side."""
    rows = []
    for _ in range(n):
        row: dict[str, Any] = {"image": encode_png(_image(rng, side)), "height": side, "width": side}
        if kind == "segmentation":
            row["label"] = encode_png(rng.integers(0, num_classes + 1, (side, side), dtype=np.uint8))
        else:
            row["depth"] = encode_depth(rng.uniform(*depth_range, (side, side)).astype(np.float32))
        rows.append(row)
    return rows


def write_synthetic_tables(cfg: Config, data_dir: Path, images: int, image_side: int, pool: int, pool_side: int,
                           seed: int = 0) -> Path:
    """vision.data's table (`images` rows) and every weighted feedback task's train and meta pools
    (`pool` rows each) under `data_dir` (<data_dir>/raw/<dataset>/<split>.parquet); returns data_dir."""
    from vpt.vision.eval.features import num_classes
    from vpt.vision.feedback import TASK_KINDS

    at = {**cfg, "data_dir": str(data_dir)}
    rng = np.random.default_rng(seed)
    v = cfg["vision"]
    _write(paths.raw_split(at, v["data"]["dataset"], v["data"]["split"]),
           [{"image": _jpeg(_image(rng, image_side)), "label": 0} for _ in range(images)])
    nyu = cfg.get("eval", {}).get("nyuv2", {})
    depth_range = (max(float(nyu.get("min_depth", 1e-3)), 0.5), min(float(nyu.get("max_depth", 10.0)), 8.0))
    for name, task in v["feedback"]["tasks"].items():
        if task["weight"] <= 0:
            continue
        kind = TASK_KINDS[name]
        classes = num_classes(cfg, task["dataset"]) if kind == "segmentation" else 0
        for split in (task["train_split"], task["meta_split"]):
            _write(paths.raw_split(at, task["dataset"], split), pool_rows(kind, pool, pool_side, rng, classes, depth_range))
    return data_dir
