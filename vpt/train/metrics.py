"""Per-step metrics: kept in memory, rewritten atomically as JSONL (never appended, so a
resumed run has exactly one row per step), optionally mirrored to TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vpt.io import write_text


class MetricsLog:
    def __init__(self, path: Path, tensorboard_dir: Path | None = None, write: bool = True) -> None:
        """`write`: False on every rank but the first of a distributed run (the rows are the same)."""
        self.path, self.write = path, write
        self.rows: list[dict[str, Any]] = []
        self.tb = None
        if tensorboard_dir is not None and write:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise RuntimeError("train.tensorboard: true needs the `tensorboard` package (pip install tensorboard)") from e
            self.tb = SummaryWriter(str(tensorboard_dir))

    def log(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k != "step":
                    self.tb.add_scalar(k, v, row["step"])

    def flush(self) -> None:
        if not self.write:
            return
        write_text(self.path, "".join(json.dumps(r) + "\n" for r in self.rows))

    def state_dict(self) -> list[dict[str, Any]]:
        return list(self.rows)

    def load_state_dict(self, rows: list[dict[str, Any]]) -> None:
        self.rows = list(rows)

    def close(self) -> None:
        self.flush()
        if self.tb is not None:
            self.tb.close()
