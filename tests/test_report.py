"""vpt.report: learning-rate selection, tables, renderings and figures on synthetic records.

Every expected number is computed here independently of vpt.report (plain loops and numpy over
the per-seed values the records were built from), so a wrong selection, a population instead of
a sample std, a missing x100 or a re-selected learning rate all make a test fail.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vpt.errors import VptError
from vpt.report import (
    check_records,
    plot_coverage,
    plot_passk,
    plot_tokens,
    report_files,
    save_figure,
    select_best_lr,
    table1,
    table2,
    table4,
    table_decontaminated,
    to_latex,
    to_markdown,
    write_report,
    write_table,
)

LRS = (5e-6, 6.25e-6, 7.5e-6, 8.75e-6, 1e-5)
SEEDS = (0, 1, 2)
MODELS = ("qwen1.5-0.5b", "qwen1.5-4b")
TOKENS_PER_STEP = 32 * 1024
FINAL_STEP = 2000
LAYOUT = {
    "models": {"qwen1.5-0.5b": "0.5B", "qwen1.5-4b": "4B", "qwen1.5-7b": "7B"},
}


# ---------------------------------------------------------------- building synthetic records

def row(group: str, model: str, method: str, lr: float, seed: int, step: int, task: str, metric: str, value: float,
        feedback_n: int = 1024, corpus: str = "raw", final_step: int = FINAL_STEP) -> dict[str, object]:
    return {
        "group": group, "model": model, "method": method, "lr": lr, "seed": seed, "feedback_n": feedback_n,
        "corpus": corpus, "run": f"{model}_{method}_lr{lr:g}_s{seed}_fb{feedback_n}_{corpus}",
        "step": step, "final": step == final_step, "tokens": step * TOKENS_PER_STEP,
        "task": task, "metric": metric, "value": value,
    }


def frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def main_values(rng: np.random.Generator) -> dict[tuple[str, str, float, int], float]:
    """Final GSM8K per (model, method, lr, seed): random, so the best lr is not planted by hand."""
    return {(m, meth, lr, s): float(rng.uniform(0.1, 0.7))
            for m in MODELS for meth in ("ntp", "vpt") for lr in LRS for s in SEEDS}


def main_records(values: dict[tuple[str, str, float, int], float]) -> list[dict[str, object]]:
    """Each run: a final checkpoint with the given value and an intermediate one that is
    *higher* (so a selection that looked past the final checkpoint would differ)."""
    rows = []
    for (m, meth, lr, s), v in values.items():
        rows.append(row("main", m, meth, lr, s, FINAL_STEP, "gsm8k", "exact_match", v))
        rows.append(row("main", m, meth, lr, s, 1000, "gsm8k", "exact_match", min(1.0, v + 0.25)))
    return rows


def expected_best(values: dict[tuple, float], model: str, method: str) -> tuple[float, float, float]:
    """(lr, mean, sample std) by plain Python: max mean, the smaller lr on an exact tie."""
    best = None
    for lr in LRS:
        xs = [values[(model, method, lr, s)] for s in SEEDS if (model, method, lr, s) in values]
        if not xs:
            continue
        mean = sum(xs) / len(xs)
        if best is None or mean > best[1]:
            best = (lr, mean, float(np.std(xs, ddof=1)))
    assert best is not None
    return best


def cell(mean: float, std: float) -> str:
    return f"{100 * mean:.2f} ± {100 * std:.2f}"


def lr_text(lr: float) -> str:
    return {5e-6: "5e-6", 6.25e-6: "6.25e-6", 7.5e-6: "7.5e-6", 8.75e-6: "8.75e-6", 1e-5: "1e-5"}[lr]


@pytest.fixture
def values() -> dict[tuple[str, str, float, int], float]:
    return main_values(np.random.default_rng(1234))


# ---------------------------------------------------------------- records validation

def test_check_records_rejects_bad_input(values: dict) -> None:
    df = frame(main_records(values))
    with pytest.raises(VptError, match="lack column"):
        check_records(df.drop(columns=["tokens"]))
    with pytest.raises(VptError, match=r"fractions in \[0, 1\]"):
        check_records(df.assign(value=df["value"] * 100))
    clash = pd.concat([df.iloc[[0]], df.iloc[[0]].assign(value=0.99)])
    with pytest.raises(VptError, match="conflicting values"):
        check_records(clash)
    # Identical repeats are harmless and dropped; an empty frame without columns is "no results".
    assert len(check_records(pd.concat([df, df.iloc[:5]]))) == len(df)
    assert check_records(pd.DataFrame()).empty


# ---------------------------------------------------------------- learning-rate selection

def test_select_best_lr_matches_independent_computation(values: dict) -> None:
    rows = main_records(values)
    rng = np.random.default_rng(0)
    sel = select_best_lr(frame([rows[i] for i in rng.permutation(len(rows))]))  # row order must not matter
    assert len(sel) == 4
    for _, s in sel.iterrows():
        lr, mean, std = expected_best(values, s["model"], s["method"])
        assert s["lr"] == lr
        assert s["mean"] == pytest.approx(mean, abs=1e-12)
        assert s["std"] == pytest.approx(std, abs=1e-12)
        assert (s["n_seeds"], s["n_lrs"], s["lrs"]) == (3, 5, LRS)


def test_select_best_lr_tie_goes_to_smaller_lr() -> None:
    # The same three scores in another seed order: summed in seed order the means differ in the
    # last bit (0.19999999999999998 vs 0.20000000000000004, the larger lr "winning"); still a tie.
    tied = {6.25e-6: (0.1, 0.1, 0.4), 8.75e-6: (0.4, 0.1, 0.1)}
    rows = [row("main", "m", "vpt", lr, s, FINAL_STEP, "gsm8k", "exact_match", v)
            for lr, vs in tied.items() for s, v in enumerate(vs)]
    rows += [row("main", "m", "vpt", 5e-6, s, FINAL_STEP, "gsm8k", "exact_match", 0.15) for s in range(3)]
    for order in (rows, rows[::-1]):
        sel = select_best_lr(frame(order))
        assert sel["lr"].tolist() == [6.25e-6]
        assert sel["mean"].iloc[0] == pytest.approx(0.2)


def test_select_best_lr_early_stopping_uses_each_seeds_best_checkpoint() -> None:
    # lr A ends higher, lr B peaks higher mid-run: final selection picks A, early stopping B.
    traj = {
        5e-6: {0: [0.40, 0.45, 0.50], 1: [0.42, 0.46, 0.52]},  # final mean 0.51, max mean 0.51
        1e-5: {0: [0.60, 0.30, 0.20], 1: [0.50, 0.58, 0.30]},  # final mean 0.25, max mean 0.59
    }
    steps = (500, 1000, FINAL_STEP)
    rows = [row("ablation", "qwen1.5-4b", "vpt", lr, s, st, "gsm8k", "exact_match", v)
            for lr, seeds in traj.items() for s, vs in seeds.items() for st, v in zip(steps, vs)]
    # An unfinished run (no final checkpoint yet) with a high early value must not count.
    rows.append(row("ablation", "qwen1.5-4b", "vpt", 5e-6, 7, 500, "gsm8k", "exact_match", 0.99))
    df = frame(rows)
    final = select_best_lr(df, group="ablation")
    assert final["lr"].iloc[0] == 5e-6 and final["mean"].iloc[0] == pytest.approx(0.51)
    early = select_best_lr(df, group="ablation", early_stopping=True)
    assert early["lr"].iloc[0] == 1e-5
    assert early["mean"].iloc[0] == pytest.approx(np.mean([0.60, 0.58]))
    assert early["std"].iloc[0] == pytest.approx(np.std([0.60, 0.58], ddof=1))
    assert early["n_seeds"].iloc[0] == 2
    # A window that ends before the peaks: seeds score 0.60 / 0.50 at lr B vs 0.40 / 0.42 at lr A.
    window = select_best_lr(df, group="ablation", early_stopping=True, max_step=500)
    assert window["lr"].iloc[0] == 1e-5 and window["mean"].iloc[0] == pytest.approx(0.55)


def test_select_best_lr_refuses_to_mix_settings() -> None:
    rows = [row("coverage", "m", "vpt", 1e-5, 0, FINAL_STEP, "gsm8k", "exact_match", v, feedback_n=n)
            for n, v in ((1000, 0.2), (3000, 0.4))]
    with pytest.raises(VptError, match="feedback_n"):
        select_best_lr(frame(rows), group="coverage")
    by_n = select_best_lr(frame(rows), group="coverage", by=("model", "method", "feedback_n"))
    assert by_n["mean"].tolist() == [0.2, 0.4]


# ---------------------------------------------------------------- tables

def test_table1_cells_and_layout(values: dict) -> None:
    rows = main_records(values)
    # A model the layout does not list comes last, under its key; a lone seed shows no std.
    rows.append(row("main", "base", "ntp", 1e-5, 0, FINAL_STEP, "gsm8k", "exact_match", 0.125))
    t = table1(frame(rows), LAYOUT)
    assert list(t.columns) == ["Model", "Baseline", "V-Pretraining", "LR (Baseline)", "LR (V-Pretraining)",
                               "Seeds (Baseline)", "Seeds (V-Pretraining)"]
    assert t["Model"].tolist() == ["0.5B", "4B", "base"]
    for label, model in (("0.5B", MODELS[0]), ("4B", MODELS[1])):
        r = t[t["Model"] == label].iloc[0]
        for col, method in (("Baseline", "ntp"), ("V-Pretraining", "vpt")):
            lr, mean, std = expected_best(values, model, method)
            assert r[col] == cell(mean, std)
            assert r[f"LR ({col})"] == lr_text(lr)
            assert r[f"Seeds ({col})"] == "3"
    base = t[t["Model"] == "base"].iloc[0]
    assert (base["Baseline"], base["V-Pretraining"]) == ("12.50", "")
    notes = " ".join(t.attrs["notes"])
    assert "base, V-Pretraining: no finished runs" in notes and "single seed" in notes
    assert "sample standard deviation" in t.attrs["caption"] and "5 learning rates" in t.attrs["caption"]


def test_table1_missing_runs_are_absent_not_invented(values: dict) -> None:
    kept = {k: v for k, v in values.items() if not (k[0] == MODELS[1] and k[1] == "vpt")}
    t = table1(frame(main_records(kept)), LAYOUT)
    assert t["Model"].tolist() == ["0.5B", "4B"]  # no 7B row although the layout names it
    four = t[t["Model"] == "4B"].iloc[0]
    assert four["V-Pretraining"] == "" and four["LR (V-Pretraining)"] == ""
    assert four["Baseline"] == cell(*expected_best(values, MODELS[1], "ntp")[1:])
    assert any("4B, V-Pretraining" in n for n in t.attrs["notes"])


def test_table2_uses_gsm8k_selected_lr(values: dict) -> None:
    rows = main_records(values)
    rng = np.random.default_rng(7)
    transfer = {}
    for (m, meth, lr, s) in values:
        for task, metric in (("omega_id", "exact_match"), ("omega_ood", "exact_match"), ("mmlu", "acc_micro")):
            if task == "omega_ood" and m == MODELS[0]:
                continue  # 0.5B OOD not evaluated yet
            # The highest transfer scores sit at the lr GSM8K does *not* pick, so re-selecting would show.
            bonus = 0.0 if lr == expected_best(values, m, meth)[0] else 0.3
            transfer[(task, m, meth, lr, s)] = v = float(rng.uniform(0.0, 0.6)) + bonus
            rows.append(row("main", m, meth, lr, s, FINAL_STEP, task, metric, v))
            rows.append(row("main", m, meth, lr, s, FINAL_STEP, task, "acc_macro" if task == "mmlu" else "other", 0.0))
    t = table2(frame(rows), LAYOUT)
    assert list(t.columns) == ["Benchmark", "Model", "Baseline", "V-Pretraining"]
    assert list(zip(t["Benchmark"], t["Model"])) == [
        ("OMEGA ID (Acc %)", "0.5B"), ("OMEGA ID (Acc %)", "4B"), ("OMEGA OOD (Acc %)", "4B"),
        ("MMLU (Acc %)", "0.5B"), ("MMLU (Acc %)", "4B")]
    names = {"OMEGA ID (Acc %)": "omega_id", "OMEGA OOD (Acc %)": "omega_ood", "MMLU (Acc %)": "mmlu"}
    labels = {"0.5B": MODELS[0], "4B": MODELS[1]}
    for _, r in t.iterrows():
        for col, meth in (("Baseline", "ntp"), ("V-Pretraining", "vpt")):
            m = labels[r["Model"]]
            lr = expected_best(values, m, meth)[0]
            want = np.mean([transfer[(names[r["Benchmark"]], m, meth, lr, s)] for s in SEEDS])
            assert r[col] == f"{100 * want:.2f}"


def ablation_records() -> tuple[list[dict[str, object]], dict[str, tuple[float, list[float]]]]:
    """Two lrs per method, two checkpoints per run; returns rows and the expected (lr, per-seed
    early-stopped scores) per method, computed as the records are written."""
    rng = np.random.default_rng(42)
    rows, expected = [], {}
    for method in ("vpt", "random_feedback", "uniform_smoothing", "self_distill", "ntp"):
        best = None
        for lr in (5e-6, 1e-5):
            per_seed = []
            for s in SEEDS:
                mid, end = (float(x) for x in rng.uniform(0.3, 0.6, size=2))
                rows.append(row("ablation", "qwen1.5-4b", method, lr, s, 1000, "gsm8k", "exact_match", mid))
                rows.append(row("ablation", "qwen1.5-4b", method, lr, s, FINAL_STEP, "gsm8k", "exact_match", end))
                per_seed.append(max(mid, end))
            if best is None or np.mean(per_seed) > np.mean(best[1]):
                best = (lr, per_seed)
        expected[method] = best
    return rows, expected


def test_table4_early_stopped_cells() -> None:
    rows, expected = ablation_records()
    t = table4(frame(rows), LAYOUT)
    assert list(t.columns) == ["Model", "Value feedback", "Random feedback", "Uniform smoothing", "Self distillation"]
    assert t["Model"].tolist() == ["4B"]
    for col, method in (("Value feedback", "vpt"), ("Random feedback", "random_feedback"),
                        ("Uniform smoothing", "uniform_smoothing"), ("Self distillation", "self_distill")):
        lr, scores = expected[method]
        assert t[col].iloc[0] == cell(np.mean(scores), np.std(scores, ddof=1))
        assert f"{col} {lr_text(lr)} (n=3)" in " ".join(t.attrs["notes"])
    assert "early stopping" in t.attrs["caption"]


def test_table4_missing_method_is_empty_cell() -> None:
    rows, _ = ablation_records()
    t = table4(frame([r for r in rows if r["method"] != "self_distill"]), LAYOUT)
    assert t["Self distillation"].iloc[0] == ""
    assert t["Value feedback"].iloc[0] != ""
    assert any("Self distillation: no finished runs" in n for n in t.attrs["notes"])


def test_decontaminated_table_is_separate(values: dict) -> None:
    rows = main_records(values)
    dec = {("ntp", 0): 0.56, ("ntp", 1): 0.58, ("vpt", 0): 0.57, ("vpt", 1): 0.60}
    rows += [row("decontaminated", MODELS[1], meth, 1e-5, s, FINAL_STEP, "gsm8k", "exact_match", v, corpus="decontaminated")
             for (meth, s), v in dec.items()]
    df = frame(rows)
    t = table_decontaminated(df, LAYOUT)
    assert t["Model"].tolist() == ["4B"]
    assert t["Baseline"].iloc[0] == cell(0.57, np.std([0.56, 0.58], ddof=1))
    assert t["V-Pretraining"].iloc[0] == cell(0.585, np.std([0.57, 0.60], ddof=1))
    assert "1 learning rate " in t.attrs["caption"]
    # Table 1 is unchanged by the decontaminated runs.
    assert table1(df, LAYOUT).equals(table1(frame(main_records(values)), LAYOUT))


# ---------------------------------------------------------------- renderings

def parse_markdown(text: str) -> pd.DataFrame:
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    split = [[c.strip().replace(r"\|", "|") for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines]
    return pd.DataFrame(split[2:], columns=split[0])


def test_renderings_parse_back(values: dict, tmp_path: Path) -> None:
    layout = {"models": {MODELS[0]: "Tiny_1 & 50%", MODELS[1]: "4B"}, "method_labels": {"vpt": "V|Pre"}}
    t = table1(frame(main_records(values)), layout)
    paths = write_table(t, None, tmp_path / "t1")
    assert [p.name for p in paths] == ["t1.md", "t1.csv", "t1.tex"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t1.csv", "t1.md", "t1.tex"]  # no temp files left

    md = (tmp_path / "t1.md").read_text()
    assert md.startswith("**Table 1.** GSM8K")
    pd.testing.assert_frame_equal(parse_markdown(md), t.reset_index(drop=True), check_dtype=False)

    csv = pd.read_csv(tmp_path / "t1.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(csv, t, check_dtype=False)

    tex = (tmp_path / "t1.tex").read_text()
    for token in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{lrrrrrr}",
                  r"Tiny\_1 \& 50\%", r"$\pm$", r"Pass@1 (\%)", r"\label{tab:gsm8k}"):
        assert token in tex, token
    assert "±" not in tex and "Tiny_1" not in tex
    body = tex.split(r"\midrule")[1].split(r"\bottomrule")[0].strip().splitlines()
    assert len(body) == len(t) and all(ln.count(" & ") == len(t.columns) - 1 for ln in body)

    write_table(t, "A custom caption", tmp_path / "t1")  # overwrites in place
    assert "A custom caption" in (tmp_path / "t1.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t1.csv", "t1.md", "t1.tex"]


@pytest.mark.parametrize("build", [table1, table2, table4, table_decontaminated])
def test_empty_tables_say_no_results(build, tmp_path: Path) -> None:
    t = build(pd.DataFrame(), LAYOUT)
    assert len(t) == 0 and len(t.columns) >= 4
    write_table(t, None, tmp_path / "empty")
    assert "no results yet" in (tmp_path / "empty.md").read_text()
    tex = (tmp_path / "empty.tex").read_text()
    assert rf"\multicolumn{{{len(t.columns)}}}{{c}}{{\emph{{no results yet}}}}" in tex
    back = pd.read_csv(tmp_path / "empty.csv", dtype=str)
    assert list(back.columns) == list(t.columns) and back.empty


def test_markdown_and_latex_without_attrs() -> None:
    df = pd.DataFrame({"a": ["x"], "b": ["1"]})
    assert to_markdown(df).splitlines()[0] == "| a | b |"
    assert r"\caption" not in to_latex(df)


# ---------------------------------------------------------------- figures

def token_records() -> tuple[list[dict[str, object]], dict[str, dict[int, list[float]]]]:
    rng = np.random.default_rng(3)
    steps = (0, 200, 400, 600, 800, 1000)
    rows, curves = [], {}
    for method in ("ntp", "vpt"):
        curves[method] = {}
        for s in SEEDS:
            vs = [float(x) for x in rng.uniform(0.3, 0.6, size=len(steps))]
            curves[method][s] = vs
            rows += [row("tokens", MODELS[1], method, 1e-5, s, st, "gsm8k", "exact_match", v, final_step=1000)
                     for st, v in zip(steps, vs)]
    return rows, curves


def test_token_figure_curves(tmp_path: Path) -> None:
    rows, curves = token_records()
    fig = plot_tokens(frame(rows), LAYOUT)
    raw_ax, best_ax = fig.axes[:2]
    for ax, transform in ((raw_ax, lambda v: v), (best_ax, np.maximum.accumulate)):
        lines = ax.get_lines()
        assert [ln.get_label().split(" (")[0] for ln in lines] == ["Baseline", "V-Pretraining"]
        for ln, method in zip(lines, ("ntp", "vpt")):
            want = 100 * np.mean([transform(np.array(curves[method][s])) for s in SEEDS], axis=0)
            np.testing.assert_allclose(ln.get_ydata(), want)
            np.testing.assert_allclose(ln.get_xdata(), np.array([0, 200, 400, 600, 800, 1000]) * TOKENS_PER_STEP)
    assert "tokens" in raw_ax.get_xlabel() and "(%)" in raw_ax.get_ylabel()
    check_image_files(save_figure(fig, tmp_path / "tokens"))


def test_coverage_figure(values: dict, tmp_path: Path) -> None:
    rows = main_records(values)
    cov = {1000: (0.40, 0.44), 2000: (0.50, 0.52), 3000: (0.53, 0.57)}
    rows += [row("coverage", MODELS[1], "vpt", 1e-5, s, FINAL_STEP, "gsm8k", "exact_match", v, feedback_n=n)
             for n, vs in cov.items() for s, v in enumerate(vs)]
    fig = plot_coverage(frame(rows), LAYOUT)
    ax = fig.axes[0]
    steered = ax.containers[0]  # the error-bar container of the vpt line
    np.testing.assert_allclose(steered.lines[0].get_ydata(), [100 * np.mean(v) for v in cov.values()])
    # Baseline: the main sweep's ntp runs of the same model and lr, as a horizontal line.
    base = [ln for ln in ax.get_lines() if ln.get_label().startswith("Baseline")]
    want = 100 * np.mean([values[(MODELS[1], "ntp", 1e-5, s)] for s in SEEDS])
    assert len(base) == 1 and np.allclose(base[0].get_ydata(), want)
    check_image_files(save_figure(fig, tmp_path / "coverage"))


def test_passk_figure(values: dict, tmp_path: Path) -> None:
    rows = main_records(values)
    ks = (1, 2, 4, 8, 16)
    for (m, meth, lr, s), v in values.items():
        rows += [row("main", m, meth, lr, s, FINAL_STEP, "gsm8k_passk", f"pass@{k}", min(1.0, v + 0.02 * i))
                 for i, k in enumerate(ks)]
    fig = plot_passk(frame(rows), LAYOUT)
    assert [ax.get_title() for ax in fig.axes] == ["0.5B", "4B"]
    for ax, model in zip(fig.axes, MODELS):
        assert ax.get_xscale() == "log"
        for container, method in zip(ax.containers, ("ntp", "vpt")):
            lr = expected_best(values, model, method)[0]
            want = [100 * np.mean([min(1.0, values[(model, method, lr, s)] + 0.02 * i) for s in SEEDS]) for i in range(len(ks))]
            np.testing.assert_allclose(container.lines[0].get_xdata(), ks)
            np.testing.assert_allclose(container.lines[0].get_ydata(), want)
    check_image_files(save_figure(fig, tmp_path / "passk"))


def check_image_files(paths: list[Path]) -> None:
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    png, pdf = (p.read_bytes() for p in paths)
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000
    assert sorted(p.name for p in paths[0].parent.iterdir()) == sorted(p.name for p in paths)


def test_empty_figures_render(tmp_path: Path) -> None:
    for i, plot in enumerate((plot_tokens, plot_coverage, plot_passk)):
        fig = plot(pd.DataFrame(), LAYOUT)
        assert any(t.get_text() == "no results yet" for ax in fig.axes for t in ax.texts)
        check_image_files(save_figure(fig, tmp_path / f"empty{i}"))
        for p in list(tmp_path.iterdir()):
            p.unlink()


def test_failed_save_keeps_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fig = plot_passk(pd.DataFrame(), LAYOUT)
    paths = save_figure(fig, tmp_path / "f")
    before = [p.read_bytes() for p in paths]

    def broken(self, fname, **kwargs) -> None:  # writes half a file, then fails
        Path(fname).write_bytes(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(type(fig), "savefig", broken)
    with pytest.raises(RuntimeError):
        save_figure(fig, tmp_path / "f")
    assert [p.read_bytes() for p in paths] == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pdf", "f.png"]


def test_write_report_writes_every_declared_file(values: dict, tmp_path: Path) -> None:
    rows, _ = ablation_records()
    written = write_report(frame(main_records(values) + rows), LAYOUT, tmp_path / "report")
    assert written == report_files(tmp_path / "report")
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == sorted(p.name for p in written)
    assert all(p.stat().st_size > 0 for p in written)
    assert "0.5B" in (tmp_path / "report" / "table1.md").read_text()
    assert io.StringIO((tmp_path / "report" / "table4.csv").read_text()).read().startswith("Model,Value feedback")
