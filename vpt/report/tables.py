"""The paper's language tables (1, 2, 4, and the decontamination retrain of section 4.5) as
display DataFrames: one string per cell, percent with two decimals, "" where nothing was
evaluated; Tables 1 and 2 then append their vision rows (vpt.report.vision). What a cell means
is written into `df.attrs` (name, caption, notes) so every rendering (Markdown, CSV, LaTeX)
carries the same explanation.

A model with no result at all is dropped; a model with results for only some methods keeps its
row and the missing cell is left empty with a note naming it. Nothing is ever filled in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from vpt.report.cells import STD_PHRASE, count_phrase, format_lr, mean_std, percent  # noqa: F401  (format_lr: figures')
from vpt.report.cells import display_frame as _frame
from vpt.report.records import Layout, as_layout, seed_scores
from vpt.report.select import select_best_lr, summarize
from vpt.report.vision import VISION_MAIN_METHODS, add_table1_rows, add_table2_rows

LayoutLike = Layout | Mapping[str, Any] | None

MAIN_METHODS: tuple[str, ...] = ("ntp", "vpt")
ABLATION_METHODS: tuple[str, ...] = ("vpt", "random_feedback", "uniform_smoothing", "self_distill")

# (task, metric, row label) of Table 2, in the paper's order with OMEGA split into its two splits.
TRANSFER_BENCHMARKS: tuple[tuple[str, str, str], ...] = (
    ("omega_id", "exact_match", "OMEGA ID (Acc %)"),
    ("omega_ood", "exact_match", "OMEGA OOD (Acc %)"),
    ("mmlu", "acc_micro", "MMLU (Acc %)"),
)

def table1(records: pd.DataFrame, layout: LayoutLike = None) -> pd.DataFrame:
    """Table 1: GSM8K test Pass@1, Baseline vs V-Pretraining, per model size, at each method's best
    learning rate from the `main` sweep; then the vision rows of vision group `main`
    (vpt.report.vision: NYUv2 RMSE, ADE20K mIoU, ImageNet linear top-1 per ViT, dino vs vpt)."""
    layout = as_layout(layout)
    t = _gsm8k_table(records, layout, "main", "Table 1", "tab:gsm8k",
                     "GSM8K test Pass@1 (%) of continued pretraining under matched learner update budgets")
    return add_table1_rows(t, records, layout, _vision_columns(layout))


def _vision_columns(layout: Layout) -> dict[str, str]:
    """The vision methods under the language columns: dino under Baseline, vpt under V-Pretraining."""
    return {v: layout.method_label(m) for v, m in zip(VISION_MAIN_METHODS, MAIN_METHODS)}


def table_decontaminated(records: pd.DataFrame, layout: LayoutLike = None) -> pd.DataFrame:
    """Section 4.5: the same comparison retrained on the decontaminated corpus.

    Kept out of Table 1 on purpose: it is another corpus and (typically) another sweep, and the
    paper reports it in the text, not in Table 1; mixing it in would make Table 1 disagree
    with the paper's and its caption ("best of k learning rates") untrue for those rows.
    """
    return _gsm8k_table(records, as_layout(layout), "decontaminated", "Table 1b", "tab:gsm8k-decontaminated",
                        "GSM8K test Pass@1 (%) after continued pretraining on the decontaminated corpus "
                        "(near-duplicates of GSM8K and MATH test removed)")


def _gsm8k_table(records: pd.DataFrame, layout: Layout, group: str, name: str, label: str, what: str) -> pd.DataFrame:
    sel = select_best_lr(records, group=group)
    sel = sel[sel["method"].isin(MAIN_METHODS)]
    labels = {m: layout.method_label(m) for m in MAIN_METHODS}
    columns = ["Model", *labels.values(), *(f"LR ({v})" for v in labels.values()), *(f"Seeds ({v})" for v in labels.values())]
    rows, notes = [], []
    for model in layout.order_models(sel["model"]):
        row: dict[str, str] = {"Model": layout.model_label(model)}
        for method, mlabel in labels.items():
            hit = sel[(sel["model"] == model) & (sel["method"] == method)]
            if hit.empty:
                row |= {mlabel: "", f"LR ({mlabel})": "", f"Seeds ({mlabel})": ""}
                notes.append(f"{row['Model']}, {mlabel}: no finished runs evaluated yet (cell left empty).")
                continue
            s = hit.iloc[0]
            row |= {mlabel: mean_std(s["mean"], s["std"], s["n_seeds"]), f"LR ({mlabel})": format_lr(s["lr"]),
                    f"Seeds ({mlabel})": str(s["n_seeds"])}
            if s["n_seeds"] < 2:
                notes.append(f"{row['Model']}, {mlabel}: a single seed, so no standard deviation.")
        rows.append(row)
    caption = (
        f"{what}, final checkpoint. Each cell is the {STD_PHRASE} over {count_phrase(sel['n_seeds'], 'seed')} "
        f"at that method's best learning rate, selected per model size and method as the highest seed-mean "
        f"final Pass@1 among {count_phrase(sel['n_lrs'], 'learning rate')} swept (ties go to the smaller "
        f"learning rate); the LR and Seeds columns give the selected rate and the seeds behind each cell."
    )
    return _frame(rows, columns, name=name, caption=caption, notes=notes, label=label, n_label_columns=1)


def transfer_scores(records: pd.DataFrame) -> pd.DataFrame:
    """Table 2's numbers: per benchmark, model and method, the mean over seeds of the
    final-checkpoint score at the learning rate selected on GSM8K (Table 1's selection), not a
    rate re-selected on the transfer task itself, which would leak the test into the choice.
    Columns: task, metric, model, method, lr, mean, std, n_seeds."""
    sel = select_best_lr(records, group="main")[["model", "method", "lr"]]
    parts = []
    for task, metric, _ in TRANSFER_BENCHMARKS:
        scores = seed_scores(records, "main", task, metric).merge(sel, on=["model", "method", "lr"], how="inner")
        part = summarize(scores, ["model", "method", "lr"])
        part.insert(0, "metric", metric)
        part.insert(0, "task", task)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def table2(records: pd.DataFrame, layout: LayoutLike = None) -> pd.DataFrame:
    """Table 2: OMEGA ID / OOD exact match and MMLU accuracy, Baseline vs V-Pretraining, per model
    size, mean over seeds at the GSM8K-selected learning rate; then the vision rows (R-Oxford5k and
    R-Paris6k mAP per ViT at the ADE20K-selected learning rate, vpt.report.vision)."""
    layout = as_layout(layout)
    scores = transfer_scores(records)
    scores = scores[scores["method"].isin(MAIN_METHODS)]
    labels = {m: layout.method_label(m) for m in MAIN_METHODS}
    columns = ["Benchmark", "Model", *labels.values()]
    rows, notes = [], []
    for task, metric, bench in TRANSFER_BENCHMARKS:
        here = scores[(scores["task"] == task) & (scores["metric"] == metric)]
        for model in layout.order_models(here["model"]):
            row = {"Benchmark": bench, "Model": layout.model_label(model)}
            for method, mlabel in labels.items():
                hit = here[(here["model"] == model) & (here["method"] == method)]
                row[mlabel] = percent(hit.iloc[0]["mean"]) if len(hit) else ""
                if hit.empty:
                    notes.append(f"{bench}, {row['Model']}, {mlabel}: not evaluated yet at the GSM8K-selected "
                                 f"learning rate (cell left empty).")
            rows.append(row)
    caption = (
        "Transfer to tasks not used for feedback, final checkpoint: OMEGA explorative exact match on the "
        "in-distribution (ID) and out-of-distribution (OOD) splits, and zero-shot MMLU accuracy (micro-averaged "
        f"over questions), in %. Each cell is the mean over {count_phrase(scores['n_seeds'], 'seed')} at the "
        "learning rate selected on GSM8K Pass@1 (Table 1), not re-selected on these tasks."
    )
    t = _frame(rows, columns, name="Table 2", caption=caption, notes=notes, label="tab:transfer", n_label_columns=2)
    return add_table2_rows(t, records, layout, _vision_columns(layout))


def table4(records: pd.DataFrame, layout: LayoutLike = None, max_step: int | None = None) -> pd.DataFrame:
    """Table 4: feedback and target-shaping ablations (one row per model in the `ablation`
    group), early-stopped GSM8K Pass@1 at each method's best learning rate, where the
    selection itself uses the early-stopped score."""
    layout = as_layout(layout)
    sel = select_best_lr(records, group="ablation", early_stopping=True, max_step=max_step)
    sel = sel[sel["method"].isin(ABLATION_METHODS)]
    labels = {m: layout.method_label(m, ablation=True) for m in ABLATION_METHODS}
    columns = ["Model", *labels.values()]
    rows, notes = [], []
    for model in layout.order_models(sel["model"]):
        row = {"Model": layout.model_label(model)}
        chosen = []
        for method, mlabel in labels.items():
            hit = sel[(sel["model"] == model) & (sel["method"] == method)]
            if hit.empty:
                row[mlabel] = ""
                notes.append(f"{row['Model']}, {mlabel}: no finished runs evaluated yet (cell left empty).")
                continue
            s = hit.iloc[0]
            row[mlabel] = mean_std(s["mean"], s["std"], s["n_seeds"])
            chosen.append(f"{mlabel} {format_lr(s['lr'])} (n={s['n_seeds']})")
        if chosen:
            notes.append(f"{row['Model']}, selected learning rate (seeds): " + "; ".join(chosen) + ".")
        rows.append(row)
    window = f"within {max_step:,} learner steps" if max_step is not None else "over each run's evaluated checkpoints"
    caption = (
        f"GSM8K test Pass@1 (%) with early stopping {window}: each seed scores its best evaluated checkpoint. "
        f"Each cell is the {STD_PHRASE} over {count_phrase(sel['n_seeds'], 'seed')} at the method's best "
        f"learning rate among {count_phrase(sel['n_lrs'], 'learning rate')}, selected on the same early-stopped "
        "score (ties go to the smaller learning rate). Value feedback uses the true downstream gradient; random "
        "feedback replaces it with a random vector; uniform smoothing and self distillation use fixed soft "
        "targets without downstream feedback."
    )
    return _frame(rows, columns, name="Table 4", caption=caption, notes=notes, label="tab:ablation", n_label_columns=1)
