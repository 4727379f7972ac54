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

from vpt.report.figures import plot_coverage, plot_passk, plot_tokens, save_figure
from vpt.report.records import Layout, as_layout
from vpt.report.render import write_table
from vpt.report.tables import table1, table2, table4, table_decontaminated

TABLES: Mapping[str, Callable[[pd.DataFrame, Layout], pd.DataFrame]] = {
    "table1_gsm8k": table1,
    "table1b_decontaminated": table_decontaminated,
    "table2_transfer": table2,
    "table4_ablation": table4,
}

FIGURES: Mapping[str, Callable[[pd.DataFrame, Layout], Figure]] = {
    "figure2_tokens": plot_tokens,
    "figure3_coverage": plot_coverage,
    "figure3_passk": plot_passk,
}


def report_files(out_dir: str | os.PathLike[str]) -> list[Path]:
    """Every file `write_report` writes, for declaring workflow outputs."""
    out = Path(out_dir)
    return ([out / f"{s}{x}" for s in TABLES for x in (".md", ".csv", ".tex")]
            + [out / f"{s}{x}" for s in FIGURES for x in (".png", ".pdf")])


def write_report(records: pd.DataFrame, layout: Layout | Mapping[str, Any] | None, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Build and write all tables and figures; returns the paths written (as `report_files`)."""
    layout = as_layout(layout)
    out = Path(out_dir)
    paths: list[Path] = []
    for stem, build in TABLES.items():
        paths += write_table(build(records, layout), None, out / stem)
    for stem, plot in FIGURES.items():
        paths += save_figure(plot(records, layout), out / stem)
    return paths
