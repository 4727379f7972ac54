"""The vision reports on synthetic records: Table 1's and Table 2's vision rows, the vision
ablation table and Figure 2 right (the Pareto front), plus the records they are built from.

Every expected cell is written out by hand from the per-seed values below (means and sample
standard deviations of three numbers), so a max instead of a min for RMSE, a re-selected learning
rate, a percent where metres belong or a population std all make a test fail.
"""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from test_report import LAYOUT, check_image_files, frame, main_records, main_values
from vpt import paths
from vpt.config import load_config
from vpt.errors import VptError
from vpt.report import (METRICS, check_records, pareto_front, pareto_points, plot_pareto, save_figure, select_best_lr, table1,
                        table2, table4_vision, to_latex, to_markdown)
from vpt.report.load import load_records
from vpt.report.pareto import baseline_point
from vpt.report.registry import REPORT_REGISTRY, model_label
from vpt.vision.grid import VisionRun, vision_group_evaluations

from conftest import REPO

B, L = "dinov3-vitb16", "dinov3-vitl16"
VLAYOUT = {"models": {**LAYOUT["models"], B: "ViT-B/16", L: "ViT-L/16"}}
FEEDBACK = (1.0, 1.0)


def vrun(method: str, lr: float, seed: int, model: str = B, weights: tuple[float, float] | None = FEEDBACK,
         designer: str = "default") -> VisionRun:
    return VisionRun(model, method, lr, seed, weights if method in ("vpt", "random_feedback") else None, designer)


def vrow(group: str, run: VisionRun, task: str, metric: str, value: float) -> dict[str, object]:
    return {"group": f"vision.{group}", "model": run.model, "method": run.method, "lr": run.lr, "seed": run.seed,
            "feedback_n": 0, "corpus": "", "variant": run.variant, "run": run.id, "step": 20000, "final": True,
            "tokens": 0, "task": task, "metric": metric, "value": value}


def per_seed(group: str, task: str, metric: str, values: dict[tuple[str, float], list[float]], model: str = B) -> list[dict[str, object]]:
    return [vrow(group, vrun(method, lr, s, model), task, metric, v)
            for (method, lr), vs in values.items() for s, v in enumerate(vs)]


# Vision `main`, ViT-B: the best lr differs per benchmark and per direction.
RMSE = {("dino", 1e-5): [0.60, 0.62, 0.58], ("dino", 2e-5): [0.55, 0.57, 0.59],  # lowest mean: 2e-5 (0.57)
        ("vpt", 1e-5): [0.50, 0.52, 0.54], ("vpt", 2e-5): [0.53, 0.53, 0.53]}   # lowest mean: 1e-5 (0.52)
MIOU = {("dino", 1e-5): [0.48, 0.49, 0.50], ("dino", 2e-5): [0.40, 0.41, 0.42],  # highest: 1e-5 (49 %)
        ("vpt", 1e-5): [0.45, 0.46, 0.47], ("vpt", 2e-5): [0.50, 0.51, 0.52]}   # highest: 2e-5 (51 %)
TOP1 = {("dino", 1e-5): [0.80, 0.81, 0.82]}  # vpt's linear probe not evaluated yet


def main_vision_records() -> list[dict[str, object]]:
    rows = per_seed("main", "nyuv2", "rmse", RMSE) + per_seed("main", "ade20k", "miou", MIOU)
    rows += per_seed("main", "imagenet_linear", "top1", TOP1)
    rows += per_seed("main", "nyuv2", "rmse", {("dino", 1e-5): [0.5752]}, model=L)  # ViT-L: one seed, NYUv2 only
    rows += per_seed("main", "nyuv2", "absrel", {k: [0.1] * 3 for k in RMSE})  # in the records, in no table
    return rows


# ---------------------------------------------------------------- records

def test_metric_table_directions_and_display() -> None:
    rmse, miou = METRICS[("nyuv2", "rmse")], METRICS[("ade20k", "miou")]
    assert (rmse.higher_is_better, rmse.is_fraction, rmse.heading) == (False, False, "NYUv2 RMSE (m) ↓")
    assert (miou.higher_is_better, miou.is_fraction, miou.heading) == (True, True, "ADE20K mIoU (%) ↑")
    assert rmse.cell(0.58884) == "0.5888" and miou.cell(0.4882) == "48.82"
    assert METRICS[("rparis6k", "map_hard")].label == "R-Paris6k Hard mAP"
    assert {t for t, _ in METRICS} == {"ade20k", "nyuv2", "imagenet_linear", "roxford5k", "rparis6k"}


