"""Load, validate and complete the workflow configuration.

The schema (workflow/schemas/config.schema.yaml) is the single description of every key; this
module checks a config against it, fills in its defaults, checks cross-references the schema
cannot express (a `dataset:` must name an entry of `datasets`), and turns failures into one
message that names the file, the key and what is allowed.

A lab preset (a config with a `lab:` section, config/lab.yaml) is the other kind of config: it
goes through the same steps with workflow/schemas/lab.schema.yaml and vpt.lab.checks.check_lab.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from vpt.errors import VptError
from vpt.eval.registry import TASK_REGISTRY
from vpt.grid import FEEDBACK_METHODS, check_grid
from vpt.paths import dataset_splits

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
LAB_SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "lab.schema.yaml"
KINDS = ("main", "lab")  # the experiment pipeline's config, a lab preset


class ConfigError(VptError, ValueError):
    """A configuration that does not match the schema or refers to something undefined."""


def load_schema(kind: str = "main") -> dict[str, Any]:
    path = SCHEMA_PATH if kind == "main" else LAB_SCHEMA_PATH
    if not path.exists():
        raise ConfigError(f"config schema not found at {path} (vpt must run from its repository)")
    return copy.deepcopy(_read_schema(path, path.stat().st_mtime_ns))


@functools.lru_cache(maxsize=4)
def _read_schema(path: Path, mtime_ns: int) -> dict[str, Any]:
    """Parsed once per file version: the lab's `x-train-keys` sections each read the main schema."""
    return yaml.safe_load(path.read_text())


def _with_defaults(validator_cls: type) -> type:
    """A validator that also writes each property's `default` into the instance."""
    validate_properties = validator_cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):  # type: ignore[no-untyped-def]
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_cls, {"properties": set_defaults, "x-train-keys": _train_keys})


def _train_keys(validator, enabled, instance, schema):  # type: ignore[no-untyped-def]
    """`x-train-keys: true` (lab.schema.yaml): the instance holds keys of config.schema.yaml's
    `train` section. Checked against that section by a plain validator, which fills in none of
    its defaults: the lab layers such sections over one another, and a filled-in default would
    override the layer below."""
    if enabled and isinstance(instance, dict):
        main = _read_schema(SCHEMA_PATH, SCHEMA_PATH.stat().st_mtime_ns)  # read only: no copy needed
        yield from jsonschema.Draft202012Validator(main).descend(instance, main["properties"]["train"])


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def section_defaults(*keys: str) -> dict[str, Any]:
    """What validation fills into an empty mapping at `keys` (e.g. "train", or "bench", "overhead"):
    every default the schema gives that section, nested sections completed. For code that builds
    a section's settings from a partial dict (the lab, tests) without repeating the schema."""
    return copy.deepcopy(_section_defaults(keys))


@functools.cache
def _section_defaults(keys: tuple[str, ...]) -> dict[str, Any]:
    schema = load_schema()
    sub = schema
    for i, key in enumerate(keys):
        props = sub.get("properties", {})
        if key not in props:
            raise ConfigError(f"the schema has no section {'.'.join(keys[: i + 1])!r}; "
                              f"choose one of: {', '.join(props) or '(none)'}")
        sub = props[key]
    filled: dict[str, Any] = {}
    for _ in _Validator(schema).evolve(schema=sub).iter_errors(filled):
        pass  # a section's `required` keys have no default; only the filling matters here
    return filled


def _derived_defaults(config: dict[str, Any]) -> None:
    """Defaults that copy another key, which a schema `default` cannot say: train.seed is the
    top-level seed unless given (so the grid's default seeds and the base pretraining agree)."""
    train, seed = config.setdefault("train", {}), config.get("seed")
    if isinstance(train, dict) and "seed" not in train and isinstance(seed, int) and not isinstance(seed, bool):
        train["seed"] = seed


