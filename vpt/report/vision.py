"""The paper's vision tables: Table 1's and Table 2's vision rows (vision group `main`) and the
vision ablation table (vision group `ablation`), from the same records as the language tables.

Learning rates are chosen as for the language rows: per model and method, the lr with the best
seed-mean final score, ties to the smaller lr; "best" is the metric's direction (METRICS), so the
lowest NYUv2 RMSE. Table 1 and the ablation select on each row's (column's) own metric, as
appendix A.3's sweeps select on mIoU or RMSE; Table 2's retrieval rows reuse the lr Table 1 chose
by ADE20K mIoU (a rate picked on retrieval itself would leak the test into the choice).
Nothing is filled in: a cell whose runs are not evaluated is empty with a note, a model without
any result has no row, and with no vision records the language tables come out unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from vpt.report.cells import STD_PHRASE, count_phrase, display_frame, format_lr, metric_mean_std
from vpt.report.records import METRICS, Layout, as_layout, seed_scores
from vpt.report.select import select_best_lr, summarize
from vpt.vision.grid import record_group

LayoutLike = Layout | Mapping[str, Any] | None
Rows = list[dict[str, str]]

MAIN, ABLATION = record_group("main"), record_group("ablation")
# Table 1's columns Baseline / V-Pretraining are dino / vpt in the vision rows (the language ones: ntp / vpt).
VISION_MAIN_METHODS: tuple[str, ...] = ("dino", "vpt")
VISION_ABLATION_METHODS: tuple[str, ...] = ("vpt", "random_feedback", "random_masks")
TABLE1_METRICS: tuple[tuple[str, str], ...] = (("nyuv2", "rmse"), ("ade20k", "miou"), ("imagenet_linear", "top1"))
TABLE2_METRICS: tuple[tuple[str, str], ...] = tuple((t, f"map_{p}") for t in ("roxford5k", "rparis6k") for p in ("easy", "medium", "hard"))
ABLATION_METRICS: tuple[tuple[str, str], ...] = (("ade20k", "miou"), ("nyuv2", "rmse"), ("imagenet_linear", "top1"))
SELECTION_METRIC: tuple[str, str] = ("ade20k", "miou")  # Table 2's and Figure 2 right's learning rate
OPTIONAL_METRICS: frozenset[tuple[str, str]] = frozenset({("imagenet_linear", "top1")})  # a column only where evaluated

RULE = ("per model, method and benchmark on that benchmark's own seed-mean final score (highest ADE20K mIoU and "
        "ImageNet linear top-1, lowest NYUv2 RMSE; ties go to the smaller learning rate)")
UNITS = "ADE20K mIoU and ImageNet linear top-1 in %, NYUv2 RMSE in metres (lower is better)"


def selections(records: pd.DataFrame, group: str, metrics: tuple[tuple[str, str], ...],
               methods: tuple[str, ...]) -> dict[tuple[str, str], pd.DataFrame]:
    """select_best_lr per (task, metric), restricted to `methods`."""
    out = {}
    for task, metric in metrics:
        sel = select_best_lr(records, group=group, task=task, metric=metric)
        out[(task, metric)] = sel[sel["method"].isin(methods)]
    return out


def table1_rows(records: pd.DataFrame, layout: Layout, columns: Mapping[str, str]) -> tuple[Rows, list[str], str]:
    """Table 1's vision rows (Model cell "<ViT> · <benchmark heading>", in the paper's benchmark
    order), their notes and the caption's sentence about them; `columns` maps dino / vpt to
    Table 1's Baseline / V-Pretraining labels. No rows (and "") without vision records."""
    sels = selections(records, MAIN, TABLE1_METRICS, VISION_MAIN_METHODS)
    rows: Rows = []
    notes: list[str] = []
    for key, sel in sels.items():
        m = METRICS[key]
        for model in layout.order_models(sel["model"]):
            row = {"Model": f"{layout.model_label(model)} · {m.heading}"}
            for method, label in columns.items():
                hit = sel[(sel["model"] == model) & (sel["method"] == method)]
                if hit.empty:
                    row |= {label: "", f"LR ({label})": "", f"Seeds ({label})": ""}
                    notes.append(f"{row['Model']}, {label}: no finished runs evaluated yet (cell left empty).")
                    continue
                s = hit.iloc[0]
                row |= {label: metric_mean_std(m, s["mean"], s["std"], s["n_seeds"]), f"LR ({label})": format_lr(s["lr"]),
                        f"Seeds ({label})": str(s["n_seeds"])}
                if s["n_seeds"] < 2:
                    notes.append(f"{row['Model']}, {label}: a single seed, so no standard deviation.")
            rows.append(row)
    if not rows:
        return [], [], ""
    picked = pd.concat(sels.values())
    notes.append(f"Vision rows: the learning rate is selected {RULE} among "
                 f"{count_phrase(picked['n_lrs'], 'learning rate')} of the vision main group.")
    caption = (f" Vision rows (<ViT> · <benchmark>): continued DINO self-supervision of the ViT, Baseline = DINO with "
               f"its fixed views, V-Pretraining = learned masks steered by ADE20K and NYUv2 feedback, final checkpoint; "
               f"{UNITS}. Each cell is the {STD_PHRASE} over {count_phrase(picked['n_seeds'], 'seed')} at the learning "
               f"rate selected {RULE}.")
    return rows, notes, caption


