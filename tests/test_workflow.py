"""The real Snakemake DAG, run as a user runs it, in a fresh working directory."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, make_workdir, run, snakemake, vpt


# The reports reading language evaluations (Tables 1 and 2 read vision ones too); the vision-only ones.
REPORT_JOBS = {f"report_{n}": 1 for n in ("table1", "table2", "table4", "figure2_tokens", "figure3_coverage", "figure3_passk")}
VISION_REPORT_JOBS = {"report_table4_vision": 1, "report_figure2_pareto": 1}
PROBE_JOBS = {"probe_ntp": 1, "probe_vpt": 1}
BENCH_JOBS = {"bench_overhead": 1, "report_table3": 1}  # the overhead benchmark and Table 3
# The embedded grid: 8 main runs + 3 ablation methods + 2 coverage sizes; 40 main evaluations
# (5 tasks) + 3 ablation finals + 8 ablation snapshots + 2 tokens snapshots (ntp) + 2 coverage finals,
# in 31 jobs (vpt.workflow.eval_jobs): a job per run and set of reports reading the results.
EMBEDDED_TRAIN = {"train": 13}
EMBEDDED_EVAL = {
    "eval_gsm8k": 10,  # the 8 main finals (Table 1 and more) + the 2 other coverage finals
    "eval_gsm8k_passk": 8, "eval_mmlu_omega_id_omega_ood": 8,  # the main finals' other tasks (Table 2, Figure 3)
    "eval_gsm8k_at_20_40": 2,  # the snapshots of vpt and ntp lr 3e-4 s0 (Table 4, Figure 2), whose finals are main runs
    "eval_gsm8k_at_20_40_final": 3,  # the ablation-only methods (Table 4)
}
# Evaluation jobs reading eval.gsm8k: every gsm8k one and gsm8k_passk's
GSM8K_EVALS = {k: v for k, v in EMBEDDED_EVAL.items() if "gsm8k" in k}
# The vision evaluation jobs a designer edit reruns (measured with `snakemake -n all` on a finished
# run): the 5 runs that learn masks are main vpt s0 (also the pareto 1:1 and the ablation vpt run),
# main vpt s1, pareto 1:0 and 0:1, and the ablation's random_feedback. Jobs split by the reports
# reading each task (vpt.workflow.eval_jobs):
VISION_DESIGNER_EVALS = {
    # vpt s0: ADE20K (Tables 1-2, Figure 2 right, vision ablation), NYUv2 (Table 1, Figure 2 right, ablation),
    # ImageNet linear (Table 1), retrieval (Table 2): 4 jobs; vpt s1: ADE20K (Tables 1-2), ImageNet + NYUv2
    # (Table 1), retrieval (Table 2): 3 jobs
    "eval_ade20k": 2, "eval_nyuv2": 1, "eval_imagenet_linear": 1, "eval_imagenet_linear_nyuv2": 1, "eval_roxford5k_rparis6k": 2,
    "eval_ade20k_nyuv2": 3,  # the two other pareto weightings (Figure 2 right) and random_feedback (the ablation)
}


def planned_jobs(stdout: str) -> dict[str, int]:
    """Job counts from Snakemake's 'Job stats' table."""
    table = stdout.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_paper_dry_run_lists_data_and_training_jobs_offline(workdir: Path) -> None:
    res = snakemake("-n", "all", "--configfile", "config/paper.yaml", cwd=workdir)
    assert res.returncode == 0, res.stderr + res.stdout
    jobs = planned_jobs(res.stdout)
    assert jobs == {
        "download_corpus": 1, "download_gsm8k": 1, "download_math": 1, "download_mmlu": 1, "download_omega": 1,
        "download_imagenet": 1, "download_ade20k": 1, "download_nyuv2": 1, "download_roxford5k": 1, "download_rparis6k": 1,
        "decontaminate": 1, "tokenizer": 1, "pack_raw": 1, "pack_decontaminated": 1, "all": 1,
        "train": 116, "eval_gsm8k": 101, "eval_gsm8k_passk": 90, "eval_mmlu_omega_id_omega_ood": 90,
        "eval_gsm8k_at_200_400_600_800_1000_1200_1400_1600_1800": 6, "eval_gsm8k_at_200_400_600_800_1000_1200_1400_1600_1800_final": 15, **PROBE_JOBS, **REPORT_JOBS, "report_table1b_decontaminated": 1,  # see tests/test_grid.py
        **BENCH_JOBS, **VISION_REPORT_JOBS, "train_vision": 61,  # the vision grid (tests/test_vision_grid.py)
        # Its evaluations, a job per run and set of reports reading a task (counted from this dry run):
        # main's 36 runs (2 ViTs x {dino, vpt} x 3 lrs x 3 seeds), each ADE20K (Tables 1-2; + Figure 2
        # right and the ablation for ViT-B dino and the vpt runs the ablation shares) and retrieval (Table 2)
        "eval_ade20k": 36, "eval_roxford5k_rparis6k": 36,
        # NYUv2 + ImageNet linear read by Table 1 alone: ViT-L dino, ViT-B vpt at the other lrs, ViT-L vpt (9 + 6 + 9),
        # and the ablation's vpt s1, s2 (Table 1 + ablation read both)
        "eval_imagenet_linear_nyuv2": 26,
        # apart: ViT-B dino x 9 (NYUv2 read by Figure 2's reference too) and the run main, pareto and ablation share
        "eval_nyuv2": 10, "eval_imagenet_linear": 10,
        "eval_ade20k_imagenet_linear_nyuv2": 6,  # the ablation-only random_feedback / random_masks runs (vision ablation)
        "eval_ade20k_nyuv2": 19,  # the 19 pareto-only runs (Figure 2 right)
    }
    assert not (workdir / "data" / "raw").exists()