def test_check_records_bounds_fractions_but_not_errors() -> None:
    ok = frame([vrow("main", vrun("dino", 1e-5, 0), "nyuv2", "rmse", 1.7), vrow("main", vrun("dino", 1e-5, 0), "nyuv2", "absrel", 2.5)])
    assert check_records(ok)["value"].tolist() == [1.7, 2.5]
    for task, metric, value, match in (("ade20k", "miou", 1.2, r"fractions in \[0, 1\]"), ("nyuv2", "delta1", -0.1, "fractions"),
                                       ("nyuv2", "rmse", -0.1, "non-negative"), ("nyuv2", "absrel", np.inf, "finite")):
        with pytest.raises(VptError, match=match):
            check_records(frame([vrow("main", vrun("dino", 1e-5, 0), task, metric, value)]))
    # the language records carry no variant column: it defaults to ""
    lang = frame(main_records(main_values(np.random.default_rng(0))))
    assert "variant" not in lang.columns and set(check_records(lang)["variant"]) == {""}


def test_rmse_selection_takes_the_lowest_mean_and_ties_the_smaller_lr() -> None:
    df = frame(per_seed("main", "nyuv2", "rmse", RMSE))
    sel = select_best_lr(df, group="vision.main", task="nyuv2", metric="rmse").set_index("method")
    assert sel.loc["dino", "lr"] == 2e-5 and sel.loc["dino", "mean"] == pytest.approx(0.57)
    assert sel.loc["dino", "std"] == pytest.approx(0.02) and sel.loc["vpt", "lr"] == 1e-5
    tied = frame(per_seed("main", "nyuv2", "rmse", {("vpt", 2e-5): [0.1, 0.1, 0.4], ("vpt", 1e-5): [0.4, 0.1, 0.1]}))
    assert select_best_lr(tied, group="vision.main", task="nyuv2", metric="rmse")["lr"].tolist() == [1e-5]
    # two weightings of the same (lr, seed) in one group are two experiments: refuse to average them
    mixed = frame([vrow("main", vrun("vpt", 1e-5, 0, weights=w), "ade20k", "miou", 0.5) for w in ((1.0, 1.0), (4.0, 1.0))])
    with pytest.raises(VptError, match="variant"):
        select_best_lr(mixed, group="vision.main", task="ade20k", metric="miou")


# ---------------------------------------------------------------- Tables 1 and 2

def test_table1_vision_rows(tmp_path: Path) -> None:
    language = main_records(main_values(np.random.default_rng(5)))
    t = table1(frame(language + main_vision_records()), VLAYOUT)
    alone = table1(frame(language), VLAYOUT)
    # the language rows come first and exactly as without vision records
    pd.testing.assert_frame_equal(t.iloc[:len(alone)].reset_index(drop=True), alone)
    assert t.attrs["caption"].startswith(alone.attrs["caption"]) and t.attrs["notes"][:len(alone.attrs["notes"])] == alone.attrs["notes"]
    vision = t.iloc[len(alone):].set_index("Model")
    assert list(vision.index) == ["ViT-B/16 · NYUv2 RMSE (m) ↓", "ViT-L/16 · NYUv2 RMSE (m) ↓", "ViT-B/16 · ADE20K mIoU (%) ↑",
                                  "ViT-B/16 · ImageNet linear top-1 (%) ↑"]
    cells = vision.to_dict("index")
    assert cells["ViT-B/16 · NYUv2 RMSE (m) ↓"] == {
        "Baseline": "0.5700 ± 0.0200", "V-Pretraining": "0.5200 ± 0.0200", "LR (Baseline)": "2e-5", "LR (V-Pretraining)": "1e-5",
        "Seeds (Baseline)": "3", "Seeds (V-Pretraining)": "3"}
    assert cells["ViT-B/16 · ADE20K mIoU (%) ↑"] == {
        "Baseline": "49.00 ± 1.00", "V-Pretraining": "51.00 ± 1.00", "LR (Baseline)": "1e-5", "LR (V-Pretraining)": "2e-5",
        "Seeds (Baseline)": "3", "Seeds (V-Pretraining)": "3"}
    top1 = cells["ViT-B/16 · ImageNet linear top-1 (%) ↑"]
    assert (top1["Baseline"], top1["V-Pretraining"], top1["LR (V-Pretraining)"]) == ("81.00 ± 1.00", "", "")
    large = cells["ViT-L/16 · NYUv2 RMSE (m) ↓"]
    assert (large["Baseline"], large["V-Pretraining"], large["Seeds (Baseline)"]) == ("0.5752", "", "1")
    notes = " ".join(t.attrs["notes"])
    assert "ViT-B/16 · ImageNet linear top-1 (%) ↑, V-Pretraining: no finished runs evaluated yet" in notes
    assert "ViT-L/16 · NYUv2 RMSE (m) ↓, Baseline: a single seed" in notes
    assert "lowest NYUv2 RMSE; ties go to the smaller learning rate" in notes and "among 1–2 learning rates" in notes
    assert "NYUv2 RMSE in metres" in t.attrs["caption"] and "Baseline = DINO" in t.attrs["caption"]
    assert "| ViT-B/16 · NYUv2 RMSE (m) ↓ | 0.5700 ± 0.0200 | 0.5200 ± 0.0200 | 2e-5 | 1e-5 | 3 | 3 |" in to_markdown(t)
    tex = to_latex(t)  # pdfLaTeX without extra packages: arrows and the dot as math
    assert r"ViT-B/16 $\cdot$ NYUv2 RMSE (m) $\downarrow$ & 0.5700 $\pm$ 0.0200" in tex and not {"↓", "↑", "·"} & set(tex)


