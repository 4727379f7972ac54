"""Tables and figures of the paper's language experiments, built from evaluation records.

Records are a long DataFrame with the columns in `COLUMNS` (one row per group, run,
checkpoint, task and metric, values as fractions); see `vpt.report.records`.
"""

from vpt.report.build import report_files, write_report
from vpt.report.figures import passk_scores, plot_coverage, plot_passk, plot_tokens, save_figure
from vpt.report.records import COLUMNS, Layout, as_layout, check_records, checkpoint_scores, seed_scores
from vpt.report.render import to_csv, to_latex, to_markdown, write_table
from vpt.report.select import select_best_lr, summarize
from vpt.report.tables import table1, table2, table4, table_decontaminated, transfer_scores

__all__ = [
    "COLUMNS", "Layout", "as_layout", "check_records", "checkpoint_scores", "seed_scores",
    "select_best_lr", "summarize",
    "table1", "table2", "table4", "table_decontaminated", "transfer_scores",
    "to_csv", "to_latex", "to_markdown", "write_table",
    "passk_scores", "plot_coverage", "plot_passk", "plot_tokens", "save_figure",
    "report_files", "write_report",
]