def add_table1_rows(t: pd.DataFrame, records: pd.DataFrame, layout: LayoutLike, columns: Mapping[str, str]) -> pd.DataFrame:
    """Table 1 with its vision rows after the language ones (`t` itself when there are none)."""
    return _appended(t, *table1_rows(records, as_layout(layout), columns),
                     "Performance on the downstream training tasks under matched learner update budgets.")


def _appended(t: pd.DataFrame, rows: Rows, notes: list[str], caption: str, lead_alone: str) -> pd.DataFrame:
    """`t` with the vision `rows` after its own, their caption and notes after its (`t` itself
    when there are none; `lead_alone` opens the caption of a table with no language rows)."""
    if not rows:
        return t
    lead = str(t.attrs["caption"]) if len(t) else lead_alone
    return display_frame([*t.to_dict("records"), *rows], list(t.columns),
                         **{**t.attrs, "caption": lead + caption, "notes": [*t.attrs.get("notes", []), *notes]})


def table2_rows(records: pd.DataFrame, layout: Layout, columns: Mapping[str, str]) -> tuple[Rows, list[str], str]:
    """Table 2's vision rows: R-Oxford5k / R-Paris6k Easy, Medium, Hard mAP per ViT, the mean over
    seeds at the lr Table 1 chose by ADE20K mIoU (per model and method)."""
    sel = selections(records, MAIN, (SELECTION_METRIC,), VISION_MAIN_METHODS)[SELECTION_METRIC][["model", "method", "lr"]]
    rows: Rows = []
    notes: list[str] = []
    seeds: list[int] = []
    for task, metric in TABLE2_METRICS:
        m = METRICS[(task, metric)]
        scores = summarize(seed_scores(records, MAIN, task, metric).merge(sel, on=["model", "method", "lr"]),
                           ["model", "method", "lr"])
        seeds += scores["n_seeds"].tolist()
        for model in layout.order_models(scores["model"]):
            row = {"Benchmark": f"{m.label} ({m.unit})", "Model": layout.model_label(model)}
            for method, label in columns.items():
                hit = scores[(scores["model"] == model) & (scores["method"] == method)]
                row[label] = m.cell(hit.iloc[0]["mean"]) if len(hit) else ""
                if hit.empty:
                    notes.append(f"{row['Benchmark']}, {row['Model']}, {label}: not evaluated yet at the ADE20K-selected "
                                 "learning rate (cell left empty).")
            rows.append(row)
    if not rows:
        return [], [], ""
    notes.append("Vision rows: at the learning rate Table 1 selected per model and method by seed-mean final ADE20K "
                 "mIoU (ties go to the smaller learning rate), not re-selected on retrieval.")
    caption = (" Vision rows: instance retrieval on Revisited Oxford / Paris (Easy, Medium and Hard protocols, mAP in %) "
               "with the frozen backbone's mean-pooled patch tokens, Baseline = DINO, V-Pretraining = learned masks; "
               f"each cell is the mean over {count_phrase(seeds, 'seed')} at the learning rate selected on ADE20K mIoU "
               "(Table 1).")
    return rows, notes, caption