# Planning the DAG runs the Snakefile's target code for every job (stamps, inputs); with torch
# imported it took ~13 s per dry run instead of ~4 s, and the tests and users run many.
PLANNING_PROBE = """
import sys
from snakemake.cli import main
try:
    main(["-s", sys.argv[1], "-n", *sys.argv[2:]])
except SystemExit as e:
    status = e.code
print("STATUS", status, "HEAVY", sorted(m for m in ("torch", "transformers", "timm", "lm_eval") if m in sys.modules))
"""


@pytest.mark.parametrize("preset, target", [("config/config.yaml", "all"), ("config/paper.yaml", "all"),
                                            ("config/lab.yaml", "results/lab/report.md")])
def test_planning_the_dag_imports_no_deep_learning_library(workdir: Path, preset: str, target: str) -> None:
    res = run([sys.executable, "-c", PLANNING_PROBE, str(REPO / "Snakefile"), target, "--configfile", preset], cwd=workdir)
    assert "STATUS 0 HEAVY []" in res.stdout, res.stdout[-2000:] + res.stderr[-2000:]


def test_bad_config_stops_before_any_job(workdir: Path) -> None:
    bad = yaml.safe_load((workdir / "config/config.yaml").read_text())
    bad["pack"]["seq_len"] = "long"
    bad["decontaminate"]["ngram"] = 0
    (workdir / "config/bad.yaml").write_text(yaml.safe_dump(bad))
    res = snakemake("--cores", "1", "all", "--configfile", "config/bad.yaml", cwd=workdir)
    assert res.returncode != 0
    err = res.stderr + res.stdout
    assert "key 'pack.seq_len'" in err and "not of type 'integer'" in err
    assert "key 'decontaminate.ngram'" in err and "minimum of 1" in err
    assert "config/bad.yaml" in err
    assert sorted(p.name for p in (workdir / "data").iterdir()) == ["shipped"]
    assert not (workdir / "results").exists()


def edited(workdir: Path, edit) -> str:
    cfg = yaml.safe_load((workdir / "config/config.yaml").read_text())
    edit(cfg)
    (workdir / "config/edited.yaml").write_text(yaml.safe_dump(cfg))
    return "config/edited.yaml"


def git(*args: str, cwd: Path) -> None:
    res = run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd)
    assert res.returncode == 0, res.stderr


@pytest.fixture(scope="module")
def embedded_run(tmp_path_factory: pytest.TempPathFactory, slurm_cluster: None) -> Path:
    """The embedded default run end to end with the SLURM profile, as a user types it, in a
    git + DVC repository laid out like a clone (config/, slurm/, .dvc/, data/shipped)."""
    work = make_workdir(tmp_path_factory.mktemp("embedded") / "repo")
    for name in ("slurm", ".dvc"):
        shutil.copytree(REPO / name, work / name, ignore=shutil.ignore_patterns("tmp", "cache"))
    for name in (".gitignore", ".dvcignore"):
        shutil.copy(REPO / name, work / name)
    git("init", "-q", cwd=work)
    git("add", "-A", cwd=work)
    git("add", "-f", "data/shipped", cwd=work)  # a symlink here; the real repository ships the files
    git("commit", "-qm", "clone", cwd=work)
    res = snakemake("--profile", "slurm", "all", cwd=work, timeout=2400)
    assert res.returncode == 0, res.stderr[-4000:] + res.stdout[-2000:]
    assert "as slurm job" in (work / "results/logs/train/base.log").read_text()
    return work


