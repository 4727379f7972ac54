"""Reading a normalized vision table, resizing its images, and extracting frozen features.

A task's images are resized to its `resolution` (H, W multiples of the patch size) and
normalised with the saved model's mean/std (vpt.vision.backbone.to_input). Features are extracted
once per split under torch.no_grad in eval mode, `batch_size` images at a time, and kept in host
memory so that every probe epoch after the first is cheap. Dense features (the patch grid) are
kept in float16 (DENSE_DTYPE): ADE20K train at 512 px with a ViT-B is 20,210 x 768 x 32 x 32
values, ~32 GB in float16; the probes compute in float32.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from vpt import paths
from vpt.errors import VptError
from vpt.io import read_parquet
from vpt.vision.backbone import load_backbone, to_input, tokens
from vpt.vision.eval.metrics import reduce_zero_label
from vpt.vision.images import decode_label, decode_rgb

Config = dict[str, Any]
DENSE_DTYPE = torch.float16
GROUPS = ("cls", "patch", "mean_patch")  # mean_patch: (B, D) mean over the patch grid


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def image_size(resolution: int | list[int], patch: tuple[int, int] | list[int], key: str) -> tuple[int, int]:
    """(H, W) of a `resolution` (an int: square), checked against the patch size."""
    h, w = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    if h % patch[0] or w % patch[1]:
        raise VptError(f"key '{key}': resolution {h} x {w} is not a multiple of the model's patch size {tuple(patch)}")
    return int(h), int(w)


def num_classes(cfg: Config, dataset: str) -> int:
    n = (cfg.get("datasets", {}).get(dataset) or {}).get("num_classes")
    if not isinstance(n, int) or n < 1:
        raise VptError(f"key 'datasets.{dataset}.num_classes' must be a positive integer (got {n!r}); "
                       "the evaluator's head has one output per class")
    return n


def read_split(cfg: Config, dataset: str, split: str, limit: int | None = None) -> tuple[Any, Path]:
    """The split's table (first `limit` rows) and its path."""
    path = paths.raw_split(cfg, dataset, split)
    df = read_parquet(path)
    return (df.head(limit) if limit is not None else df).reset_index(drop=True), path


def decoded(df: Any, column: str, path: Path, decode: Callable[..., np.ndarray], *extra: str) -> Iterator[np.ndarray]:
    """decode(row[column], *row[extra]) per row; a failure names the file and the row id."""
    if column not in df.columns:
        raise VptError(f"{path} has no column {column!r}; its columns: {', '.join(df.columns)}")
    for i in range(len(df)):
        try:
            yield decode(df[column].iat[i], *(df[c].iat[i] for c in extra))
        except ValueError as e:
            raise VptError(f"{path} row {df['id'].iat[i]!r}, column {column!r}: {e}") from e


def class_maps(df: Any, path: Path, num_classes: int) -> Iterator[np.ndarray]:
    """The (H, W) label maps of a segmentation table after reduce_zero_label (void -> IGNORE), their
    raw ids checked against num_classes; a failure names the file and the row id."""
    for i, raw in enumerate(decoded(df, "label", path, decode_label)):
        if int(raw.max(initial=0)) > num_classes:
            raise VptError(f"{path} row {df['id'].iat[i]!r}: label id {int(raw.max())} > datasets num_classes {num_classes}")
        yield reduce_zero_label(raw)