def test_table1_and_table2_without_vision_records_are_the_language_tables() -> None:
    language = frame(main_records(main_values(np.random.default_rng(5))))
    for build in (table1, table2):
        with_empty_vision = build(pd.concat([language, frame(main_vision_records()).iloc[0:0]]), VLAYOUT)
        pd.testing.assert_frame_equal(build(language, VLAYOUT), with_empty_vision)
        assert build(language, VLAYOUT).attrs == with_empty_vision.attrs


RETRIEVAL = {("roxford5k", "easy"): (0.50, 0.60), ("roxford5k", "medium"): (0.40, 0.45), ("roxford5k", "hard"): (0.08, 0.09),
             ("rparis6k", "easy"): (0.54, 0.59), ("rparis6k", "medium"): (0.63, 0.70), ("rparis6k", "hard"): (0.22, 0.25)}


def test_table2_vision_rows_use_the_ade20k_selected_lr() -> None:
    rows = per_seed("main", "ade20k", "miou", MIOU)
    chosen = {"dino": 1e-5, "vpt": 2e-5}  # by ADE20K mIoU (MIOU above)
    for (task, p), (dino, vpt) in RETRIEVAL.items():
        for method, base in (("dino", dino), ("vpt", vpt)):
            for lr in (1e-5, 2e-5):
                if (task, p, method) == ("rparis6k", "hard", "vpt"):
                    continue  # not evaluated yet
                # seeds base, base + 0.01, base + 0.02 at the chosen lr; 0.95 (which re-selection would pick) at the other
                rows += [vrow("main", vrun(method, lr, s), task, f"map_{p}", base + 0.01 * s if lr == chosen[method] else 0.95)
                         for s in range(3)]
    t = table2(frame(rows), VLAYOUT)
    assert list(t.columns) == ["Benchmark", "Model", "Baseline", "V-Pretraining"]
    got = {r["Benchmark"]: (r["Model"], r["Baseline"], r["V-Pretraining"]) for _, r in t.iterrows()}
    assert got == {
        "R-Oxford5k Easy mAP (%)": ("ViT-B/16", "51.00", "61.00"), "R-Oxford5k Medium mAP (%)": ("ViT-B/16", "41.00", "46.00"),
        "R-Oxford5k Hard mAP (%)": ("ViT-B/16", "9.00", "10.00"), "R-Paris6k Easy mAP (%)": ("ViT-B/16", "55.00", "60.00"),
        "R-Paris6k Medium mAP (%)": ("ViT-B/16", "64.00", "71.00"), "R-Paris6k Hard mAP (%)": ("ViT-B/16", "23.00", "")}
    assert list(got) == [f"{n} {p} mAP (%)" for n in ("R-Oxford5k", "R-Paris6k") for p in ("Easy", "Medium", "Hard")]
    assert any("R-Paris6k Hard mAP (%), ViT-B/16, V-Pretraining: not evaluated yet" in n for n in t.attrs["notes"])
    assert any("selected per model and method by seed-mean final ADE20K mIoU" in n for n in t.attrs["notes"])
    assert t.attrs["caption"].startswith("Evaluation on tasks not used for feedback")