@pytest.mark.slow
def test_slurm_profile_runs_the_embedded_default_end_to_end(embedded_run: Path) -> None:
    work = embedded_run
    meta = json.loads((work / "data/packed/corpus/decontaminated/meta.json").read_text())
    assert meta["sequences"] > 0 and meta["seq_len"] == 256 and meta["answer_tokens"] > 0
    assert json.loads((work / "data/decontaminated/corpus/report.json").read_text())["docs_in"] == 5000
    runs = sorted(p.parent.parent.relative_to(work / "results/runs") for p in (work / "results/runs/base").glob("*/*/final/state.json"))
    assert len(runs) == 13
    for run_id in runs:
        state = json.loads((work / "results/runs" / run_id / "final/state.json").read_text())
        assert state["finished"] and state["step"] == 60, run_id
        assert len((work / "results/runs" / run_id / "metrics.jsonl").read_text().splitlines()) == 60
    snap = work / "results/runs/base/vpt/lr0.0003_s0_fb1024_decontaminated/snapshots"
    assert sorted(p.name for p in snap.iterdir()) == ["step_0000020", "step_0000040"]
    probe = json.loads((work / "results/probe/vpt.json").read_text())
    assert len(probe["pairs"]) == probe["probes"] and -1 <= probe["pearson_r"] <= 1
    main = work / "results/eval/base/ntp/lr0.001_s1_decontaminated/final"
    for task, n in (("gsm8k", 50), ("gsm8k_passk", 16), ("mmlu", 114), ("omega_id", 8), ("omega_ood", 8)):
        assert json.loads((main / f"{task}.json").read_text())["examples"] == n, task
        assert len((main / f"{task}.jsonl").read_text().splitlines()) == n
    assert len(list((work / "results/eval").rglob("*.json"))) == 55 + 5 + 28  # + the base ViT's and the vision grid's
    # the vision grid: 8 continued-SSL runs from the base ViT, masks pictured for the designer methods
    vision = sorted(p.parent.parent for p in (work / "results/runs/vision_base").glob("*/*/final/state.json"))
    assert len(vision) == 8
    for run_dir in vision:
        assert json.loads((run_dir / "final/state.json").read_text())["step"] == 60, run_dir
        assert (run_dir / "masks/step_0000060.png").exists() == (run_dir.parent.name in ("vpt", "random_feedback", "random_masks"))
    pareto = json.loads((work / "results/eval/vision_base/vpt/lr0.0002_s0_seg1_depth0/final/nyuv2.json").read_text())
    assert pareto["metrics"]["rmse"] > 0
    # the vision half: rendered world -> downloads (with feedback pools) -> DINO base ViT -> its evaluations
    assert json.loads((work / "data/raw/ade20k/manifest.json").read_text())["splits"]["feedback_meta"]["rows"] == 64
    state = json.loads((work / "results/models/vision_base/final/state.json").read_text())
    assert state["finished"] and state["step"] == 250
    ade = json.loads((work / "results/eval/vision_base/final/ade20k.json").read_text())
    assert ade["examples"] == 150 and 0 < ade["metrics"]["miou"] < 1
    assert len((work / "results/eval/vision_base/final/roxford5k.jsonl").read_text().splitlines()) == 6
    assert "as slurm job" in (work / "results/logs/train/vision_base.log").read_text()
    for name in ("table1", "table2", "table4", "table4_vision"):
        for ext in ("md", "csv", "tex"):
            assert (work / f"results/tables/{name}.{ext}").stat().st_size > 0
    assert "tiny ViT · NYUv2 RMSE (m) ↓" in (work / "results/tables/table1.md").read_text()
    for name in ("figure2_tokens", "figure2_pareto", "figure3_coverage", "figure3_passk"):
        for ext in ("png", "pdf"):
            assert (work / f"results/figures/{name}.{ext}").stat().st_size > 1000
    # Table 3 from the overhead benchmark, which ran the real training step side by side
    bench = json.loads((work / "results/bench/overhead.json").read_text())
    assert [(r["repeat"], r["arm"]) for r in bench["runs"]] == [(0, "ntp"), (0, "vpt"), (1, "vpt"), (1, "ntp")]  # 2 repeats, order alternating
    vpt_runs = [r for r in bench["runs"] if r["arm"] == "vpt"]
    assert all(r["value_updates"] == 4 and 0 < r["value_update_frac"] < 1 for r in vpt_runs)  # window 16, meta_every 4
    t3 = {r["Method"]: r for r in csv.DictReader(io.StringIO((work / "results/tables/table3.csv").read_text()))}
    change = (bench["ratios"]["tokens_per_s"]["median"] - 1) * 100
    assert t3["Value-Based"]["Token/s"] == f"{bench['arms']['vpt']['tokens_per_s']['median']:.0f} ({change:+.1f}%)"
    assert t3["Baseline"]["Vb frac"] == "–"
    # Table 1 recomputed from the evaluation files: best lr by seed-mean Pass@1 (ties: smaller lr), mean +- sample std
    import statistics

    rows = {r["Model"]: r for r in csv.DictReader(io.StringIO((work / "results/tables/table1.csv").read_text()))}
    for method, label in (("ntp", "Baseline"), ("vpt", "V-Pretraining")):
        by_lr: dict[float, list[float]] = {}
        for p in (work / "results/eval/base" / method).glob("lr*_s*/final/gsm8k.json"):
            lr = float(p.parent.parent.name.split("_")[0][2:])
            if "_fb" in p.parent.parent.name and "_fb1024_" not in p.parent.parent.name:
                continue  # coverage runs are not in the main group
            by_lr.setdefault(lr, []).append(100 * json.loads(p.read_text())["metrics"]["exact_match"])
        best = max(sorted(by_lr), key=lambda lr: statistics.mean(by_lr[lr]))
        assert len(by_lr) == 2 and len(by_lr[best]) == 2
        assert rows["tiny"][label] == f"{statistics.mean(by_lr[best]):.2f} ± {statistics.stdev(by_lr[best]):.2f}"


