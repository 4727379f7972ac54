"""The dense downstream feedback of the vision value runs (appendix A.2, "Downstream evaluators"):
ADE20K segmentation and NYUv2 depth, each an Evaluator of vpt.value.meta.

Each task has two labeled pools, extra splits written by the download stage (vpt.data.download
draw_pools): `feedback_train` trains the task's own head, `feedback_meta` gives the meta batches
whose loss gradient is g_down. Pools are decoded once, resized to `vision.feedback.resolution`
(images bilinear, labels and depth nearest) and kept on the host, normalised float32.

Per meta step (vpt.value.meta.downstream_gradient), each DenseFeedback
  update_head  takes head_steps AdamW steps of its head (probes.LinearSegHead / probes.DepthHead)
               on batch_size train-pool rows, the backbone frozen (no_grad, eval mode);
  losses       draws batch_size meta-pool rows and yields the loss of each micro-batch,
               differentiable in the backbone only (head in eval mode, its parameters frozen),
               normalised by the whole batch so the parts add up to the batch's loss:
               segmentation: summed pixel CE / labelled pixels of the batch;
               depth: summed per-image scale-invariant log loss / rows of the batch.
The head stays in eval mode in `losses` (BatchNorm running statistics), so every row's loss is
independent of the others and micro-batching changes nothing but rounding.

Heads and their optimizers persist across meta steps; state_dict() holds both for the trainer's
checkpoint, so a resumed run's next update_head is bit-identical (on CPU).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vpt.dist import World, rank_rows
from vpt.errors import VptError
from vpt.io import read_parquet
from vpt.paths import raw_split
from vpt.train.task import micro_batches
from vpt.vision import probes
from vpt.vision.backbone import eval_mode, to_input, tokens
from vpt.vision.eval.features import class_maps, decoded, image_size, num_classes, resize
from vpt.vision.eval.metrics import IGNORE
from vpt.vision.images import decode_depth, decode_rgb

KINDS = ("segmentation", "depth")
TASK_KINDS = {"ade20k": "segmentation", "nyuv2": "depth"}  # the keys of vision.feedback.tasks
Pool = tuple[torch.Tensor, torch.Tensor]  # images (N, 3, H, W) float32 normalised, targets (N, H, W)
Size = int | Sequence[int]


def _hw(size: Size) -> tuple[int, int]:
    return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))


def load_pool(table: Path, kind: str, size: Size, mean: Sequence[float], std: Sequence[float],
              num_classes: int | None = None) -> Pool:
    """A labeled pool table -> (images (N, 3, H, W) float32 normalised, targets (N, H, W)):
    segmentation: uint8 class ids after reduce_zero_label (IGNORE = void), depth: float32 metres
    (0 = invalid stays 0); targets resized nearest. `size`: an int (square) or (H, W).
    Errors name the file and the row."""
    if kind not in KINDS:
        raise VptError(f"feedback pool kind {kind!r}; choose one of: {', '.join(KINDS)}")
    table = Path(table)
    df = read_parquet(table)
    if len(df) == 0:
        raise VptError(f"{table} has no rows: an empty feedback pool")
    h, w = _hw(size)
    if kind == "segmentation":
        if num_classes is None:
            raise VptError(f"{table}: a segmentation pool needs num_classes")
        targets_of = class_maps(df, table, num_classes)
        targets = torch.empty((len(df), h, w), dtype=torch.uint8)
    else:
        targets_of = decoded(df, "depth", table, decode_depth, "height", "width")
        targets = torch.empty((len(df), h, w), dtype=torch.float32)
    images = torch.empty((len(df), 3, h, w), dtype=torch.float32)
    what = "label" if kind == "segmentation" else "depth"
    for i, (image, target) in enumerate(zip(decoded(df, "image", table, decode_rgb), targets_of)):
        if target.shape != image.shape[:2]:
            raise VptError(f"{table} row {df['id'].iat[i]!r}: {what} {target.shape[1]}x{target.shape[0]} does not match "
                           f"image {image.shape[1]}x{image.shape[0]}")
        view = torch.from_numpy(np.array(resize(image, (h, w))))[None]  # (1, H, W, 3) uint8
        images[i] = to_input(view, tuple(mean), tuple(std))[0]
        targets[i] = torch.from_numpy(np.array(resize(target, (h, w), nearest=True)))
    return images, targets


class DenseFeedback:
    """One dense downstream task as an Evaluator: its own head, trained on the train pool, and the
    loss of a meta-pool batch through the (student) backbone. `micro_batch`: rows per backbone
    forward (None: all); `dtype`: of the backbone's inputs (the heads compute in float32, or in
    float64 when dtype is); `seed`: the head's initialisation; `world`: each rank's losses cover
    its share of the meta batch (the same batch on every rank), their sum the batch's."""

    def __init__(self, name: str, kind: str, weight: float, backbone: nn.Module, train_pool: Pool, meta_pool: Pool,
                 batch_size: int, head_steps: int, head_lr: float, micro_batch: int | None = None,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, min_depth: float | None = None,
                 max_depth: float | None = None, num_classes: int | None = None, seed: int = 0,
                 world: World | None = None) -> None:
        if kind not in KINDS:
            raise VptError(f"feedback {name!r}: kind {kind!r}; choose one of: {', '.join(KINDS)}")
        self.name, self.kind, self.weight, self.backbone = name, kind, float(weight), backbone
        self.train_pool, self.meta_pool = train_pool, meta_pool
        self.batch_size, self.head_steps, self.micro_batch = int(batch_size), int(head_steps), micro_batch
        self.device, self.dtype, self.world = torch.device(device), dtype, world or World()
        self.head_dtype = torch.float64 if dtype == torch.float64 else torch.float32
        for pool, label in ((train_pool, "train"), (meta_pool, "meta")):
            if len(pool[0]) != len(pool[1]):
                raise VptError(f"feedback {name!r}: the {label} pool has {len(pool[0])} images but {len(pool[1])} targets")
            if len(pool[0]) < self.batch_size:
                raise VptError(f"vision.feedback.batch_size={self.batch_size} exceeds the {len(pool[0])} rows of "
                               f"{name}'s {label} pool; lower it or draw a larger pool (datasets.<name>.pools)")
        rank_rows(self.batch_size, self.world, "vision.feedback.batch_size")  # an error now, not at the first meta step
        if kind == "segmentation" and num_classes is None:
            raise VptError(f"feedback {name!r}: a segmentation head needs num_classes")
        if kind == "depth" and (min_depth is None or max_depth is None):
            raise VptError(f"feedback {name!r}: a depth head needs min_depth and max_depth")
        dim = int(backbone.num_features)
        # Under its own seed, the caller's RNG left alone: the same run builds the same head.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            head = (probes.LinearSegHead(dim, int(num_classes), dropout=0.0) if kind == "segmentation"  # type: ignore[arg-type]
                    else probes.DepthHead(dim, float(min_depth), float(max_depth)))  # type: ignore[arg-type]
        self.head: nn.Module = head.to(self.device, self.head_dtype).eval()
        self.opt = torch.optim.AdamW(self.head.parameters(), lr=head_lr, weight_decay=0.0)
        self.depth_losses = (probes.depth_loss_per_image(float(min_depth), float(max_depth))  # type: ignore[arg-type]
                             if kind == "depth" else None)

    # ------------------------------------------------------------------ pieces
    def _draw(self, pool: Pool, generator: torch.Generator) -> Pool:
        idx = torch.randperm(len(pool[0]), generator=generator)[: self.batch_size]
        return pool[0][idx], pool[1][idx]

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) host images -> (B, D, h, w) patch tokens on the device, in the head's dtype."""
        patch = tokens(self.backbone, images.to(self.device, self.dtype))["patch"]  # (B, h, w, D)
        return patch.permute(0, 3, 1, 2).to(self.head_dtype)

    def _loss(self, out: torch.Tensor, target: torch.Tensor, denominator: int) -> torch.Tensor:
        """Summed pixel CE (segmentation) or summed per-image SILog (depth), over `denominator`."""
        if self.kind == "segmentation":
            return probes.segmentation_loss(out, target, denominator)
        assert self.depth_losses is not None
        return self.depth_losses(out, target).sum() / max(denominator, 1)

    def _denominator(self, target: torch.Tensor) -> int:
        return int((target != IGNORE).sum()) if self.kind == "segmentation" else len(target)

    # ------------------------------------------------------------------ the Evaluator protocol
    def update_head(self, generator: torch.Generator) -> dict[str, float]:
        """head_steps AdamW steps on train-pool batches; features of the frozen backbone."""
        total = 0.0
        try:
            with eval_mode(self.backbone), torch.enable_grad():
                for _ in range(self.head_steps):
                    images, target = self._draw(self.train_pool, generator)
                    with torch.no_grad():
                        feats = torch.cat([self._features(images[r]) for r in micro_batches(len(images), self.micro_batch)])
                    self.head.train()
                    self.opt.zero_grad(set_to_none=True)  # nothing accumulated elsewhere (FSDP's backward) leaks in
                    target = target.to(self.device)
                    loss = self._loss(self.head(feats), target, self._denominator(target))
                    loss.backward()
                    self.opt.step()
                    total += float(loss.detach())
        finally:
            self.head.eval()
            self.opt.zero_grad(set_to_none=True)
        return {"head_loss": total / max(self.head_steps, 1)}

    def losses(self, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """The loss of one meta-pool batch as its micro-batches' losses (this rank's share)."""
        images, target = self._draw(self.meta_pool, generator)
        denominator = self._denominator(target)  # of the whole batch: micro-batches and ranks add up
        mine = rank_rows(len(images), self.world, "vision.feedback.batch_size")
        images, target = images[mine], target[mine]
        params = list(self.head.parameters())
        flags = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(False)  # a graph toward the backbone only; the head's .grad stays as it is
        try:
            with eval_mode(self.backbone, self.head):
                for rows in micro_batches(len(images), self.micro_batch):
                    yield self._loss(self.head(self._features(images[rows])), target[rows].to(self.device), denominator)
        finally:
            for p, flag in zip(params, flags):
                p.requires_grad_(flag)

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        """Head weights, BatchNorm buffers and optimizer state (copies, for torch.save)."""
        return {"kind": self.kind, "head": {k: v.detach().clone() for k, v in self.head.state_dict().items()},
                "optimizer": copy.deepcopy(self.opt.state_dict())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != self.kind:
            raise VptError(f"feedback {self.name!r}: the checkpoint holds a {state.get('kind')!r} head, "
                           f"this run a {self.kind!r} one")
        try:
            self.head.load_state_dict(state["head"])
            self.opt.load_state_dict(state["optimizer"])
        except (KeyError, RuntimeError, ValueError) as e:
            raise VptError(f"feedback {self.name!r}: the checkpoint's head state does not fit this run's head: {e}") from e


def build_feedback(cfg: dict[str, Any], backbone: nn.Module, mean: Sequence[float], std: Sequence[float],
                   device: torch.device | str, dtype: torch.dtype, micro_batch: int | None, seed: int = 0,
                   world: World | None = None) -> list[DenseFeedback]:
    """The evaluators of a validated config's `vision.feedback` (tasks of weight 0 skipped); pool
    tables at vpt.paths.raw_split, ADE classes from datasets.<dataset>.num_classes, the depth range
    from eval.nyuv2. `seed`: of the heads' initialisation (the run's seed)."""
    fb = cfg["vision"]["feedback"]
    size = image_size(fb["resolution"], tuple(backbone.patch_embed.patch_size), "vision.feedback.resolution")
    unknown = sorted(set(fb["tasks"]) - set(TASK_KINDS))
    if unknown:
        raise VptError(f"vision.feedback.tasks: unknown task(s) {unknown}; choose from: {', '.join(TASK_KINDS)}")
    chosen = [(name, t) for name, t in fb["tasks"].items() if float(t["weight"]) > 0]
    if not chosen:
        raise VptError(f"vision.feedback.tasks: every task has weight 0 ({', '.join(fb['tasks']) or 'none given'}); "
                       f"give at least one of {', '.join(TASK_KINDS)} a positive weight")
    out = []
    for name, t in chosen:
        kind = TASK_KINDS[name]
        classes = num_classes(cfg, t["dataset"]) if kind == "segmentation" else None
        depth = cfg["eval"]["nyuv2"] if kind == "depth" else {}  # the evaluation's validity range
        lo, hi = depth.get("min_depth"), depth.get("max_depth")
        pools = [load_pool(raw_split(cfg, t["dataset"], t[split]), kind, size, mean, std, classes)
                 for split in ("train_split", "meta_split")]
        out.append(DenseFeedback(name, kind, float(t["weight"]), backbone, pools[0], pools[1], fb["batch_size"],
                                 fb["head_steps"], fb["head_lr"], micro_batch, device, dtype, lo, hi, classes, seed, world))
    return out
