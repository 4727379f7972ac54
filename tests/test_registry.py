"""vpt.registry and the three registries built on it (methods, evaluation tasks, reports): an
unknown name is answered with the choices, and every registered entry is wired into each place
that lists names (the config schema, the CLI, the config's reference check, the Snakefile)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

from vpt import paths
from vpt import workflow as W
from vpt.cli import build_parser, main
from vpt.config import ConfigError, load_schema, validate_config
from vpt.errors import VptError
from vpt.eval.registry import TASK_REGISTRY, NativeTask
from vpt.registry import Registry, help_table
from vpt.report.registry import REPORT_REGISTRY, BenchReport, EvalReport, LabReport
from vpt.train.methods import METHOD_REGISTRY

from conftest import REPO
from test_targets import embedded, paper  # noqa: F401  (the shared config fixtures)

TASKS = ("ade20k", "ade20k_tuning", "gsm8k", "gsm8k_passk", "imagenet_linear", "mmlu", "nyuv2", "omega_id", "omega_ood",
         "roxford5k", "rparis6k", "vision_masks")
VISION_TASKS = ("ade20k", "imagenet_linear", "nyuv2", "roxford5k", "rparis6k")
LAB_TASKS = ("ade20k_tuning", "vision_masks")  # the vision lab's: a group names them, no group runs them by default
PAPER_REPORTS = ("table1", "table1b_decontaminated", "table2", "table3", "table4", "table4_vision", "figure2_tokens",
                 "figure2_pareto", "figure3_coverage", "figure3_passk")
REPORTS = (*PAPER_REPORTS, "lab_vision")  # the vision lab's document: built where a config has `vision_lab`


# --------------------------------------------------------------------------- mechanics


def test_unknown_name_lists_the_choices_in_registration_order() -> None:
    reg: Registry[int] = Registry("colour")
    reg.register("red", 1)

    @reg.register("green")
    def green() -> int:
        return 2

    assert reg.names() == ("red", "green") and reg.get("green") is green and "red" in reg and len(reg) == 2
    with pytest.raises(VptError, match=r"^unknown colour 'blue'; choose one of: red, green$"):
        reg.get("blue")
    assert reg.where(lambda e: e == 1) == ("red",)


def test_a_name_is_registered_once() -> None:
    reg: Registry[int] = Registry("colour")
    reg.register("red", 1)
    with pytest.raises(ValueError, match="colour 'red' is registered twice"):
        reg.register("red", 2)


def test_package_modules_register_themselves_on_first_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "vpt_test_plugins"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from vpt.registry import Registry\nREG = Registry('plugin', packages=('vpt_test_plugins',))\n")
    (pkg / "b_second.py").write_text("from vpt_test_plugins import REG\nREG.register('b', 2)\n")
    (pkg / "a_first.py").write_text("from vpt_test_plugins import REG\nREG.register('a', 1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import vpt_test_plugins

    try:
        assert "vpt_test_plugins.a_first" not in sys.modules  # nothing imported until the registry is asked
        assert vpt_test_plugins.REG.names() == ("a", "b")  # modules in name order
        with pytest.raises(VptError, match="unknown plugin 'c'; choose one of: a, b"):
            vpt_test_plugins.REG.get("c")
    finally:
        for name in [m for m in sys.modules if m.startswith("vpt_test_plugins")]:
            del sys.modules[name]


def test_help_table_aligns_the_help_column() -> None:
    assert help_table([("a", "one"), ("long_name", "two")]).splitlines() == ["  a          one", "  long_name  two"]


# --------------------------------------------------------------------------- methods


def test_method_lists_derive_from_the_registry() -> None:
    from vpt.grid import FEEDBACK_METHODS
    from vpt.lab.config import LabConfig
    from vpt.train.config import METHODS, SOFT_METHODS, VALUE_METHODS

    from vpt.train.methods import LANGUAGE_METHODS, VISION_METHODS, VISION_ONLY_METHODS

    assert METHOD_REGISTRY.names() == ("ntp", "vpt", "random_feedback", "uniform_smoothing", "self_distill", "dino",
                                       "random_masks")
    assert METHODS == LANGUAGE_METHODS == ("ntp", "vpt", "random_feedback", "uniform_smoothing", "self_distill")
    assert VISION_METHODS == ("vpt", "random_feedback", "dino", "random_masks")
    assert VISION_ONLY_METHODS == ("dino", "random_masks")
    assert [METHOD_REGISTRY.get(m).masks for m in VISION_METHODS] == ["designer", "designer", None, "random"]
    assert VALUE_METHODS == FEEDBACK_METHODS == ("vpt", "random_feedback")
    assert SOFT_METHODS == ("vpt", "random_feedback", "uniform_smoothing", "self_distill")
    lab = load_schema("lab")
    assert lab["properties"]["lab"]["properties"]["methods"]["default"] == list(METHODS)
    assert lab["$defs"]["method"]["enum"] == list(METHODS)


def test_unknown_method_lists_the_registered_ones() -> None:
    from vpt.train.config import TrainConfig

    with pytest.raises(VptError, match=r"unknown method 'vtp'; choose one of: ntp, vpt, random_feedback, uniform_smoothing, self_distill, dino, random_masks$"):
        TrainConfig.from_dict({"method": "vtp"})


# --------------------------------------------------------------------------- the schema's enums


def _at(schema: dict[str, Any], *keys: str) -> list[str]:
    node: Any = schema
    for k in keys:
        node = node[k]
    return list(node)


def _enums(node: Any) -> list[list[Any]]:
    if isinstance(node, dict):
        return ([node["enum"]] if "enum" in node else []) + [e for v in node.values() for e in _enums(v)]
    if isinstance(node, list):
        return [e for v in node for e in _enums(v)]
    return []


def test_schema_enums_of_methods_and_tasks_equal_the_registries() -> None:
    """The schema is plain YAML and keeps its own lists; this test is what keeps them equal. The
    language sections' method enums (train, grid, probe) are the language methods; the vision
    grid's are the vision methods (the vision base's method is fixed: dino)."""
    from vpt.train.methods import LANGUAGE_METHODS, VISION_METHODS, VISION_ONLY_METHODS
    from vpt.vision.grid import vision_tasks

    s = load_schema()["properties"]
    group = s["grid"]["additionalProperties"]["properties"]
    vgroup = s["vision"]["properties"]["grid"]["additionalProperties"]["properties"]
    methods = list(LANGUAGE_METHODS)
    assert [e for e in _enums(s) if set(e) & set(VISION_ONLY_METHODS)] == [list(VISION_METHODS)]
    assert _at(vgroup, "methods", "items", "enum") == list(VISION_METHODS)
    assert _at(s, "train", "properties", "method", "enum") == methods
    assert _at(group, "methods", "items", "enum") == methods
    assert _at(s, "probe", "properties", "methods", "items", "enum") == methods
    tasks = list(TASK_REGISTRY.names())
    assert _at(s, "eval", "properties", "tasks", "items", "enum") == tasks
    assert _at(group, "tasks", "items", "enum") == tasks
    vtasks, native = vision_tasks(), [n for n, t in TASK_REGISTRY.items() if isinstance(t, NativeTask)]
    assert _at(vgroup, "tasks", "items", "enum") == native  # a group may name a lab's tasks too
    assert _at(s["vision"]["properties"], "base_model", "properties", "evaluate", "items", "enum") == vtasks
    # no other enum lists methods or tasks (a new one would escape the checks above)
    assert sum(e == methods for e in _enums(s)) == 3 and sum(e == tasks for e in _enums(s)) == 2
    assert sum(e == vtasks for e in _enums(s)) == 1 and sum(e == native for e in _enums(s)) == 1
    assert not [e for e in _enums(s) if e not in (methods, tasks, vtasks, native, list(VISION_METHODS))
                and set(e) & (set(methods[1:]) | {"gsm8k_passk", "omega_id", "imagenet_linear"})]


def test_every_task_section_is_in_the_schema() -> None:
    sections = set(load_schema()["properties"]["eval"]["properties"])
    assert {sec for _, t in TASK_REGISTRY.items() for sec in t.sections} <= sections


# --------------------------------------------------------------------------- evaluation tasks


def test_every_task_builds_on_the_data_it_declares(embedded: dict) -> None:
    assert TASK_REGISTRY.names() == TASKS
    for name, task in TASK_REGISTRY.items():
        if name in LAB_TASKS:
            assert isinstance(task, NativeTask) and not task.default and task.sections[-1] == name
            assert {k for k, _, _ in task.needs(embedded["eval"])} <= {"eval.ade20k", f"eval.{name}"}
            continue
        if isinstance(task, NativeTask):  # evaluated natively; its data is what it declares (vpt.eval.registry.task_inputs)
            assert task.default and name in VISION_TASKS and task.modality == "vision" and task.sections == (name,)
            assert {k for k, _, _ in task.needs(embedded["eval"])} == {f"eval.{name}"} and len(task.needs(embedded["eval"])) == 2
            continue
        task_cfg, opts = task.build(embedded)
        files = {str(f) for f in task_cfg["dataset_kwargs"]["data_files"].values()}
        declared = {str(paths.raw_split(embedded, d, s)) for _, d, s in task.needs(embedded["eval"])}
        assert declared and declared <= files, name
        assert set(opts) == {"limit", "num_fewshot", "seed"}
        assert set(W.eval_settings(embedded, name)) == {"batch_size", "max_length", *task.sections}


def test_unknown_task_lists_the_registered_ones(embedded: dict) -> None:
    from vpt.eval.run import task_config

    with pytest.raises(VptError, match=f"unknown evaluation task 'gsm9k'; choose one of: {', '.join(TASKS)}$"):
        task_config(embedded, "gsm9k")


def test_config_reference_check_reads_each_tasks_declared_data(embedded: dict) -> None:
    import copy

    cfg = copy.deepcopy(embedded)
    cfg["eval"]["tasks"] = ["omega_ood"]
    cfg["eval"]["omega"]["ood_split"] = "test_sideways"
    with pytest.raises(ConfigError, match=r"key 'eval.omega.split': dataset 'omega' has no split 'test_sideways'"):
        validate_config(cfg)


def test_snakemake_constraints_match_exactly_their_names() -> None:
    """W.alternatives: the registered tasks, and an evaluation rule's runs, match whole names only."""
    pattern = W.alternatives(TASK_REGISTRY.names())
    assert all(re.fullmatch(pattern, t) for t in TASKS)
    assert not re.fullmatch(pattern, "gsm8k_pass") and not re.fullmatch(pattern, "mmlu2")
    runs = W.alternatives(["base/vpt/lr0.0003_s0_decontaminated", "vision_base"])
    assert re.fullmatch(runs, "vision_base") and not re.fullmatch(runs, "base/vpt/lr0.0003_s0_decontaminated/final")
    assert not re.fullmatch(runs, "base/vpt/lr0x0003_s0_decontaminated")  # dots are literal
    assert "run=W.alternatives(_suite.runs)" in (REPO / "workflow/rules/eval.smk").read_text()