@pytest.mark.slow
def test_embedded_reruns_are_idempotent_and_targeted(embedded_run: Path) -> None:
    work = embedded_run
    again = snakemake("-n", "all", cwd=work)
    assert "Nothing to be done" in again.stdout + again.stderr
    # a language edit reruns no vision job and no vision-only report (counts measured with dry runs
    # on a finished embedded run: they are the same as before the vision reports)
    every_run = {**EMBEDDED_TRAIN, **EMBEDDED_EVAL, **PROBE_JOBS, **REPORT_JOBS, **BENCH_JOBS, "all": 1}
    cases = [
        (lambda c: c["train"].update(warmup_steps=7), every_run),
        (lambda c: c["probe"].update(eta=0.02), {**PROBE_JOBS, "all": 1}),
        (lambda c: c["pack"].update(seq_len=128), {"pack_decontaminated": 1, "pretrain_base": 1, **every_run}),
        (lambda c: c["decontaminate"].update(threshold=0.6), {"decontaminate": 1, "pack_decontaminated": 1, "pretrain_base": 1, **every_run}),
        (lambda c: c["eval"]["gsm8k"].update(limit=40), {**GSM8K_EVALS, **REPORT_JOBS, "all": 1}),
        (lambda c: c["eval"]["mmlu"].update(limit_per_subject=1), {"eval_mmlu_omega_id_omega_ood": 8, "report_table2": 1, "all": 1}),
        # a second coverage seed: two new runs (s1 fb256, fb512; s1 fb1024 is a main run) and their evaluations
        (lambda c: c["grid"]["coverage"].update(seeds=[0, 1]), {"train": 2, "eval_gsm8k": 2, "report_figure3_coverage": 1, "all": 1}),
        (lambda c: c["slurm"]["resources"]["default"].update(time_min=5), {}),  # where a job runs is not what it computes
        # a vision designer edit: the 5 runs that learn masks (vpt x 4, random_feedback; not dino, nor
        # random_masks, which reads only the keep ratio and smoothness), their evaluations, and the four
        # reports reading them (Tables 1-2's vision rows, Figure 2 right, the vision ablation)
        (lambda c: c["vision"]["designer"].update(lambda_tv=0.2), {
            "train_vision": 5, **VISION_DESIGNER_EVALS, "report_table1": 1, "report_table2": 1, **VISION_REPORT_JOBS, "all": 1}),
    ]
    for edit, expected in cases:
        dry = snakemake("-n", "all", "--configfile", edited(work, edit), cwd=work)
        assert dry.returncode == 0, dry.stderr[-2000:]
        got = planned_jobs(dry.stdout) if "Job stats:" in dry.stdout else {}
        assert got == expected, (expected, got)