def resize(array: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """(H, W[, 3]) uint8 or float32 -> (h, w[, 3]); bilinear (antialiased downscale) or nearest."""
    if array.shape[:2] == size:
        return array
    mode = Image.NEAREST if nearest else Image.BILINEAR
    return np.asarray(Image.fromarray(array).resize((size[1], size[0]), mode))


def long_side_size(height: int, width: int, long_side: int, patch: tuple[int, int]) -> tuple[int, int]:
    """Aspect-preserving size with the long side `long_side`, each side rounded to the patch grid."""
    s = long_side / max(height, width)
    return (max(patch[0], round(height * s / patch[0]) * patch[0]), max(patch[1], round(width * s / patch[1]) * patch[1]))


def center_crop(image: np.ndarray, size: tuple[int, int], ratio: float) -> np.ndarray:
    """Resize the shorter side to size/ratio, then the central size (the usual ImageNet eval view)."""
    h, w = image.shape[:2]
    s = max(size[0], size[1]) / ratio / min(h, w)
    rh, rw = max(size[0], math.ceil(h * s - 1e-6)), max(size[1], math.ceil(w * s - 1e-6))
    r = resize(image, (rh, rw))
    y, x = (rh - size[0]) // 2, (rw - size[1]) // 2
    return r[y:y + size[0], x:x + size[1]]


def _batches(images: Iterable[np.ndarray], batch_size: int) -> Iterator[list[np.ndarray]]:
    """Consecutive images of one shape, at most batch_size of them."""
    batch: list[np.ndarray] = []
    for im in images:
        if batch and (len(batch) == batch_size or im.shape != batch[0].shape):
            yield batch
            batch = []
        batch.append(im)
    if batch:
        yield batch


@torch.no_grad()
def extract(model: torch.nn.Module, images: Iterable[np.ndarray], batch_size: int, device: torch.device,
            groups: tuple[str, ...], count: int | None = None) -> dict[str, torch.Tensor]:
    """Frozen features of uint8 (H, W, 3) images: cls (N, D), patch (N, D, h, w) in DENSE_DTYPE,
    mean_patch (N, D); on the CPU, in the order of `images`. With `count` (the number of images)
    the outputs are allocated once and filled, so the peak host memory is one copy, not two."""
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown feature group(s) {sorted(unknown)}; choose from {GROUPS}")
    model.eval()
    mean, std = model.pretrained_cfg["mean"], model.pretrained_cfg["std"]
    chunks: dict[str, list[torch.Tensor]] = {g: [] for g in groups}
    filled: dict[str, torch.Tensor] = {}
    done = 0
    for batch in _batches(images, batch_size):
        t = tokens(model, to_input(torch.from_numpy(np.stack(batch)).to(device), mean, std))  # from (B, 3, H, W)
        got = {"cls": lambda: t["cls"].float(), "patch": lambda: t["patch"].permute(0, 3, 1, 2).to(DENSE_DTYPE),  # (B, D, h, w)
               "mean_patch": lambda: t["patch"].float().mean(dim=(1, 2))}
        for g in groups:
            v = got[g]().cpu()
            if count is None:
                chunks[g].append(v)
                continue
            if g not in filled:
                filled[g] = torch.empty((count, *v.shape[1:]), dtype=v.dtype)
            if v.shape[1:] != filled[g].shape[1:]:
                raise ValueError(f"features of differently sized images cannot be stacked: {tuple(v.shape)} vs {tuple(filled[g].shape)}")
            filled[g][done:done + len(v)] = v
        done += len(batch)
    if count is not None:
        if done != count:
            raise ValueError(f"expected {count} images, got {done}")
        return filled if filled else {g: torch.empty(0) for g in groups}
    try:
        return {g: torch.cat(v) if v else torch.empty(0) for g, v in chunks.items()}
    except RuntimeError as e:  # patch grids of different sizes cannot be stacked
        raise ValueError(f"features of differently sized images cannot be stacked: {e}") from e


class Evaluation:
    """The frame of one evaluator run: the frozen backbone on its device, the clock, the summary."""

    def __init__(self, task: str, settings: Config, model_dir: Path, device: str) -> None:
        self.start = time.perf_counter()
        self.task, self.settings = task, dict(settings)
        self.device = resolve_device(device)
        self.model, self.meta = load_backbone(model_dir)
        self.model.to(self.device)
        self.patch = tuple(self.meta.get("patch_size") or self.model.patch_embed.patch_size)
        self.images = 0  # every image passed through the backbone (train, eval, database)

    def size(self) -> tuple[int, int]:
        return image_size(self.settings["resolution"], self.patch, f"eval.{self.task}.resolution")

    def features(self, images: Iterable[np.ndarray], groups: tuple[str, ...], count: int) -> dict[str, torch.Tensor]:
        """Features of `count` images (a split's rows), extracted once, kept on the CPU."""
        feats = extract(self.model, images, self.settings["batch_size"], self.device, groups, count)
        self.images += count
        return feats

    def patch_grid(self, df: Any, path: Path, size: tuple[int, int]) -> torch.Tensor:
        """(N, D, h, w) patch features of a table's images, each resized to `size`."""
        views = (resize(im, size) for im in decoded(df, "image", path, decode_rgb))
        return self.features(views, ("patch",), len(df))["patch"]

    def summary(self, examples: int, metrics: dict[str, Any]) -> dict[str, Any]:
        """The task's <task>.json: throughput is over every image of the run, probe training included."""
        seconds = time.perf_counter() - self.start
        return {"task": self.task, "examples": examples, "metrics": metrics,
                "throughput": {"seconds": round(seconds, 3), "images": self.images,
                               "examples_per_s": round(self.images / seconds, 3) if seconds > 0 else None},
                "seed": self.settings.get("seed"), "settings": self.settings, "device": str(self.device),
                "model": {k: self.meta.get(k) for k in ("timm", "architecture", "patch_size")}}
