"""Learning-rate selection (appendix A.1, "Hyper-parameter selection (language)").

For each model size and method the paper sweeps five learner learning rates and reports the
best-performing one. Here "best" is the highest mean over seeds of the per-seed score (final
checkpoint, or best checkpoint with early stopping as in Table 4); for an error metric (the vision
rows' NYUv2 RMSE) the lowest, as appendix A.3's depth sweep minimizes RMSE. Means that agree to float
noise are ties, broken towards the smaller learning rate so the choice never depends on row order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from vpt.errors import VptError
from vpt.report.records import metric_info, seed_scores

SELECTION_COLUMNS: tuple[str, ...] = ("lr", "mean", "std", "n_seeds", "n_lrs", "lrs")

# Means of the same scores summed in a different order can differ in the last bits; those are ties.
_TIE_RTOL = 1e-9
_TIE_ATOL = 1e-12


def summarize(scores: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Mean and sample standard deviation (ddof=1; NaN for a single seed) of `score` per `by`."""
    by = list(by)
    if scores.empty:
        return pd.DataFrame({**{c: pd.Series(dtype=scores[c].dtype) for c in by},
                             "mean": pd.Series(dtype="float64"), "std": pd.Series(dtype="float64"),
                             "n_seeds": pd.Series(dtype="int64")})
    g = scores.groupby(by, sort=True)["score"]
    out = g.agg(mean="mean", n_seeds="size").reset_index()
    out["std"] = g.std(ddof=1).to_numpy()
    return out.loc[:, [*by, "mean", "std", "n_seeds"]]


def select_best_lr(
    records: pd.DataFrame,
    group: str = "main",
    task: str = "gsm8k",
    metric: str = "exact_match",
    early_stopping: bool = False,
    *,
    by: Sequence[str] = ("model", "method"),
    max_step: int | None = None,
) -> pd.DataFrame:
    """The best learning rate per `by` (default per model and method).

    Returns one row per `by` with: lr (selected), mean and std (sample, ddof=1) of the per-seed
    scores at that lr, n_seeds (seeds behind it), n_lrs (learning rates with at least one scored
    seed, i.e. how wide the sweep behind the choice was) and lrs (those learning rates, sorted).
    Scores stay in the records' units. "Best" follows the metric's direction (METRICS): the
    lowest seed-mean for an error such as NYUv2 RMSE, the highest otherwise. `max_step` bounds
    the early-stopping window (which keeps each seed's highest value, so it is for scores).
    """
    by = list(by)
    lower = not metric_info(task, metric).higher_is_better
    scores = seed_scores(records, group, task, metric, early_stopping=early_stopping, max_step=max_step)
    _check_unambiguous(scores, by, group)
    per_lr = summarize(scores, [*by, "lr"])
    rows = [_pick(by, key, cands, lower) for key, cands in per_lr.groupby(by, sort=True)] if len(per_lr) else []
    if not rows:
        return pd.DataFrame({**{c: pd.Series(dtype="str") for c in by},
                             "lr": pd.Series(dtype="float64"), "mean": pd.Series(dtype="float64"),
                             "std": pd.Series(dtype="float64"), "n_seeds": pd.Series(dtype="int64"),
                             "n_lrs": pd.Series(dtype="int64"), "lrs": pd.Series(dtype="object")})
    return pd.DataFrame(rows).loc[:, [*by, *SELECTION_COLUMNS]].reset_index(drop=True)


def _pick(by: list[str], key: object, cands: pd.DataFrame, lower_is_better: bool = False) -> dict[str, object]:
    means = cands["mean"].to_numpy()
    tied = np.isclose(means, means.min() if lower_is_better else means.max(), rtol=_TIE_RTOL, atol=_TIE_ATOL)
    best = cands[tied].sort_values("lr").iloc[0]
    keys = key if isinstance(key, tuple) else (key,)
    return {
        **dict(zip(by, keys)),
        "lr": float(best["lr"]),
        "mean": float(best["mean"]),
        "std": float(best["std"]),
        "n_seeds": int(best["n_seeds"]),
        "n_lrs": len(cands),
        "lrs": tuple(sorted(float(x) for x in cands["lr"])),
    }


def _check_unambiguous(scores: pd.DataFrame, by: list[str], group: object) -> None:
    """Two runs with the same seed in one selection cell differ in a setting `by` does not
    separate (feedback_n, corpus, a vision run's variant): averaging them would mix experiments, so refuse."""
    dup = scores[scores.duplicated([*by, "lr", "seed"], keep=False)]
    if len(dup):
        row = dup.iloc[0]
        runs = sorted(dup.loc[(dup[[*by, "lr", "seed"]] == row[[*by, "lr", "seed"]]).all(axis=1), "run"])
        raise VptError(
            f"group {group!r} holds several runs for {dict(row[[*by, 'lr', 'seed']])} ({', '.join(runs)}); "
            f"they differ in a setting not in by={by} (e.g. feedback_n, corpus or variant): add it to `by` or filter the records"
        )
