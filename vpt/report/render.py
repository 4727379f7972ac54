"""Render a display table (see `vpt.report.tables`) to Markdown, CSV and booktabs LaTeX.

The three files are renderings of one DataFrame, so they cannot disagree. A table with no rows
still renders its header with a "no results yet" line, because the pipeline writes every table
on every run and a half-finished grid is a normal state, not an error.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from vpt.io import write_text

NO_RESULTS = "no results yet"

# Characters with a meaning in LaTeX text mode, and Unicode that pdfLaTeX does not set without packages.
_LATEX_ESCAPES: dict[str, str] = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "×": r"$\times$",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "–": "--",
    "—": "---",
    # the vision rows' headings and labels ("NYUv2 RMSE (m) ↓", "ViT-B/16 · ...", "NYUv2 δ1", "−RMSE")
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "·": r"$\cdot$",
    "δ": r"$\delta$",
    "−": r"$-$",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))


def markdown_escape(text: str) -> str:
    """Cells may not contain a bare pipe or a newline in a pipe table."""
    return str(text).replace("|", r"\|").replace("\n", " ")


def _caption(df: pd.DataFrame, caption: str | None) -> str:
    return caption if caption is not None else str(df.attrs.get("caption", ""))


def _notes(df: pd.DataFrame) -> list[str]:
    return [str(n) for n in df.attrs.get("notes", [])]


def _label_columns(df: pd.DataFrame) -> int:
    return int(df.attrs.get("n_label_columns", 1))


def to_markdown(df: pd.DataFrame, caption: str | None = None) -> str:
    """A GitHub-flavoured pipe table with the caption above and notes below."""
    caption = _caption(df, caption)
    name = df.attrs.get("name")
    lines: list[str] = []
    if caption or name:
        lines += [f"**{name}.** {caption}".strip() if name else caption, ""]
    k = _label_columns(df)
    lines.append("| " + " | ".join(markdown_escape(c) for c in df.columns) + " |")
    lines.append("| " + " | ".join(":--" if i < k else "--:" for i in range(len(df.columns))) + " |")
    body: Sequence[Sequence[str]] = df.astype("str").to_numpy().tolist()
    if not body:
        body = [[f"*{NO_RESULTS}*", *([""] * (len(df.columns) - 1))]]
    lines += ["| " + " | ".join(markdown_escape(v) for v in row) + " |" for row in body]
    notes = _notes(df)
    if notes:
        lines += ["", "Notes:", *(f"- {n}" for n in notes)]
    return "\n".join(lines) + "\n"


def to_latex(df: pd.DataFrame, caption: str | None = None) -> str:
    """A booktabs `table` float; needs \\usepackage{booktabs}."""
    caption = _caption(df, caption)
    k = _label_columns(df)
    spec = "".join("l" if i < k else "r" for i in range(len(df.columns)))
    lines = [r"\begin{table}[t]", r"\centering"]
    if caption:
        lines.append(rf"\caption{{{latex_escape(caption)}}}")
    if df.attrs.get("label"):
        lines.append(rf"\label{{{df.attrs['label']}}}")
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
              " & ".join(latex_escape(c) for c in df.columns) + r" \\", r"\midrule"]
    if len(df):
        lines += [" & ".join(latex_escape(v) for v in row) + r" \\" for row in df.astype("str").to_numpy().tolist()]
    else:
        lines.append(rf"\multicolumn{{{len(df.columns)}}}{{c}}{{\emph{{{NO_RESULTS}}}}} \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [rf"\par\smallskip{{\footnotesize {latex_escape(n)}}}" for n in _notes(df)]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_csv(df: pd.DataFrame) -> str:
    """The cells exactly as displayed (no caption: a CSV reader would take it for data)."""
    return df.to_csv(index=False, lineterminator="\n")


def write_table(df: pd.DataFrame, caption: str | None, stem: str | os.PathLike[str]) -> list[Path]:
    """Write <stem>.md, <stem>.csv and <stem>.tex, each atomically (temporary sibling, then
    os.replace), so a reader never sees half a table. `caption` None uses df.attrs["caption"]."""
    stem = Path(stem)
    out = {".md": to_markdown(df, caption), ".csv": to_csv(df), ".tex": to_latex(df, caption)}
    paths = []
    for suffix, text in out.items():
        path = stem.with_name(stem.name + suffix)
        write_text(path, text)
        paths.append(path)
    return paths