def add_table2_rows(t: pd.DataFrame, records: pd.DataFrame, layout: LayoutLike, columns: Mapping[str, str]) -> pd.DataFrame:
    return _appended(t, *table2_rows(records, as_layout(layout), columns),
                     "Evaluation on tasks not used for feedback, final checkpoint.")


def table4_vision(records: pd.DataFrame, layout: LayoutLike = None) -> pd.DataFrame:
    """The vision ablation: per ViT of the `ablation` group, value feedback (vpt), random feedback
    and random masks, and the DINO baseline from `main` where evaluated; ADE20K mIoU, NYUv2 RMSE
    and (when the group evaluates it) ImageNet linear top-1, mean ± std over seeds at the lr
    selected per model, method and column on that column's seed-mean."""
    layout = as_layout(layout)
    ablation = selections(records, ABLATION, ABLATION_METRICS, VISION_ABLATION_METHODS)
    present = [k for k in ABLATION_METRICS if k not in OPTIONAL_METRICS or len(ablation[k])]
    baseline = selections(records, MAIN, tuple(present), ("dino",))
    columns = ["Model", "Method", *(METRICS[k].heading for k in present)]
    rows: Rows = []
    notes: list[str] = []
    for model in layout.order_models(pd.concat([ablation[k]["model"] for k in present])):
        mlabel = layout.model_label(model)
        dino = any((baseline[k]["model"] == model).any() for k in present)
        for method, sels in [*([("dino", baseline)] if dino else []), *((m, ablation) for m in VISION_ABLATION_METHODS)]:
            label = (f"{layout.method_label('dino')}, main group" if method == "dino"
                     else layout.method_label(method, ablation=True))
            row = {"Model": mlabel, "Method": label}
            chosen = []
            for key in present:
                m = METRICS[key]
                hit = sels[key][(sels[key]["model"] == model) & (sels[key]["method"] == method)]
                if hit.empty:
                    row[m.heading] = ""
                    notes.append(f"{mlabel}, {label}, {m.label}: no finished runs evaluated yet (cell left empty).")
                    continue
                s = hit.iloc[0]
                row[m.heading] = metric_mean_std(m, s["mean"], s["std"], s["n_seeds"])
                chosen.append(f"{m.label} {format_lr(s['lr'])} (n={s['n_seeds']})")
            if chosen:
                notes.append(f"{mlabel}, {label}, selected learning rate (seeds): " + "; ".join(chosen) + ".")
            rows.append(row)
    picked = pd.concat([*(ablation[k] for k in present), *baseline.values()])
    caption = (
        "Vision ablation of the task designer's feedback, final checkpoint: learned masks steered by value feedback "
        "(g_down of the ADE20K and NYUv2 evaluators), the same designer trained on a random vector of g_down's norm, "
        "and random smooth masks of the same keep ratio without a designer; the Baseline row is DINO with its fixed "
        f"views (vision group main), shown where evaluated. {UNITS}. Each cell is the {STD_PHRASE} over "
        f"{count_phrase(picked['n_seeds'], 'seed')} at the learning rate selected {RULE.replace('benchmark', 'column')} "
        f"among {count_phrase(picked['n_lrs'], 'learning rate')}."
    )
    return display_frame(rows, columns, name="Table 4 (vision)", caption=caption, notes=notes, label="tab:ablation-vision",
                         n_label_columns=2)
