"""The student's masked views: where a vision method's masks come from, how they are applied, and
the designer's regulariser on them.

    designer  m = designer(crop), soft, in [0, 1] (vpt, random_feedback)
    random    smooth random masks of keep ratio rho, one generator per image from (seed, step, row)
              (random_masks: the same keep ratio and smoothness, no feedback)

Masks cover the global crops (the paper's default) or every crop (`apply_to: all`); the teacher
always sees the unmasked global crops (vpt.vision.dino). Image i's random masks depend on its own
generator alone, so they do not change with micro-batches or ranks, as the multi-crop views.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from vpt.vision.masks import keep_ratio_penalty, random_masks, soft_mask, total_variation

MASK_STREAM = 2  # salt of the random masks' seeds: apart from the crops'


def image_seed(seed: int, step: int, row: int) -> int:
    """The seed of one image's draws at one step (independent of ranks and micro-batches)."""
    return int(np.random.SeedSequence([seed, step, row]).generate_state(1, dtype=np.uint64)[0] >> 1)




class MaskViews:
    PICTURE_STREAM = 3  # the fixed crops of the mask pictures

    def __init__(self, source: str, section: dict[str, Any], seed: int) -> None:
        """`source`: designer | random; `section`: a validated `vision.designer` section."""
        s = section
        self.source, self.seed = source, seed
        self.mask_all = s["apply_to"] == "all"
        self.rho, self.lambda_keep, self.lambda_tv = float(s["keep_ratio"]), float(s["lambda_keep"]), float(s["lambda_tv"])
        self.grid, self.sharpness = int(s["random"]["grid"]), float(s["random"]["sharpness"])
        self.pictures = int(s["pictures"])
        self.designer: nn.Module | None = None  # set by the task when source is designer

    def masks(self, crops: Sequence[torch.Tensor], rows: Sequence[int], batch: int) -> list[torch.Tensor]:
        """(b, 1, S, S) masks of each crop in `crops` (views of the images `rows` of batch `batch`)."""
        if self.source == "designer":
            assert self.designer is not None
            dtype = next(self.designer.parameters()).dtype
            return [self.designer(c.to(dtype)).to(c.dtype) for c in crops]
        per_image = []
        for r in rows:  # one generator per image: its masks whatever the micro-batch
            gen = torch.Generator().manual_seed(image_seed(self.seed + MASK_STREAM, batch, r))
            per_image.append([random_masks(1, c.shape[-1], self.rho, self.grid, gen, self.sharpness) for c in crops])
        return [torch.cat([im[v] for im in per_image]).to(c.device, c.dtype) for v, c in enumerate(crops)]

    def apply(self, global_crops: Sequence[torch.Tensor], local_crops: Sequence[torch.Tensor], rows: Sequence[int],
              batch: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(the student's views: masked crops then the unmasked rest, the masks)."""
        masked = list(global_crops) + (list(local_crops) if self.mask_all else [])
        rest = [] if self.mask_all else list(local_crops)
        masks = self.masks(masked, rows, batch)
        return [soft_mask(c, m) for c, m in zip(masked, masks)] + rest, masks

    def regulariser(self, global_crops: Sequence[torch.Tensor], local_crops: Sequence[torch.Tensor]) -> torch.Tensor:
        """lambda_keep * (mean m - rho)^2 + lambda_tv * TV(m), averaged over the masked crops, with
        a graph to the designer."""
        assert self.designer is not None
        crops = list(global_crops) + (list(local_crops) if self.mask_all else [])
        dtype = next(self.designer.parameters()).dtype
        masks = [self.designer(c.to(dtype)) for c in crops]
        keep = torch.stack([keep_ratio_penalty(m, self.rho) for m in masks]).mean()
        tv = torch.stack([total_variation(m) for m in masks]).mean()
        return self.lambda_keep * keep + self.lambda_tv * tv
