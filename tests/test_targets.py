"""vpt.workflow: the paths and inputs the Snakefile's rules are built from."""

from __future__ import annotations

import copy
import json

import pytest

from vpt import paths
from vpt import workflow as W
from vpt.config import load_config
from vpt.grid import Run, default_run

from conftest import REPO


@pytest.fixture(scope="module")
def embedded() -> dict:
    return load_config([REPO / "config" / "config.yaml"])


@pytest.fixture(scope="module")
def paper() -> dict:
    return load_config([REPO / "config" / "paper.yaml"])


def test_download_inputs_expand_globs_and_include_synth_outputs(embedded: dict) -> None:
    assert W.download_inputs(embedded, "corpus") == ["data/synth/corpus/train.jsonl"]
    mmlu = W.download_inputs(embedded, "mmlu")
    assert len(mmlu) == 114 and all(p.startswith("data/shipped/mmlu/") for p in mmlu)
    assert W.download_outputs(embedded, "gsm8k") == ["data/raw/gsm8k/train.parquet", "data/raw/gsm8k/test.parquet", "data/raw/gsm8k/manifest.json"]


def test_hub_sources_have_no_local_inputs(paper: dict) -> None:
    assert W.download_inputs(paper, "corpus") == []
    assert W.download_outputs(paper, "omega") == ["data/raw/omega/test_in.parquet", "data/raw/omega/test_out.parquet", "data/raw/omega/manifest.json"]
    assert W.tokenizer_inputs(paper) == []  # the learner's own tokenizer


def test_training_inputs(embedded: dict, paper: dict) -> None:
    vpt_in = W.train_inputs(embedded, default_run(embedded, "vpt"))
    assert "results/models/base/final/state.json" in vpt_in and "data/raw/gsm8k/train.parquet" in vpt_in
    assert "data/raw/gsm8k/train.parquet" not in W.train_inputs(embedded, default_run(embedded, "ntp"))
    assert "results/models/base/final/state.json" not in W.base_inputs(embedded)
    paper_vpt = W.train_inputs(paper, default_run(paper, "vpt"))
    assert not any("models/base" in p for p in paper_vpt)  # Qwen from the hub
    assert "data/packed/corpus/raw/meta.json" in paper_vpt  # the paper's main runs use the raw corpus
    decon = Run("qwen1.5-4b", "vpt", 1e-5, 0, 1024, "decontaminated")
    assert "data/packed/corpus/decontaminated/meta.json" in W.train_inputs(paper, decon)


def test_base_section_ignores_what_the_base_does_not_read(embedded: dict) -> None:
    edited = copy.deepcopy(embedded)
    edited["train"]["lr"] = 1.0  # overridden by base_model.train.lr
    edited["train"]["designer"]["K"] = 3
    assert W.base_train_section(edited) == W.base_train_section(embedded)
    edited["train"]["grad_clip"] = 0.5  # inherited by the base
    assert W.base_train_section(edited) != W.base_train_section(embedded)


def test_the_base_stamp_holds_what_the_base_training_reads(embedded: dict) -> None:
    """vpt.runs.train_setup builds the base's TrainConfig from the same settings as its stamp:
    an edit the stamp ignores leaves the TrainConfig as it is, one it sees changes it."""
    from vpt.runs import NOT_READ_BY_BASE, train_setup

    base = train_setup(embedded, None, None)[0].to_dict()
    assert base["method"] == "ntp" and base["lr"] == embedded["base_model"]["train"]["lr"]
    for key in NOT_READ_BY_BASE:
        assert key not in W.base_train_section(embedded)["train"]
    ignored = copy.deepcopy(embedded)
    ignored["train"].update(method="vpt", snapshot_steps=[3], designer={**ignored["train"]["designer"], "K": 3})
    assert W.base_train_section(ignored) == W.base_train_section(embedded)
    assert train_setup(ignored, None, None)[0].to_dict() == base
    seen = copy.deepcopy(embedded)
    seen["train"]["grad_clip"] = 0.5
    assert train_setup(seen, None, None)[0].to_dict()["grad_clip"] == 0.5