# ---------------------------------------------------------------- the vision ablation

def ablation_records() -> list[dict[str, object]]:
    rows = per_seed("ablation", "ade20k", "miou", {("vpt", 1e-5): [0.50, 0.52, 0.54], ("vpt", 2e-5): [0.40, 0.40, 0.40],
                                                   ("random_feedback", 1e-5): [0.47, 0.48, 0.49], ("random_masks", 1e-5): [0.44, 0.46]})
    rows += per_seed("ablation", "nyuv2", "rmse", {("vpt", 1e-5): [0.50, 0.51, 0.52], ("vpt", 2e-5): [0.45, 0.45, 0.45],
                                                   ("random_feedback", 1e-5): [0.55, 0.56, 0.57]})  # random_masks: not yet
    return rows


def test_table4_vision_cells() -> None:
    baseline = per_seed("main", "ade20k", "miou", MIOU) + per_seed("main", "nyuv2", "rmse", RMSE)
    t = table4_vision(frame(ablation_records() + baseline), VLAYOUT)
    assert list(t.columns) == ["Model", "Method", "ADE20K mIoU (%) ↑", "NYUv2 RMSE (m) ↓"]  # ImageNet: not evaluated by the group
    assert t.to_numpy().tolist() == [
        ["ViT-B/16", "Baseline (DINO), main group", "49.00 ± 1.00", "0.5700 ± 0.0200"],  # = Table 1's cells
        ["ViT-B/16", "Value feedback", "52.00 ± 2.00", "0.4500 ± 0.0000"],  # each column at its own best lr
        ["ViT-B/16", "Random feedback", "48.00 ± 1.00", "0.5600 ± 0.0100"],
        ["ViT-B/16", "Random masks", "45.00 ± 1.41", ""],
    ]
    notes = " ".join(t.attrs["notes"])
    assert "ViT-B/16, Value feedback, selected learning rate (seeds): ADE20K mIoU 1e-5 (n=3); NYUv2 RMSE 2e-5 (n=3)." in notes
    assert "ViT-B/16, Random masks, NYUv2 RMSE: no finished runs evaluated yet (cell left empty)." in notes
    # with the linear probe evaluated by the group, a third column; without main's DINO, no baseline row
    top1 = per_seed("ablation", "imagenet_linear", "top1", {("vpt", 1e-5): [0.80, 0.80, 0.80]})
    t = table4_vision(frame(ablation_records() + top1), VLAYOUT)
    assert t.columns[-1] == "ImageNet linear top-1 (%) ↑" and t["Method"].tolist() == ["Value feedback", "Random feedback", "Random masks"]
    assert t.iloc[:, -1].tolist() == ["80.00 ± 0.00", "", ""]
    empty = table4_vision(pd.DataFrame(), VLAYOUT)
    assert empty.empty and "no results yet" in to_markdown(empty)


# ---------------------------------------------------------------- Figure 2 right

def brute_force_front(points: list[tuple[float, float]]) -> list[bool]:
    return [not any(q[0] >= p[0] and q[1] >= p[1] and (q[0] > p[0] or q[1] > p[1]) for q in points) for p in points]


def test_pareto_front_equals_brute_force_dominance() -> None:
    assert pareto_front([(1, 1), (2, 0), (0, 2), (0.5, 0.5), (1, 1), (0, 1.5)]) == [True, True, True, False, True, False]
    assert pareto_front([]) == []
    rng = np.random.default_rng(0)
    for trial in range(400):
        n = int(rng.integers(1, 15))
        # small integer grids make ties in x, in y and identical points common; floats the general case
        pts = [tuple(map(float, p)) for p in (rng.integers(0, 4, size=(n, 2)) if trial % 2 else rng.normal(size=(n, 2)))]
        assert pareto_front(pts) == brute_force_front(pts), pts
    for pts in itertools.product([(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)], repeat=3):
        assert pareto_front(list(pts)) == brute_force_front(list(pts))


PARETO = {  # (weights, designer) -> (mIoU, RMSE); F has no NYUv2 evaluation yet
    "A": ((16.0, 1.0), "default", 0.52, 0.60), "B": ((1.0, 1.0), "default", 0.50, 0.55), "C": ((1.0, 16.0), "default", 0.46, 0.52),
    "D": ((1.0, 1.0), "tv-high", 0.49, 0.58),  # dominated by B
    "E": ((4.0, 1.0), "sit", 0.51, 0.61),  # dominated by A
    "F": ((1.0, 4.0), "default", 0.53, None),
}


