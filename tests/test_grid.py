"""vpt.grid: run ids, group expansion, shared runs, snapshot steps and the evaluation list."""

from __future__ import annotations

import copy
import itertools

import pytest

from vpt import grid
from vpt.config import ConfigError, load_config, validate_config
from vpt.errors import VptError
from vpt.grid import Run

from conftest import REPO


@pytest.fixture(scope="module")
def paper() -> dict:
    return load_config([REPO / "config" / "paper.yaml"])


@pytest.mark.parametrize("run", [
    Run("qwen1.5-4b", "vpt", 1e-5, 0, 1024, "raw"),
    Run("qwen1.5-0.5b", "ntp", 6.25e-6, 2, None, "decontaminated"),
    Run("base", "random_feedback", 0.0003, 11, 256, "decontaminated"),
    Run("m", "self_distill", 1.2345678912345e-7, 0, None, "raw"),
])
def test_run_id_round_trips_exactly(run: Run) -> None:
    assert Run.parse(run.id) == run
    assert Run.parse(run.id).lr == run.lr  # repr: the shortest string that round-trips


def test_malformed_run_id_names_the_expected_form() -> None:
    with pytest.raises(VptError, match=r"<model>/<method>/lr<lr>_s<seed>"):
        Run.parse("qwen1.5-4b/vpt/1e-5")


@pytest.mark.parametrize("run_id, message", [
    ("qwen9b/vpt/lr1e-05_s0_fb1024_raw", "run 'qwen9b/vpt/lr1e-05_s0_fb1024_raw': model 'qwen9b' is not in the config; "
                                         "choose one of: qwen1.5-0.5b, qwen1.5-4b, qwen1.5-7b"),
    ("qwen1.5-4b/vpt/lr1e-05_s0_fb1024_zzz", "run 'qwen1.5-4b/vpt/lr1e-05_s0_fb1024_zzz': corpus 'zzz' is not packed; "
                                             "choose one of: raw, decontaminated"),
])
def test_parse_run_checks_model_and_corpus_against_the_config(paper: dict, run_id: str, message: str) -> None:
    with pytest.raises(VptError) as e:
        grid.parse_run(paper, run_id)
    assert str(e.value) == message
    assert grid.parse_run(paper, "qwen1.5-4b/vpt/lr1e-05_s0_fb1024_raw") == Run("qwen1.5-4b", "vpt", 1e-5, 0, 1024, "raw")


def test_paper_grid_matches_a_brute_force_enumeration(paper: dict) -> None:
    lrs = [5.0e-6, 6.25e-6, 7.5e-6, 8.75e-6, 1.0e-5]
    sizes = ["qwen1.5-0.5b", "qwen1.5-4b", "qwen1.5-7b"]
    expected = {(m, me, lr, s, 1024 if me == "vpt" else None, "raw") for m, me, lr, s in itertools.product(sizes, ["ntp", "vpt"], lrs, [0, 1, 2])}
    expected |= {("qwen1.5-4b", me, lr, 0, 1024 if me in ("vpt", "random_feedback") else None, "raw")
                 for me, lr in itertools.product(["vpt", "random_feedback", "uniform_smoothing", "self_distill"], lrs)}
    expected |= {("qwen1.5-0.5b", "vpt", 1e-5, s, n, "raw") for s, n in itertools.product([0, 1, 2], [1000, 2000, 3000])}
    expected |= {("qwen1.5-4b", me, 1e-5, 0, 1024 if me == "vpt" else None, "decontaminated") for me in ["ntp", "vpt"]}
    runs = grid.all_runs(paper)
    assert {(r.model, r.method, r.lr, r.seed, r.feedback_n, r.corpus) for r in runs} == expected
    assert len(runs) == 90 + 15 + 9 + 2 == 116


def test_paper_evaluations_count(paper: dict) -> None:
    evals = grid.evaluations(paper)
    assert len(evals) == len(set(evals))
    # main 90 runs x 5 tasks; ablation 15 new finals + 20 runs x 9 snapshots; tokens: ntp 4B's 9
    # snapshots (vpt's are the ablation's); coverage 9; decontaminated 2
    assert len(evals) == 450 + 15 + 180 + 9 + 9 + 2


def test_snapshot_steps_come_from_every_group_listing_the_run(paper: dict) -> None:
    shared = Run("qwen1.5-4b", "vpt", 1e-5, 0, 1024, "raw")  # main, ablation and tokens
    assert grid.snapshot_steps(paper, shared) == list(range(200, 2000, 200))
    assert grid.snapshot_steps(paper, Run("qwen1.5-7b", "vpt", 1e-5, 0, 1024, "raw")) == []
    assert grid.run_train_section(paper, shared)["snapshot_steps"] == list(range(200, 2000, 200))


def test_methods_without_feedback_ignore_feedback_n(paper: dict) -> None:
    cfg = copy.deepcopy(paper)
    cfg["grid"] = {"g": {"methods": ["ntp", "vpt"], "feedback_n": [10, 20]}}
    assert sorted(r.id for r in grid.all_runs(cfg)) == [
        "qwen1.5-0.5b/ntp/lr1e-05_s0_raw", "qwen1.5-0.5b/vpt/lr1e-05_s0_fb10_raw", "qwen1.5-0.5b/vpt/lr1e-05_s0_fb20_raw"]


@pytest.mark.parametrize("edit, message", [
    ({"models": ["qwen9b"]}, "key 'grid.main.models': 'qwen9b' is not a model; choose one of: qwen1.5-0.5b"),
    ({"eval_steps": [5000]}, "key 'grid.main.eval_steps': step 5000 is beyond train.steps = 2000"),
    ({"methods": ["sft"]}, "grid.main.methods"),
])
def test_bad_grid_is_rejected_with_the_key(paper: dict, edit: dict, message: str) -> None:
    cfg = copy.deepcopy(paper)
    cfg["grid"]["main"].update(edit)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        validate_config(cfg)
