"""The evaluation records the report is built from, and how they are turned into per-seed scores.

Records are long-format: one row per (group, run, checkpoint, task, metric). Every table and
figure goes through `seed_scores` or `checkpoint_scores`, so the rules for what counts as a
seed's score (final checkpoint, or the best checkpoint for early stopping) live in one place.
What a metric is (its label, whether larger is better, whether it is a fraction) is `METRICS`'.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vpt.errors import VptError

COLUMNS: tuple[str, ...] = (
    "group", "model", "method", "lr", "seed", "feedback_n", "corpus", "run",
    "step", "final", "tokens", "task", "metric", "value",
)
"""Columns every records frame must carry (extra columns are ignored)."""

OPTIONAL_COLUMNS: Mapping[str, str] = {"variant": ""}
"""Columns a records frame may carry, filled with this default when absent: `variant` is a vision
run's g_down weighting and designer variant (VisionRun.variant), "" for the language runs."""

RUN_KEYS: tuple[str, ...] = ("model", "method", "lr", "seed", "feedback_n", "corpus", "variant", "run")
"""What identifies a training run; `run` is unique per the other seven."""

# The vision methods come last, so the language tables and figures keep their order.
METHOD_ORDER: tuple[str, ...] = ("ntp", "vpt", "random_feedback", "uniform_smoothing", "self_distill", "dino", "random_masks")

DEFAULT_METHOD_LABELS: Mapping[str, str] = {
    "ntp": "Baseline",
    "vpt": "V-Pretraining",
    "random_feedback": "Random feedback",
    "uniform_smoothing": "Uniform smoothing",
    "self_distill": "Self distillation",
    "dino": "Baseline (DINO)",
    "random_masks": "Random masks",
}

# Table 4 of the paper names the method by what it feeds the designer, not by the method's name.
DEFAULT_ABLATION_LABELS: Mapping[str, str] = {**DEFAULT_METHOD_LABELS, "vpt": "Value feedback"}


@dataclass(frozen=True)
class Metric:
    """What one (task, metric) of the records is, for the check, the lr selection and the display."""

    label: str  # "ADE20K mIoU"
    higher_is_better: bool
    is_fraction: bool  # in [0, 1] and shown in percent; otherwise shown in `unit` (e.g. NYUv2's metres)
    unit: str = "%"

    @property
    def heading(self) -> str:
        """"NYUv2 RMSE (m) ↓": the label, its display unit and which way is better."""
        unit = f" ({self.unit})" if self.unit else ""
        return f"{self.label}{unit} {'↑' if self.higher_is_better else '↓'}"

    def cell(self, x: float) -> str:
        """A value as shown: percent with two decimals for a fraction (like the language rows),
        four decimals in its own unit otherwise (the paper's 0.5888 m)."""
        return f"{100.0 * x:.2f}" if self.is_fraction else f"{x:.4f}"


# The vision evaluators' report metrics: only these enter the records (the JSONs also hold counts,
# probe losses and per-example rows). A (task, metric) not listed is a fraction where larger is
# better, as every language metric of the reports is (exact match, Pass@k, accuracy).
METRICS: Mapping[tuple[str, str], Metric] = {
    ("ade20k", "miou"): Metric("ADE20K mIoU", True, True),
    ("ade20k", "pixel_acc"): Metric("ADE20K pixel accuracy", True, True),
    ("nyuv2", "rmse"): Metric("NYUv2 RMSE", False, False, "m"),
    ("nyuv2", "absrel"): Metric("NYUv2 AbsRel", False, False, ""),
    ("nyuv2", "delta1"): Metric("NYUv2 δ1", True, True),
    ("imagenet_linear", "top1"): Metric("ImageNet linear top-1", True, True),
    **{(task, f"map_{p}"): Metric(f"{name} {p.capitalize()} mAP", True, True)
       for task, name in (("roxford5k", "R-Oxford5k"), ("rparis6k", "R-Paris6k")) for p in ("easy", "medium", "hard")},
}
_FRACTION = Metric("", True, True)


def metric_info(task: str, metric: str) -> Metric:
    return METRICS.get((task, metric), _FRACTION)


def report_metrics(task: str) -> list[str]:
    """The metrics of a vision task that enter the records, in METRICS order."""
    return [m for t, m in METRICS if t == task]


@dataclass(frozen=True)
class Layout:
    """Display order and labels; anything it does not name falls back to the raw key."""

    models: tuple[str, ...] = ()
    model_labels: Mapping[str, str] = field(default_factory=dict)
    method_labels: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_METHOD_LABELS))
    ablation_labels: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ABLATION_LABELS))

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any]) -> Layout:
        """Accept the loose dict the pipeline passes around.

        `models` may be a list of keys or an ordered {key: label} dict; `model_labels`,
        `method_labels` and `ablation_labels` override the defaults key by key.
        """
        models = spec.get("models") or ()
        model_labels = dict(models) if isinstance(models, Mapping) else {}
        model_labels.update(spec.get("model_labels") or {})
        return cls(
            models=tuple(models),
            model_labels=model_labels,
            method_labels={**DEFAULT_METHOD_LABELS, **(spec.get("method_labels") or {})},
            ablation_labels={**DEFAULT_ABLATION_LABELS, **(spec.get("ablation_labels") or {})},
        )

    def model_label(self, model: str) -> str:
        return str(self.model_labels.get(model, model))

    def method_label(self, method: str, ablation: bool = False) -> str:
        labels = self.ablation_labels if ablation else self.method_labels
        return str(labels.get(method, method))

    def order_models(self, present: Iterable[str]) -> list[str]:
        """Layout order first, then models the layout does not list (sorted), so that a result
        is never hidden just because nobody added its model to the layout."""
        present = set(present)
        listed = [m for m in self.models if m in present]
        return listed + sorted(present - set(listed))