def pareto_records() -> list[dict[str, object]]:
    rows = []
    for w, d, miou, rmse in PARETO.values():
        run = vrun("vpt", 1e-5, 0, weights=w, designer=d)
        rows.append(vrow("pareto", run, "ade20k", "miou", miou))
        if rmse is not None:
            rows.append(vrow("pareto", run, "nyuv2", "rmse", rmse))
    return rows


def test_pareto_points_labels_and_front() -> None:
    pts = pareto_points(frame(pareto_records() + per_seed("main", "ade20k", "miou", MIOU)))  # main is not a pareto point
    assert pts[["label", "miou", "rmse", "front"]].to_numpy().tolist() == [
        ["16:1", 0.52, 0.60, True], ["4:1 sit", 0.51, 0.61, False], ["1:1", 0.50, 0.55, True],
        ["1:1 tv-high", 0.49, 0.58, False], ["1:16", 0.46, 0.52, True]]  # best mIoU first
    seeds = pareto_points(frame(pareto_records() + [vrow("pareto", vrun("vpt", 1e-5, 1, weights=(16.0, 1.0)), t, m, v)
                                                    for t, m, v in (("ade20k", "miou", 0.3), ("nyuv2", "rmse", 0.9))]))
    assert seeds["label"].tolist()[0] == "16:1 s0" and seeds["label"].tolist()[-1] == "16:1 s1"  # a second seed: the label says which


def test_pareto_figure_draws_front_dominated_and_baseline(tmp_path: Path) -> None:
    df = frame(pareto_records() + per_seed("main", "ade20k", "miou", MIOU) + per_seed("main", "nyuv2", "rmse", RMSE))
    # DINO at the lr chosen by ADE20K mIoU (1e-5), not by RMSE (2e-5): mean mIoU 0.49, mean RMSE 0.60 there
    miou, rmse, lr, n = baseline_point(df, B)
    assert (miou, rmse, lr, n) == (pytest.approx(0.49), pytest.approx(0.60), 1e-5, 3)
    fig = plot_pareto(df, VLAYOUT)
    ax = fig.axes[0]
    front = ax.lines[0]
    np.testing.assert_allclose(front.get_xdata(), [46, 50, 52])
    np.testing.assert_allclose(front.get_ydata(), [-0.52, -0.55, -0.60])
    dominated, star = ax.collections
    np.testing.assert_allclose(dominated.get_offsets(), [[51, -0.61], [49, -0.58]])
    np.testing.assert_allclose(star.get_offsets(), [[49, -0.60]])
    texts = {t.get_text() for t in ax.texts}
    assert {"16:1", "1:1", "1:16", "1:1 tv-high", "4:1 sit"} <= texts
    assert any("1 run with only one of ADE20K / NYUv2 evaluated" in t for t in texts)
    assert ax.get_title() == "ViT-B/16" and "RMSE" in ax.get_ylabel()
    check_image_files(save_figure(fig, tmp_path / "pareto"))
    empty = plot_pareto(pd.DataFrame(), VLAYOUT)
    assert any(t.get_text() == "no results yet" for a in empty.axes for t in a.texts)


# ---------------------------------------------------------------- from the evaluation files, as the pipeline builds them

def test_model_labels() -> None:
    assert [model_label(k) for k in ("qwen1.5-0.5b", "base", "dinov3-vitb16", "dinov3-vitl16", "vision_base")] == [
        "0.5B", "tiny", "ViT-B/16", "ViT-L/16", "tiny ViT"]


def write_eval(cfg: dict, run: VisionRun, task: str, metrics: dict) -> None:
    path = paths.eval_result(cfg, run.id, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"task": task, "examples": 10, "metrics": metrics}))


