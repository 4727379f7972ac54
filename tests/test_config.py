from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from vpt.config import ConfigError, load_config, validate_config

from conftest import REPO


@pytest.fixture
def embedded() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


@pytest.mark.parametrize("preset", ["config.yaml", "paper.yaml"])
def test_presets_are_valid(preset: str) -> None:
    cfg = load_config([REPO / "config" / preset])
    assert cfg["pack"]["dataset"] in cfg["datasets"]


# Vision sources whose pins could not be found publicly (config/paper.yaml says so in a TODO(pin)).
UNPINNED = {"imagenet", "ade20k", "nyuv2", "roxford5k", "rparis6k"}


def test_paper_preset_pins_every_hub_revision() -> None:
    cfg = load_config([REPO / "config" / "paper.yaml"])
    assert UNPINNED <= set(cfg["datasets"]), "a source in UNPINNED left paper.yaml: drop it from the list"
    pinned = [s for n, s in cfg["datasets"].items() if n not in UNPINNED]
    for name in UNPINNED & set(cfg["datasets"]):
        spec = cfg["datasets"][name]
        if spec["schema"] == "revisitop":  # urls of the release, sha256 still to pin
            assert spec["url"]["gnd"].startswith("http") and spec["sha256"]["gnd"] is None, name
        else:
            assert "/" in spec["path"] and spec["revision"] is None, name
    specs = pinned + list(cfg["models"].values()) + [cfg["tokenizer"]["pretrained"]]
    for spec in specs:
        assert "/" in spec["path"], spec
        rev = spec["revision"]
        assert isinstance(rev, str) and len(rev) == 40 and int(rev, 16) >= 0, spec
    assert cfg["pack"]["seq_len"] == 1024 and cfg["pack"]["shuffle_buffer"] == 10000
    assert {"Qwen/Qwen1.5-0.5B", "Qwen/Qwen1.5-4B", "Qwen/Qwen1.5-7B"} == {m["path"] for m in cfg["models"].values()}
    refs = {r["dataset"] for r in cfg["decontaminate"]["references"]}
    assert refs == {"gsm8k", "math"}


def test_defaults_are_filled(embedded: dict) -> None:
    del embedded["decontaminate"]["ngram"]
    del embedded["pack"]["shuffle_buffer"]
    cfg = validate_config(embedded)
    assert cfg["decontaminate"]["ngram"] == 3
    assert cfg["pack"]["shuffle_buffer"] == 10000
    assert cfg["results_dir"] == "results"


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda c: c["pack"].update(sqe_len=3), ["key 'pack'", "sqe_len", "allowed keys:", "seq_len"]),
        (lambda c: c["pack"].update(seq_len=-5), ["key 'pack.seq_len'", "minimum of 8"]),
        (lambda c: c["pack"].update(seq_len="long"), ["key 'pack.seq_len'", "not of type 'integer'"]),
        (lambda c: c["pack"].update(variants=["cooked"]), ["key 'pack.variants.0'", "choose one of: raw, decontaminated"]),
        (lambda c: c["datasets"]["gsm8k"].update(schema="squad"), ["key 'datasets.gsm8k.schema'", "numina, gsm8k, math, mmlu, omega"]),
        (lambda c: c["synth"]["corpus"]["families"].update(algebra=1), ["key 'synth.corpus.families'", "'algebra'", "shopping"]),
        (lambda c: c["decontaminate"]["corpus"].update(dataset="nope"), ["key 'decontaminate.corpus.dataset'", "'nope'", "corpus, gsm8k, imagenet, mmlu"]),
        (lambda c: c["decontaminate"]["references"][0].update(split="dev"), ["key 'decontaminate.references.0.split'", "train, test"]),
        (lambda c: c["tokenizer"].update(pretrained={"path": "x"}), ["key 'tokenizer'", "exactly one of: pretrained | train"]),
        (lambda c: c["decontaminate"].update(lsh_threshold=0.9), ["key 'decontaminate.lsh_threshold'", "above threshold"]),
    ],
)
def test_errors_name_key_and_allowed_values(embedded: dict, edit, expected: list[str]) -> None:
    cfg = copy.deepcopy(embedded)
    edit(cfg)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, source="my.yaml")
    msg = str(err.value)
    assert "my.yaml" in msg
    for part in expected:
        assert part in msg, f"{part!r} not in:\n{msg}"


def test_unreadable_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file .*missing.yaml"):
        load_config([tmp_path / "missing.yaml"])
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="list.yaml: top level must be a mapping"):
        load_config([tmp_path / "list.yaml"])
    (tmp_path / "broken.yaml").write_text("pack: {seq_len: [\n")
    with pytest.raises(ConfigError, match="broken.yaml is not valid YAML"):
        load_config([tmp_path / "broken.yaml"])


def test_later_files_override_earlier(tmp_path: Path) -> None:
    (tmp_path / "o.yaml").write_text("pack: {seq_len: 64}\n")
    cfg = load_config([REPO / "config" / "config.yaml", tmp_path / "o.yaml"])
    assert cfg["pack"]["seq_len"] == 64
    assert cfg["pack"]["shuffle_buffer"] == 1000  # sibling keys kept (deep merge)