# --------------------------------------------------------------------------- reports


def test_reports_are_registered_with_resolvable_builders_and_registered_tasks() -> None:
    from vpt.report.build import NAMES

    assert REPORT_REGISTRY.names() == REPORTS
    for name, report in REPORT_REGISTRY.items():
        assert report.name == name and report.kind in ("table", "figure", "document")
        if isinstance(report, EvalReport):
            assert callable(report.build())
            assert {t for _, tasks in report.reads for t in tasks} <= set(TASKS)
            assert {t for read in report.vision_reads for t in read.tasks} <= set(VISION_TASKS)
            assert report.primary is not None or report.vision_primary is not None
            assert report.primary is None or report.primary in [(g, t) for g, tasks in report.reads for t in tasks]
            assert report.vision_primary is None or report.vision_primary in [
                (r.group, t) for r in report.vision_reads for t in r.tasks if r.like is None]  # not a baseline beside it
        elif isinstance(report, LabReport):
            assert report.kind == "document" and report.section == "vision_lab"
        else:
            assert isinstance(report, BenchReport) and report.kind == "table"
    assert NAMES == tuple(n for n, r in REPORT_REGISTRY.items() if isinstance(r, EvalReport))


def test_the_paper_builds_every_registered_report(paper: dict, embedded: dict) -> None:
    assert tuple(W.reports(paper)) == PAPER_REPORTS
    assert W.report_inputs(paper, "table3") == ["results/bench/overhead.json"]
    assert W.report_outputs(paper, "table3") == [f"results/tables/table3.{x}" for x in ("md", "csv", "tex")]
    assert W.report_outputs(paper, "figure3_passk") == [f"results/figures/figure3_passk.{x}" for x in ("png", "pdf")]
    no_bench = {**embedded, "bench": {}}
    assert "table3" in W.reports(embedded) and "table3" not in W.reports(no_bench)