def _key(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    """One line: key, what is wrong, and what is allowed."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    msg = error.message
    if error.validator == "additionalProperties" and isinstance(schema.get("properties"), dict):
        msg += f"; allowed keys: {', '.join(sorted(schema['properties']))}"
    elif error.validator == "enum":
        msg = f"{error.instance!r} is not allowed; choose one of: {', '.join(map(str, schema['enum']))}"
    elif error.validator == "propertyNames" and error.context:
        inner = error.context[0]
        if inner.validator == "enum":
            msg = f"{inner.instance!r} is not allowed; choose one of: {', '.join(map(str, inner.validator_value))}"
    elif error.validator == "oneOf" and isinstance(schema.get("oneOf"), list):
        alts = [", ".join(alt.get("required", [])) or alt.get("type", "?") for alt in schema["oneOf"]]
        msg = f"must have exactly one of: {' | '.join(map(str, alts))} (got {sorted(error.instance) if isinstance(error.instance, dict) else error.instance!r})"
    desc = schema.get("description")
    if desc and error.validator not in ("additionalProperties",):
        msg += f"  [{' '.join(str(desc).split())}]"
    return f"key '{_key(error.absolute_path)}': {msg}"


def _check_references(cfg: Mapping[str, Any]) -> list[str]:
    """Cross-references the schema cannot express."""
    names = sorted(cfg["datasets"])
    problems: list[str] = []

    def ref(key: str, dataset: str, split: str | None = None) -> None:
        if dataset not in cfg["datasets"]:
            problems.append(f"key '{key}.dataset': {dataset!r} is not a dataset; choose one of: {', '.join(names)}")
            return
        spec = cfg["datasets"][dataset]
        splits = dataset_splits(spec)
        if split is not None and split not in splits:
            problems.append(f"key '{key}.split': dataset {dataset!r} has no split {split!r}; choose one of: {', '.join(splits)}")

    dc = cfg["decontaminate"]
    ref("decontaminate.corpus", dc["corpus"]["dataset"], dc["corpus"]["split"])
    for i, r in enumerate(dc["references"]):
        ref(f"decontaminate.references.{i}", r["dataset"], r["split"])
    if "train" in cfg["tokenizer"]:
        t = cfg["tokenizer"]["train"]
        ref("tokenizer.train", t["dataset"], t["split"])
    ref("pack", cfg["pack"]["dataset"], cfg["pack"]["split"])
    if dc["corpus"]["dataset"] != cfg["pack"]["dataset"] and "decontaminated" in cfg["pack"]["variants"]:
        problems.append(
            f"key 'pack.dataset': {cfg['pack']['dataset']!r} is packed decontaminated but "
            f"decontaminate.corpus.dataset is {dc['corpus']['dataset']!r}; make them the same"
        )
    fb = cfg["train"]["feedback"]
    methods = {m for g in cfg["grid"].values() for m in g["methods"]} | set(cfg["probe"]["methods"])
    if methods & set(FEEDBACK_METHODS) or "overhead" in cfg.get("bench", {}):  # the sections that read it
        ref("train.feedback", fb["dataset"], fb["split"])
    learner = cfg["learner"]
    if learner == "base" and "base_model" not in cfg:
        problems.append("key 'learner': 'base' needs a `base_model` section (the embedded tiny model)")
    elif learner != "base" and learner not in cfg["models"]:
        problems.append(f"key 'learner': {learner!r} is not a model; choose one of: base, {', '.join(cfg['models'])}")
    e = cfg["eval"]
    needs = {need for task in e["tasks"] for need in TASK_REGISTRY.get(task).needs(e)}  # the schema limits tasks to the registry's
    for key, dataset, split in sorted(needs):
        ref(key, dataset, split)
    problems += check_grid(cfg)
    if "vision" in cfg:
        from vpt.vision.grid_refs import check_vision_grid

        problems += check_vision_grid(cfg)
    if dc["lsh_threshold"] > dc["threshold"]:
        problems.append(
            f"key 'decontaminate.lsh_threshold': {dc['lsh_threshold']} is above threshold "
            f"{dc['threshold']}; LSH would discard pairs that the exact check accepts"
        )
    return problems


def _check_lab(cfg: Mapping[str, Any]) -> list[str]:
    from vpt.lab.checks import check_lab  # the lab's cross-key checks live with the lab

    return check_lab(cfg["lab"])


def validate_config(config: dict[str, Any], source: str = "config", kind: str = "main") -> dict[str, Any]:
    """Validate `config` in place, fill schema defaults, and return it; raise ConfigError.
    kind "main": the experiment pipeline's config; "lab": a lab preset (vpt.lab)."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}; choose one of: {', '.join(KINDS)}")
    if not isinstance(config, dict):
        raise ConfigError(f"{source}: the configuration must be a mapping, got {type(config).__name__}")
    if kind == "lab" and "lab" not in config:
        raise ConfigError(f"{source}: no `lab:` section (a lab preset, e.g. config/lab.yaml)")
    if kind == "main" and "lab" in config:
        raise ConfigError(f"{source}: a lab preset (it has a `lab:` section); run its stages as `vpt lab <stage>`")
    if kind == "main":
        _derived_defaults(config)
    errors = sorted(_Validator(load_schema(kind)).iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    problems = [_describe(e) for e in errors]
    if not problems:
        problems = _check_references(config) if kind == "main" else _check_lab(config)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"invalid configuration in {source}:\n{lines}")
    return config


def deep_update(base: dict[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict update, as Snakemake merges several --configfile."""
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def load_config(paths: Iterable[str | os.PathLike[str]], kind: str = "main") -> dict[str, Any]:
    """Read one or more YAML files (later ones override earlier), validate and complete."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ConfigError("no config file given")
    merged: dict[str, Any] = {}
    for path in paths:
        try:
            text = path.read_text()
        except OSError as e:
            raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from e
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path}: top level must be a mapping of keys, got {type(data).__name__}")
        deep_update(merged, data)
    return validate_config(merged, source=", ".join(map(str, paths)), kind=kind)