def test_load_records_and_reports_from_vision_evaluation_files(tmp_path: Path) -> None:
    cfg = load_config([REPO / "config" / "config.yaml"])
    cfg["results_dir"] = str(tmp_path / "results")
    main = sorted({r for r, _, _ in vision_group_evaluations(cfg, "main")})
    assert [(r.method, r.seed) for r in main] == [("dino", 0), ("dino", 1), ("vpt", 0), ("vpt", 1)]
    values = {("dino", 0): (0.30, 1.70, 0.90), ("dino", 1): (0.32, 1.80, 0.92), ("vpt", 0): (0.33, 1.60, 0.90), ("vpt", 1): (0.35, 1.62, 0.92)}
    for run in main:
        miou, rmse, top1 = values[(run.method, run.seed)]
        write_eval(cfg, run, "ade20k", {"miou": miou, "pixel_acc": 0.7, "classes_present": 12})
        write_eval(cfg, run, "nyuv2", {"rmse": rmse, "absrel": 0.4, "delta1": 0.5, "pixels": 4096})
        write_eval(cfg, run, "imagenet_linear", {"top1": top1, "train_examples": 1200, "train_loss": [1.2, 0.8]})
        write_eval(cfg, run, "roxford5k", {"map_easy": 0.5, "map_medium": 0.4, "map_hard": None, "queries_easy": 8, "database": 80})
    evaluations = [("vision.main", r, None, t) for r, _, t in vision_group_evaluations(cfg, "main")]
    records = check_records(load_records(cfg, evaluations))
    assert sorted(set(zip(records["task"], records["metric"]))) == [
        ("ade20k", "miou"), ("ade20k", "pixel_acc"), ("imagenet_linear", "top1"), ("nyuv2", "absrel"), ("nyuv2", "delta1"),
        ("nyuv2", "rmse"), ("roxford5k", "map_easy"), ("roxford5k", "map_medium")]  # no counts, losses, or a null mAP
    assert len(records) == 4 * 8 and set(records["group"]) == {"vision.main"} and records["final"].all()
    assert set(records["step"]) == {cfg["vision"]["train"]["steps"]} and set(records["tokens"]) == {0}
    assert set(records.loc[records["method"] == "vpt", "variant"]) == {"seg1_depth1"}
    assert set(records.loc[records["method"] == "dino", "variant"]) == {""}

    written, _ = REPORT_REGISTRY.get("table1").write(cfg)
    md = (tmp_path / "results/tables/table1.md").read_text()
    assert written[0] == tmp_path / "results/tables/table1.md"
    # 2 seeds each, one lr (2e-4): RMSE 1.75 ± 0.0707 vs 1.61 ± 0.0141; mIoU 31 ± 1.41 vs 34 ± 1.41
    assert "| tiny ViT · NYUv2 RMSE (m) ↓ | 1.7500 ± 0.0707 | 1.6100 ± 0.0141 | 0.0002 | 0.0002 | 2 | 2 |" in md
    assert "| tiny ViT · ADE20K mIoU (%) ↑ | 31.00 ± 1.41 | 34.00 ± 1.41 | 0.0002 | 0.0002 | 2 | 2 |" in md
    assert "| tiny ViT · ImageNet linear top-1 (%) ↑ | 91.00 ± 1.41 | 91.00 ± 1.41 |" in md
    assert md.startswith("**Table 1.** Performance on the downstream training tasks")  # no language evaluations yet
    # the ablation's vpt run is main's vpt seed 0 (one run, evaluated once): its row is filled, the others are not
    REPORT_REGISTRY.get("table4_vision").write(cfg)
    md = (tmp_path / "results/tables/table4_vision.md").read_text()
    assert "| tiny ViT | Baseline (DINO), main group | 31.00 ± 1.41 | 1.7500 ± 0.0707 |" in md
    assert "| tiny ViT | Value feedback | 33.00 | 1.6000 |" in md and "| tiny ViT | Random masks |  |  |" in md
    written, _ = REPORT_REGISTRY.get("figure2_pareto").write(cfg)
    check_image_files(written)


def test_vision_only_reports_need_their_vision_group() -> None:
    cfg = load_config([REPO / "config" / "config.yaml"])
    reports = {n: REPORT_REGISTRY.get(n) for n in ("table1", "table2", "table4_vision", "figure2_pareto")}
    assert all(r.available(cfg) for r in reports.values())
    no_vision = copy.deepcopy(cfg)
    del no_vision["vision"]
    assert [n for n, r in reports.items() if r.available(no_vision)] == ["table1", "table2"]
    assert not any(isinstance(run, VisionRun) for _, run, _, _ in reports["table1"].evaluations(no_vision))
    no_pareto = copy.deepcopy(cfg)
    del no_pareto["vision"]["grid"]["pareto"]
    assert not reports["figure2_pareto"].available(no_pareto) and reports["table4_vision"].available(no_pareto)
    vision_only = copy.deepcopy(cfg)
    vision_only["grid"] = {}
    assert reports["table1"].available(vision_only) and reports["table2"].available(vision_only)