def test_all_targets_cover_every_stage(embedded: dict) -> None:
    targets = W.all_targets(embedded)
    assert len(targets) == len(set(targets))
    assert "data/packed/corpus/decontaminated/meta.json" in targets
    # 8 main runs x 5 tasks; ablation: 3 new finals + 4 runs x 2 snapshots; tokens: ntp's 2 snapshots;
    # coverage: 2 new finals (the 1024 run is the main vpt run); and the base ViT's 5 vision evaluations
    assert sum(t.startswith("results/eval/base/") for t in targets) == 40 + 3 + 8 + 2 + 2
    # the vision grid: 4 main runs x 5 tasks; pareto: 2 new weightings; ablation: 2 new methods; x ade20k, nyuv2
    grid = [t for t in targets if t.startswith("results/eval/vision_base/") and not t.startswith("results/eval/vision_base/final/")]
    assert len(grid) == 20 + 4 + 4
    assert sum(t.startswith("results/runs/vision_base/") for t in targets) == 8
    vision = sorted(t for t in targets if t.startswith("results/eval/vision_base/final/"))
    assert vision == [f"results/eval/vision_base/final/{t}.json" for t in ("ade20k", "imagenet_linear", "nyuv2", "roxford5k", "rparis6k")]
    assert W.eval_inputs(embedded, "vision_base", "final", "nyuv2") == [
        "results/models/vision_base/final/state.json", "data/raw/nyuv2/train.parquet", "data/raw/nyuv2/validation.parquet"]
    assert sum(t.startswith("results/runs/base/") for t in targets) == 13
    assert {t for t in targets if t.startswith("results/probe/")} == {"results/probe/ntp.json", "results/probe/vpt.json"}
    assert "results/tables/table1.md" in targets and "results/figures/figure3_passk.pdf" in targets
    run = "base/vpt/lr0.0003_s0_fb1024_decontaminated"
    assert W.eval_inputs(embedded, run, "final", "omega_ood") == [f"results/runs/{run}/final/state.json", "data/raw/omega/test_out.parquet"]


@pytest.mark.parametrize("config_name", ["embedded", "paper"])
def test_eval_jobs_partition_the_evaluations_and_serve_each_report_exactly(config_name: str, request: pytest.FixtureRequest) -> None:
    """Brute force over every evaluation output: each is written by exactly one job (and one rule's
    run constraint); a report's target builds whole jobs whose every output that report reads."""
    cfg = request.getfixturevalue(config_name)
    jobs = W.eval_jobs(cfg)
    outputs = [[str(paths.eval_result(cfg, run, t, at)) for at in labels for t in tasks] for run, labels, tasks in jobs]
    flat = [o for outs in outputs for o in outs]
    assert len(flat) == len(set(flat))
    wanted = {t for t in W.all_targets(cfg) if t.startswith("results/eval/")}
    assert wanted <= set(flat) and {o for o in flat if o.endswith(".json")} == wanted | {
        i for name in W.reports(cfg) for i in W.report_inputs(cfg, name) if i.startswith("results/eval/")}
    for name in W.reports(cfg):
        reads = {i for i in W.report_inputs(cfg, name) if i.startswith("results/eval/")}
        for outs in outputs:
            json_outs = {o for o in outs if o.endswith(".json")}
            assert not json_outs & reads or json_outs <= reads, (name, outs)
    suites = W.eval_suites(cfg)
    assert len({s.rule for s in suites}) == len(suites)
    assert sorted((r, s.labels, s.tasks) for s in suites for r in s.runs) == sorted(jobs)


def test_report_inputs_are_only_what_the_report_reads(embedded: dict) -> None:
    t1 = W.report_inputs(embedded, "table1")
    language = [p for p in t1 if p.startswith("results/eval/base/")]
    assert len(language) == 8 and all(p.endswith("/final/gsm8k.json") for p in language)  # main: 2 methods x 2 lrs x 2 seeds
    # the vision rows: vision main's {dino, vpt} x seeds {0, 1} x {ade20k, nyuv2, imagenet_linear}
    vision = sorted(p for p in t1 if p.startswith("results/eval/vision_base/"))
    assert len(vision) == len(t1) - 8 == 12 and {p.rsplit("/", 1)[1] for p in vision} == {"ade20k.json", "nyuv2.json", "imagenet_linear.json"}
    assert {p.split("/")[3] for p in vision} == {"dino", "vpt"}
    t2 = {p.rsplit("/", 1)[1] for p in W.report_inputs(embedded, "table2") if p.startswith("results/eval/vision_base/")}
    assert t2 == {"ade20k.json", "roxford5k.json", "rparis6k.json"}  # ADE20K for Table 1's lr, retrieval for the rows
    # Figure 2 right: the 3 pareto runs and main's 2 dino runs (the reference), ADE20K and NYUv2 each
    pareto = W.report_inputs(embedded, "figure2_pareto")
    assert len(pareto) == 10 and sum("/dino/" in p for p in pareto) == 4
    # the vision ablation: 3 methods + main's dino (2 seeds), on the ablation's tasks only (no ImageNet here)
    ablation = W.report_inputs(embedded, "table4_vision")
    assert len(ablation) == 3 * 2 + 2 * 2 and not any("imagenet" in p for p in ablation)
    t4 = W.report_inputs(embedded, "table4")
    assert len(t4) == 4 * 3 and sum("/step_0000020/" in p for p in t4) == 4
    assert set(W.report_inputs(embedded, "figure3_passk")) >= set(language)
    no_ablation = copy.deepcopy(embedded)
    del no_ablation["grid"]["ablation"]
    assert "table4" not in W.reports(no_ablation) and "table1" in W.reports(no_ablation)
    del no_ablation["vision"]["grid"]["ablation"]
    assert "table4_vision" not in W.reports(no_ablation)