@pytest.mark.slow
def test_dvc_round_trip_into_a_fresh_clone(embedded_run: Path, tmp_path: Path) -> None:
    work = embedded_run
    res = vpt("dvc", "push", cwd=work)
    assert res.returncode == 0, res.stderr
    pointers = res.stdout.split("git add ")[1].split(" && ")[0].split()
    assert "data/packed.dvc" in pointers and "results/runs.dvc" in pointers and "results/eval.dvc" in pointers
    assert "results/bench.dvc" in pointers
    git("add", *pointers, cwd=work)
    git("commit", "-qm", "outputs", cwd=work)
    clone = work.parent / "clone"  # a sibling, so .dvc/config's default local remote resolves the same
    git("clone", "-q", str(work), str(clone), cwd=work.parent)
    assert not (clone / "data/packed").exists() and not (clone / "results/runs").exists()
    pull = run([sys.executable, "-m", "dvc", "pull"], cwd=clone)
    assert pull.returncode == 0, pull.stderr
    ckpt = "results/runs/base/vpt/lr0.0003_s0_fb1024_decontaminated/checkpoints/step_0000060/optim.pt"
    assert (clone / ckpt).read_bytes() == (work / ckpt).read_bytes()
    touch = snakemake("--touch", "--cores", "1", "all", cwd=clone)
    assert touch.returncode == 0, touch.stderr[-2000:]
    dry = snakemake("-n", "all", cwd=clone)
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-2000:]
    # without Snakemake's metadata (a clone has none), a config edit still reruns exactly its jobs
    dry = snakemake("-n", "all", "--configfile", edited(clone, lambda c: c["eval"]["mmlu"].update(limit_per_subject=1)), cwd=clone)
    assert planned_jobs(dry.stdout) == {"eval_mmlu_omega_id_omega_ood": 8, "report_table2": 1, "all": 1}


@pytest.mark.slow
def test_table1_target_builds_only_table1_inputs(workdir: Path, embedded_run: Path) -> None:
    """From scratch, `snakemake results/tables/table1.md` plans exactly what Table 1 reads; in a
    finished run with the table removed, building it runs its report job alone. (The jobs
    themselves are the ones the end-to-end run executed; running them a second time from
    scratch here would double the suite's longest test.)"""
    dry = snakemake("-n", "--cores", "2", "results/tables/table1.md", cwd=workdir)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert planned_jobs(dry.stdout) == {
        "synth_corpus": 1, "download_corpus": 1, "download_gsm8k": 1, "decontaminate": 1, "tokenizer": 1,
        "pack_decontaminated": 1, "pretrain_base": 1, "train": 8, "eval_gsm8k": 8, "report_table1": 1,
        # the vision rows: the rendered ADE20K / NYUv2 / ImageNet worlds and their downloads, the base ViT (DINO on
        # the ImageNet world), vision main's 4 runs, and their ADE20K, NYUv2 and ImageNet linear evaluations in
        # 11 jobs (split by the other reports reading them; counted from this dry run): dino s0, s1 and vpt s0
        # one job per task, vpt s1 ADE20K (also Table 2's) apart from NYUv2 + ImageNet (Table 1 alone)
        "synth_ade20k_world": 1, "synth_nyuv2_world": 1, "synth_imagenet_world": 1, "download_ade20k": 1,
        "download_nyuv2": 1, "download_imagenet": 1, "pretrain_vision_base": 1, "train_vision": 4,
        "eval_ade20k": 4, "eval_nyuv2": 3, "eval_imagenet_linear": 3, "eval_imagenet_linear_nyuv2": 1}
    planned = set(re.findall(r"results/eval/\S+\.json", dry.stdout))
    language = {e for e in planned if e.startswith("results/eval/base/")}
    assert len(language) == 8 and all(e.endswith("final/gsm8k.json") for e in language), planned
    vision = planned - language
    assert len(vision) == 4 * 3 and {e.rsplit("/", 1)[1] for e in vision} == {"ade20k.json", "nyuv2.json", "imagenet_linear.json"}
    before = (embedded_run / "results/tables/table1.md").read_text()
    for ext in ("md", "csv", "tex"):
        (embedded_run / f"results/tables/table1.{ext}").unlink()
    res = snakemake("--cores", "2", "results/tables/table1.md", cwd=embedded_run, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert planned_jobs(res.stdout + res.stderr) == {"report_table1": 1}
    table = (embedded_run / "results/tables/table1.md").read_text()
    assert table == before and "Baseline" in table and "V-Pretraining" in table
