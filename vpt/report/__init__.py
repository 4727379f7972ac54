"""Tables and figures of the paper's language and vision experiments, built from evaluation records.

Records are a long DataFrame with the columns in `COLUMNS` (one row per group, run,
checkpoint, task and metric; values as fractions, or metres for NYUv2 RMSE: `METRICS`); see
`vpt.report.records`. Which reports exist, what each reads and how it is built:
`vpt.report.registry`.

The names below are imported from their modules on first use (PEP 562), so that importing
vpt.report.registry (the CLI's parser, the Snakefile) does not load pandas and matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, tuple[str, ...]] = {
    "build": ("report_files", "write_report"),
    "figures": ("passk_scores", "plot_coverage", "plot_passk", "plot_tokens", "save_figure"),
    "pareto": ("pareto_front", "pareto_points", "plot_pareto"),
    "records": ("COLUMNS", "METRICS", "Layout", "as_layout", "check_records", "checkpoint_scores", "metric_info", "seed_scores"),
    "render": ("to_csv", "to_latex", "to_markdown", "write_table"),
    "select": ("select_best_lr", "summarize"),
    "tables": ("table1", "table2", "table4", "table_decontaminated", "transfer_scores"),
    "vision": ("table4_vision",),
}
_MODULE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE)


def __getattr__(name: str) -> Any:
    if name not in _MODULE:
        raise AttributeError(f"module 'vpt.report' has no attribute {name!r}")
    return getattr(importlib.import_module(f"vpt.report.{_MODULE[name]}"), name)