def test_without_vision_the_reports_read_what_they_read_before(embedded: dict, paper: dict) -> None:
    """A config without a vision section: the vision-only reports are not built, the others read
    only language evaluations; a vision-only grid still builds Table 1 (its vision rows)."""
    for cfg in (embedded, paper):
        language = copy.deepcopy(cfg)
        del language["vision"]
        assert W.reports(language) == [n for n in W.reports(cfg) if n not in ("table4_vision", "figure2_pareto")]
        for name in W.reports(language):
            assert W.report_inputs(language, name) == [p for p in W.report_inputs(cfg, name) if "/vision_base/" not in p
                                                       and not p.startswith("results/eval/dinov3-")], name
    vision_only = copy.deepcopy(embedded)
    vision_only["grid"] = {}
    assert W.reports(vision_only) == ["table1", "table2", "table3", "table4_vision", "figure2_pareto"]
    assert all("/vision_base/" in p for p in W.report_inputs(vision_only, "table1"))


def test_stamp_is_content_addressed_and_never_rewritten(tmp_path) -> None:
    import os

    path = W.stamp("train/x", {"lr": 1e-3}, tmp_path)
    os.utime(path, (1, 1))
    assert W.stamp("train/x", {"lr": 1e-3}, tmp_path) == path and os.path.getmtime(path) == 1
    other = W.stamp("train/x", {"lr": 2e-3}, tmp_path)
    assert other != path and json.loads(open(other).read()) == {"lr": 2e-3}
    assert W.stamp("train/x", {"lr": 1e-3}, tmp_path) == path and os.path.getmtime(path) == 1  # going back: the old file


def test_run_settings_change_with_exactly_what_the_run_reads(embedded: dict) -> None:
    run = default_run(embedded, "ntp")
    edited = copy.deepcopy(embedded)
    edited["eval"]["gsm8k"]["limit"] = 3
    assert W.run_settings(edited, run) == W.run_settings(embedded, run)
    assert W.eval_settings(edited, "gsm8k") != W.eval_settings(embedded, "gsm8k")
    assert W.eval_settings(edited, "mmlu") == W.eval_settings(embedded, "mmlu")
    edited["train"]["steps"] = 61
    assert W.run_settings(edited, run) != W.run_settings(embedded, run)


def test_resolved_config_is_content_addressed(embedded: dict, tmp_path) -> None:
    a = W.resolved_config_file(embedded, tmp_path)
    assert W.resolved_config_file(copy.deepcopy(embedded), tmp_path) == a
    other = copy.deepcopy(embedded)
    other["pack"]["seq_len"] = 64
    b = W.resolved_config_file(other, tmp_path)
    assert b != a and load_config([b])["pack"]["seq_len"] == 64


def test_overhead_benchmark_and_table3_are_in_all_when_configured(embedded: dict) -> None:
    targets = W.all_targets(embedded)
    assert "results/bench/overhead.json" in targets
    assert {"results/tables/table3.md", "results/tables/table3.csv", "results/tables/table3.tex"} <= set(targets)
    ins = W.bench_overhead_inputs(embedded)
    assert W.base_output(embedded) in ins and W.feedback_split(embedded) in ins  # the learner and feedback it times
    without = copy.deepcopy(embedded)
    del without["bench"]
    assert not W.bench_targets(without) and "results/bench/overhead.json" not in W.all_targets(without)
    # the benchmark's stamp follows the settings it measures, not where it runs
    edited = copy.deepcopy(embedded)
    edited["bench"]["overhead"]["window"] = 32
    assert W.bench_overhead_settings(edited) != W.bench_overhead_settings(embedded)
    edited = copy.deepcopy(embedded)
    edited["slurm"]["resources"]["bench"]["cpus"] = 4
    assert W.bench_overhead_settings(edited) == W.bench_overhead_settings(embedded)