def test_unknown_report_lists_the_registered_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "table5", "--config", str(REPO / "config/config.yaml")]) == 2
    assert f"unknown report 'table5'; choose one of: {', '.join(REPORTS)}" in capsys.readouterr().err


# --------------------------------------------------------------------------- the CLI


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--help"])
    return capsys.readouterr().out


@pytest.mark.parametrize("argv, registry", [(["train"], METHOD_REGISTRY), (["eval"], TASK_REGISTRY), (["report"], REPORT_REGISTRY)])
def test_help_lists_every_registered_name_with_its_help(argv: list[str], registry: Registry[Any],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = _help(argv, capsys)
    for name, entry in registry.items():
        assert re.search(rf"^  {re.escape(name)} +{re.escape(entry.help)}$", out, re.M), (name, out)


@pytest.mark.parametrize("argv, flag", [(["train"], "--method"), (["probe"], "--method"), (["eval", "--task", "mmlu"], "--task")])
def test_choices_come_from_the_registries(argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    from vpt.train.methods import LANGUAGE_METHODS

    for name in LANGUAGE_METHODS if flag == "--method" else TASK_REGISTRY.names():
        parser.parse_args([*argv, flag, name])
    if flag == "--method":  # the language runs' flag: a vision method trains through --vision-base
        with pytest.raises(SystemExit):
            parser.parse_args([*argv, flag, "dino"])
    with pytest.raises(SystemExit):
        parser.parse_args([*argv, flag, "nope"])
    assert "invalid choice: 'nope'" in capsys.readouterr().err
