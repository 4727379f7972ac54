"""The column check every normalizer starts with (vpt.data.normalize, vpt.data.normalize_vision)."""

from __future__ import annotations

import pandas as pd


class MissingColumns(ValueError):
    pass


def require(df: pd.DataFrame, schema: str, *columns: str) -> None:
    """Raise MissingColumns naming the missing columns and those the source has."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise MissingColumns(
            f"schema {schema!r} needs column(s) {missing}; the source has columns {list(df.columns)}"
        )
