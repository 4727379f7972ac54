"""Write every table and figure of the report into one directory.

The set of files is fixed (it does not depend on which runs have finished), so a Snakemake rule
can declare it as outputs; missing results show up as empty cells and "no results yet" notes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from vpt.errors import VptError
from vpt.report.figures import save_figure
from vpt.report.records import Layout, as_layout
from vpt.report.registry import REPORT_REGISTRY, EvalReport
from vpt.report.render import write_table

# The reports built from evaluation records, by kind, in registry order (vpt.report.registry).
_FROM_EVALUATIONS = [r for _, r in REPORT_REGISTRY.items() if isinstance(r, EvalReport)]
TABLES: Mapping[str, Callable[[pd.DataFrame, Layout], pd.DataFrame]] = {r.name: r.build() for r in _FROM_EVALUATIONS if r.kind == "table"}
FIGURES: Mapping[str, Callable[[pd.DataFrame, Layout], Figure]] = {r.name: r.build() for r in _FROM_EVALUATIONS if r.kind == "figure"}

NAMES: tuple[str, ...] = (*TABLES, *FIGURES)


def write_one(name: str, records: pd.DataFrame, layout: Layout | Mapping[str, Any] | None,
              tables_dir: str | os.PathLike[str], figures_dir: str | os.PathLike[str]) -> list[Path]:
    """Build one table (tables_dir/<name>.{md,csv,tex}) or figure (figures_dir/<name>.{png,pdf})."""
    layout = as_layout(layout)
    if name in TABLES:
        return write_table(TABLES[name](records, layout), None, Path(tables_dir) / name)
    if name in FIGURES:
        return save_figure(FIGURES[name](records, layout), Path(figures_dir) / name)
    raise VptError(f"unknown report {name!r}; choose one of: {', '.join(NAMES)}")


def report_files(out_dir: str | os.PathLike[str]) -> list[Path]:
    """Every file `write_report` writes, for declaring workflow outputs."""
    out = Path(out_dir)
    return ([out / f"{s}{x}" for s in TABLES for x in (".md", ".csv", ".tex")]
            + [out / f"{s}{x}" for s in FIGURES for x in (".png", ".pdf")])


def write_report(records: pd.DataFrame, layout: Layout | Mapping[str, Any] | None, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Build and write all tables and figures into one directory; returns the paths written (as `report_files`)."""
    return [p for name in NAMES for p in write_one(name, records, layout, out_dir, out_dir)]
