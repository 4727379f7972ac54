"""One source of defaults: the schema (workflow/schemas/config.schema.yaml). The section
dataclasses have none of their own, `vpt config show` prints what the stages use, and the
library dataclasses that mirror a section agree with it."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
import yaml

from vpt import grid
from vpt.cli import main
from vpt.config import ConfigError, load_config, load_schema, section_defaults, validate_config
from vpt.errors import VptError
from vpt.train.config import SECTIONS, TrainConfig

from conftest import REPO

PAPER = REPO / "config" / "paper.yaml"
EMBEDDED = REPO / "config" / "config.yaml"


def _schema_section(*keys: str) -> dict[str, Any]:
    sub = load_schema()
    for key in keys:
        sub = sub["properties"][key]
    return sub


@pytest.mark.parametrize("keys, cls", [(("train",), TrainConfig), *((("train", k), c) for k, c in SECTIONS.items())])
def test_train_dataclasses_have_no_defaults_and_every_key_has_one_in_the_schema(keys: tuple[str, ...], cls: type) -> None:
    fields = dataclasses.fields(cls)
    with_default = [f.name for f in fields if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING]
    assert with_default == [], f"{cls.__name__} repeats schema defaults: {with_default}"
    props = _schema_section(*keys)["properties"]
    assert [f.name for f in fields] == list(props), "dataclass fields and schema keys differ (or are in another order)"
    assert [k for k, v in props.items() if "default" not in v] == [], f"schema {'.'.join(keys)} keys without a default"


def test_from_dict_fills_a_partial_section_with_the_schema_defaults() -> None:
    full = section_defaults("train")
    assert TrainConfig.from_dict({}).to_dict() == full
    cfg = TrainConfig.from_dict({"lr": 3e-4, "designer": {"K": 3}, "lora": {"r": 4}})
    assert (cfg.lr, cfg.designer.K, cfg.designer.n_layer, cfg.lora.r, cfg.lora.alpha) == (
        3e-4, 3, full["designer"]["n_layer"], 4, full["lora"]["alpha"])
    with pytest.raises(VptError, match=r"unknown train key\(s\) \['lrr'\]; allowed: .*lr"):
        TrainConfig.from_dict({"lrr": 1.0})
    with pytest.raises(VptError, match=r"unknown train.value key\(s\) \['kindd'\]; allowed: .*kind"):
        TrainConfig.from_dict({"value": {"kindd": "dot"}})


def test_section_defaults_names_a_missing_section() -> None:
    with pytest.raises(ConfigError, match=r"no section 'train.nope'; choose one of: .*designer"):
        section_defaults("train", "nope")


def test_config_show_prints_every_train_key_with_the_value_the_trainer_uses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show", "-c", str(PAPER)]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)["train"]
    cfg = load_config([PAPER])
    tcfg = TrainConfig.from_dict(grid.run_train_section(cfg, grid.default_run(cfg, "vpt")))  # as vpt train builds it
    assert shown["weight_decay"] == tcfg.weight_decay == 0.1
    assert shown["beta2"] == tcfg.beta2 == 0.95
    assert shown["value"]["fd_eps"] == tcfg.value.fd_eps == 1e-3
    assert shown["dtype"] == tcfg.dtype == "auto"
    assert shown["lora"]["r"] == tcfg.lora.r == 0
    # every key, not just those five: the section as printed is the trainer's config
    assert TrainConfig.from_dict(shown).to_dict() == shown


def test_train_seed_defaults_to_the_top_level_seed() -> None:
    raw = yaml.safe_load(EMBEDDED.read_text())
    raw["seed"] = 7
    del raw["grid"]["coverage"]["seeds"]
    cfg = validate_config(copy.deepcopy(raw))
    assert cfg["train"]["seed"] == 7
    assert {r.seed for r in grid.group_runs(cfg, "coverage")} == {7}  # a group without seeds: [train.seed]
    raw["train"]["seed"] = 3
    assert validate_config(raw)["train"]["seed"] == 3


def test_bench_overhead_defaults_come_from_the_schema() -> None:
    from vpt.bench.overhead import resolve_settings

    s = resolve_settings({}, {"window": 9, "warmup": None})
    assert s["window"] == 9 and s["threads"] >= 1
    assert {k: s[k] for k in ("learner", "warmup", "repeats", "estimator_repeats")} == {
        "learner": "config", "warmup": 5, "repeats": 3, "estimator_repeats": 5}


def test_launch_settings_fill_a_missing_slurm_section_from_the_schema() -> None:
    from vpt import launch as L

    assert L.Settings.from_config({}) == L.Settings.from_config(load_config([EMBEDDED])) == L.Settings("results/slurm", 5, 3, 120)
    assert L.resources_for({}, "train", None) == L.Resources(partition=None, gpus=1, cpus=8, mem_gb=64, time_min=240, signal_delay_s=120,
                                                             nodes=1, tasks_per_node=1, extra={})


def test_library_dataclasses_that_mirror_a_section_agree_with_the_schema() -> None:
    """Library defaults (the lab and tests call these with a few arguments); the stages always
    pass the config's values, so a disagreement would only mislead."""
    from vpt.data.decontaminate import DecontamConfig
    from vpt.data.pack import PackConfig
    from vpt.data.synth import SynthConfig
    from vpt.models.designer import DesignerConfig

    from vpt.config import load_schema
    from vpt.data.render import LandmarkConfig, WorldConfig

    defs = load_schema()["$defs"]
    synth = defs["synth_corpus"]["properties"]
    pairs = [(PackConfig, _schema_section("pack")["properties"]), (DecontamConfig, _schema_section("decontaminate")["properties"]),
             (SynthConfig, synth), (DesignerConfig, _schema_section("train", "designer")["properties"]),
             (WorldConfig, defs["synth_scenes"]["properties"]), (LandmarkConfig, defs["synth_landmarks"]["properties"])]
    checked = 0
    for cls, props in pairs:
        for f in dataclasses.fields(cls):
            if f.name in props and "default" in props[f.name]:
                value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
                assert value == props[f.name]["default"], (cls.__name__, f.name, value, props[f.name]["default"])
                checked += 1
    assert checked == 3 + 5 + 2 + 5 + 4 + 6
