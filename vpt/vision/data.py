"""Batches of images from a normalized vision table (id, image bytes, ...): the SSL learner's data.

Rows are drawn in a seeded permutation per epoch (without replacement within an epoch), and the
position (epoch, cursor, batches drawn) is the whole state, so a resumed run reads exactly the
batches it would have read. Labels are never read: self-supervision sees the images alone.
The table's encoded bytes stay in memory and each batch is decoded when drawn (vpt.vision.images).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from vpt.errors import VptError
from vpt.io import read_parquet
from vpt.vision.images import decode_rgb


class ImageBatches:
    def __init__(self, table: str | Path, batch_size: int, seed: int) -> None:
        self.path = Path(table)
        frame = read_parquet(self.path)
        if "image" not in frame.columns:
            raise VptError(f"{self.path} has no `image` column (columns: {', '.join(map(str, frame.columns))})")
        if len(frame) < batch_size:
            raise VptError(f"{self.path}: {len(frame)} images, fewer than train.batch_size {batch_size}")
        self.images: list[bytes] = list(frame["image"])
        self.ids: list[str] = [str(i) for i in frame["id"]] if "id" in frame.columns else [str(i) for i in range(len(frame))]
        self.batch_size, self.seed = batch_size, seed
        self.epoch, self.cursor, self.batches = 0, 0, 0

    def _order(self) -> np.ndarray:
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.images))

    def next(self) -> tuple[int, list[torch.Tensor]]:
        """(index of this batch, its images as uint8 (H, W, 3) tensors)."""
        if self.cursor + self.batch_size > len(self.images):
            self.epoch, self.cursor = self.epoch + 1, 0
        rows = self._order()[self.cursor:self.cursor + self.batch_size]
        self.cursor += self.batch_size
        index, self.batches = self.batches, self.batches + 1
        return index, [self.decode(int(r)) for r in rows]

    def decode(self, row: int) -> torch.Tensor:
        """Row `row`'s image as a uint8 (H, W, 3) tensor."""
        try:
            return torch.from_numpy(decode_rgb(self.images[row]).copy())  # writable: torch owns it
        except ValueError as e:
            raise VptError(f"{self.path} row {row} (id {self.ids[row]}): {e}") from e

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "cursor": self.cursor, "batches": self.batches}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.cursor, self.batches = int(state["epoch"]), int(state["cursor"]), int(state["batches"])