def as_layout(layout: Layout | Mapping[str, Any] | None) -> Layout:
    if layout is None:
        return Layout()
    if isinstance(layout, Layout):
        return layout
    return Layout.from_mapping(layout)


def method_rank(method: str) -> int:
    """Position in the paper's method order; unknown methods after the known ones."""
    return METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)


def order_methods(present: Iterable[str]) -> list[str]:
    present = set(present)
    return [m for m in METHOD_ORDER if m in present] + sorted(present - set(METHOD_ORDER))


def check_records(records: pd.DataFrame) -> pd.DataFrame:
    """Validate and normalise a records frame; returns a cleaned copy.

    A frame with no rows (even one without columns) is accepted as "nothing evaluated yet".
    Rows without a value count as not evaluated. Repeated identical rows are dropped; two
    different values for the same (group, run, step, task, metric) are an error, since picking
    one would silently choose a result.
    """
    if len(records) == 0:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in (*COLUMNS, *OPTIONAL_COLUMNS)})
    missing = [c for c in COLUMNS if c not in records.columns]
    if missing:
        raise VptError(f"evaluation records lack column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
    records = records.assign(**{c: d for c, d in OPTIONAL_COLUMNS.items() if c not in records.columns})
    df = records.loc[:, [*COLUMNS, *OPTIONAL_COLUMNS]].dropna(subset=["value"])
    try:
        df = df.astype({c: _dtype(c) for c in df.columns})
    except (TypeError, ValueError) as e:
        raise VptError(f"evaluation records have a column of the wrong type: {e}") from e
    # RMSE and AbsRel are unbounded above (lower is better); everything else is a fraction.
    unbounded = {f"{t}\0{m}" for (t, m), info in METRICS.items() if not info.is_fraction}
    fraction = ~(df["task"] + "\0" + df["metric"]).isin(unbounded)
    _check_range(df[fraction & ((df["value"] < 0) | (df["value"] > 1))],
                 "evaluation values must be fractions in [0, 1] (tables convert to percent)")
    _check_range(df[~fraction & ~((df["value"] >= 0) & np.isfinite(df["value"]))],
                 "evaluation values of an error metric (RMSE, AbsRel) must be finite and non-negative")
    df = df.drop_duplicates()
    key = ["group", "run", "step", "task", "metric"]
    clash = df[df.duplicated(key, keep=False)]
    if len(clash):
        row = clash.iloc[0]
        raise VptError(
            f"conflicting values for run {row['run']} (group {row['group']}) {row['task']}/{row['metric']} at step {row['step']}: "
            f"{sorted(clash.loc[(clash[key] == row[key]).all(axis=1), 'value'].tolist())}"
        )
    return df.reset_index(drop=True)


def _check_range(outside: pd.DataFrame, what: str) -> None:
    if len(outside):
        row = outside.iloc[0]
        raise VptError(f"{what}; got {row['value']} for run {row['run']} {row['task']}/{row['metric']} at step {row['step']}")


def _dtype(column: str) -> str:
    if column in ("lr", "value"):
        return "float64"
    if column in ("seed", "feedback_n", "step", "tokens"):
        return "int64"
    if column == "final":
        return "bool"
    return "str"


def select(records: pd.DataFrame, group: str | Sequence[str], task: str, metric: str | None = None) -> pd.DataFrame:
    """Rows of one group (or several, each run counted once) for one task (and metric)."""
    df = check_records(records)
    groups = [group] if isinstance(group, str) else list(group)
    df = df[df["group"].isin(groups) & (df["task"] == task)]
    if metric is not None:
        df = df[df["metric"] == metric]
    # A run listed in several of the requested groups must not count twice.
    return df.drop(columns="group").drop_duplicates(["run", "step", "task", "metric"]).reset_index(drop=True)


def seed_scores(
    records: pd.DataFrame,
    group: str | Sequence[str],
    task: str,
    metric: str,
    early_stopping: bool = False,
    max_step: int | None = None,
) -> pd.DataFrame:
    """One score per run: its final-checkpoint value, or with `early_stopping` its best value
    over the evaluated checkpoints up to `max_step` (the paper's "early stopping within 2,000
    steps"). Only runs whose final checkpoint was evaluated count, so an unfinished run never
    enters with a score from a truncated trajectory. Columns: RUN_KEYS + score."""
    df = select(records, group, task, metric)
    finished = set(df.loc[df["final"], "run"])
    df = df[df["run"].isin(finished)]
    if early_stopping:
        if max_step is not None:
            df = df[df["step"] <= max_step]
        scored = df.groupby(list(RUN_KEYS), as_index=False, sort=True)["value"].max()
    else:
        scored = df[df["final"]].loc[:, [*RUN_KEYS, "value"]]
    return scored.rename(columns={"value": "score"}).sort_values(list(RUN_KEYS)).reset_index(drop=True)


def checkpoint_scores(records: pd.DataFrame, group: str | Sequence[str], task: str, metric: str) -> pd.DataFrame:
    """Every evaluated checkpoint of every run (finished or not): RUN_KEYS + step, tokens, final, value."""
    df = select(records, group, task, metric)
    return df.loc[:, [*RUN_KEYS, "step", "tokens", "final", "value"]].sort_values([*RUN_KEYS, "step"]).reset_index(drop=True)
