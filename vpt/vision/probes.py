"""Probe heads trained on frozen, cached features, and their deterministic training loop.

Heads (no SyncBatchNorm: one process, any device):
- LinearSegHead: Dropout2d (optional) -> BatchNorm2d -> 1x1 conv over the (B, D, h, w) patch
  grid, one logit per class (dinov3's linear segmentation head).
- DepthHead: BatchNorm2d -> 1x1 conv -> one channel z; depth = min + (max - min) * sigmoid(z),
  so every prediction is a depth in metres inside the evaluation range.
- LinearClsHead: BatchNorm1d(affine=False, eps=1e-6) -> Linear (MAE's linear-probe convention).

Training (train_probe): AdamW, learning rate decayed by a cosine from `lr` to 0 over all steps,
no warm-up; `epochs` passes over the cached features in an order drawn from a torch.Generator
seeded with `seed`, and the head initialised (and Dropout2d drawn) under torch.manual_seed(seed)
inside torch.random.fork_rng, so the same seed gives the same head and the caller's RNG state is
left alone. On CPU the result is bit-identical; CUDA's bilinear-upsampling backward accumulates
with atomics, so on a GPU it is deterministic only up to float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vpt.vision.eval.metrics import IGNORE

SILOG_LAMBDA = 0.85  # variance focus of the scale-invariant log loss (Eigen et al.; dinov2's SigLoss)


class LinearSegHead(nn.Module):
    def __init__(self, dim: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.bn = nn.BatchNorm2d(dim)
        self.conv = nn.Conv2d(dim, num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, D, h, w) -> (B, C, h, w)
        return self.conv(self.bn(self.dropout(x)))


class DepthHead(nn.Module):
    def __init__(self, dim: int, min_depth: float, max_depth: float) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(dim)
        self.conv = nn.Conv2d(dim, 1, kernel_size=1)
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, D, h, w) -> (B, 1, h, w) metres
        return self.min_depth + (self.max_depth - self.min_depth) * torch.sigmoid(self.conv(self.bn(x)))


class LinearClsHead(nn.Module):
    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(dim, affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, D) -> (B, C)
        return self.linear(self.bn(x))


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor, denominator: torch.Tensor | int | None = None) -> torch.Tensor:
    """Cross-entropy of logits (B, C, h, w) bilinearly upsampled to labels (B, H, W); IGNORE
    pixels count nowhere (a batch with none labelled gives 0, not NaN). `denominator`: divide the
    summed pixel losses by it (a whole batch's labelled pixels, so that the losses of its
    micro-batches add up to the batch's) instead of by these labels' own count."""
    up = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    target = labels.long()
    total = F.cross_entropy(up, target, ignore_index=IGNORE, reduction="sum")
    if denominator is None:
        denominator = (target != IGNORE).sum()
    return total / (denominator.clamp(min=1) if isinstance(denominator, torch.Tensor) else max(int(denominator), 1))


def valid_depth(gt: torch.Tensor, min_depth: float, max_depth: float) -> torch.Tensor:
    """The pixels whose ground truth counts: in (min_depth, max_depth] (0 = no measurement)."""
    return (gt > min_depth) & (gt <= max_depth)


def depth_loss(min_depth: float, max_depth: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The scale-invariant log loss of depth (B, 1, h, w) upsampled to gt (B, H, W), over the
    pixels whose ground truth lies in (min_depth, max_depth] (all the batch's pooled)."""

    def loss(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(pred, size=gt.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        valid = valid_depth(gt, min_depth, max_depth)
        if not valid.any():
            return up.sum() * 0.0
        d = torch.log(up[valid]) - torch.log(gt[valid])
        return torch.sqrt((d ** 2).mean() - SILOG_LAMBDA * d.mean() ** 2 + 1e-12)

    return loss


def depth_loss_per_image(min_depth: float, max_depth: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """depth_loss of each image alone, (B,): rows independent of each other, so a batch's mean
    splits into micro-batches. An image without valid pixels gives 0 (and no gradient). Masked
    sums instead of boolean indexing keep the shapes static."""

    def loss(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(pred, size=gt.shape[-2:], mode="bilinear", align_corners=False)[:, 0]  # (B, H, W)
        valid = valid_depth(gt, min_depth, max_depth)
        n = valid.sum(dim=(1, 2))  # (B,)
        safe_gt = torch.where(valid, gt.to(up.dtype), torch.ones_like(up))  # log(0) would poison the gradient
        d = torch.where(valid, torch.log(up) - torch.log(safe_gt), torch.zeros_like(up))
        count = n.clamp(min=1).to(up.dtype)
        mean, mean_sq = d.sum(dim=(1, 2)) / count, (d ** 2).sum(dim=(1, 2)) / count
        per_image = torch.sqrt(mean_sq - SILOG_LAMBDA * mean ** 2 + 1e-12)
        return torch.where(n > 0, per_image, torch.zeros_like(per_image))

    return loss


def _rng_devices(device: torch.device) -> list[int]:
    return [device.index or 0] if device.type == "cuda" else []


def train_probe(make_head: Callable[[], nn.Module], inputs: torch.Tensor, targets: torch.Tensor,
                loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], settings: dict[str, Any],
                device: torch.device) -> tuple[nn.Module, list[float]]:
    """A head trained on (inputs[i], targets[i]) pairs held on the CPU; settings: epochs, lr,
    weight_decay, probe_batch_size, seed. Returns the head (eval mode) and the mean loss per epoch."""
    n, bs, epochs = len(inputs), int(settings["probe_batch_size"]), int(settings["epochs"])
    if n == 0:
        raise ValueError("no training examples for the probe")
    steps_per_epoch = math.ceil(n / bs)
    total = max(1, epochs * steps_per_epoch)
    order = torch.Generator().manual_seed(int(settings["seed"]))
    history: list[float] = []
    with torch.random.fork_rng(devices=_rng_devices(device)):
        torch.manual_seed(int(settings["seed"]))
        head = make_head().to(device)
        opt = torch.optim.AdamW(head.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
        head.train()
        for _ in range(epochs):
            perm, losses = torch.randperm(n, generator=order), []
            for k in range(steps_per_epoch):
                idx = perm[k * bs:(k + 1) * bs]
                if len(idx) < 2 and n >= 2:  # BatchNorm needs two samples; the tail joins no batch
                    continue
                value = loss(head(inputs[idx].to(device).float()), targets[idx].to(device))
                opt.zero_grad(set_to_none=True)
                value.backward()
                opt.step()
                sched.step()
                losses.append(float(value.detach()))
            history.append(sum(losses) / max(len(losses), 1))
    return head.eval(), history


@torch.no_grad()
def predict(head: nn.Module, inputs: torch.Tensor, batch_size: int, device: torch.device) -> Iterator[tuple[range, torch.Tensor]]:
    """(indices, head outputs on `device`) batch by batch, head in eval mode."""
    head.eval()
    for start in range(0, len(inputs), batch_size):
        stop = min(start + batch_size, len(inputs))
        yield range(start, stop), head(inputs[start:stop].to(device).float())
