"""(TrainConfig, VisionRunSpec) of the vision runs from a validated config: the embedded tiny ViT's
DINO pretraining from scratch (the base), and continued SSL with every vision method."""

from __future__ import annotations

from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

from vpt import paths
from vpt.config import deep_update, section_defaults
from vpt.errors import VptError
from vpt.train.config import TrainConfig
from vpt.train.methods import METHOD_REGISTRY, VISION_METHODS


Config = dict[str, Any]


# Here, not in vpt.vision.task (which imports torch): the Snakefile builds run stamps from it.
@dataclass
class VisionRunSpec:
    """Where a vision run reads and writes, beyond the training hyper-parameters."""

    run_dir: Path
    table: Path  # a normalized image table (id, image bytes); labels, if any, are not read
    backbone: dict[str, Any]  # a backbone spec (vpt.vision.backbone): timm name, weights, architecture
    ssl: dict[str, Any]  # a validated `vision.ssl` section
    init: Path | None = None  # a saved vision model (the base's final/): backbone, and heads + center if it has them
    designer: dict[str, Any] | None = None  # a validated `vision.designer` section (masked methods)
    config: dict[str, Any] | None = None  # the whole validated config (the feedback pools: vision.feedback)
    inputs: dict[str, Path] = field(default_factory=dict)  # further inputs fingerprinted for the resume check
    extra: dict[str, Any] = field(default_factory=dict)  # recorded in config.json


def vision_base_setup(cfg: Config, run_dir: str | Path | None = None) -> tuple[TrainConfig, VisionRunSpec]:
    """The embedded tiny ViT's DINO pretraining from scratch; `run_dir` replaces results/models/vision_base."""
    from vpt.runs import vision_base_table, vision_base_train_section

    base = cfg["vision"]["base_model"]
    spec = VisionRunSpec(run_dir=Path(run_dir) if run_dir else paths.vision_base_run_dir(cfg), table=vision_base_table(cfg),
                         backbone={"timm": base["timm"], "architecture": base["architecture"]}, ssl=cfg["vision"]["ssl"],
                         extra={"preset": cfg["name"]})
    return TrainConfig.from_dict({**vision_base_train_section(cfg), "method": "dino"}), spec


def vision_train_section(cfg: Config, method: str) -> dict[str, Any]:
    """The schema's `train` defaults, the top-level seed, then vision.train's overrides (the same
    for every method), with the run's method."""
    merged = deep_update(deep_update(section_defaults("train"), {"seed": cfg["seed"]}), cfg["vision"].get("train", {}))
    return {**merged, "method": method}


def feedback_inputs(cfg: Config) -> dict[str, Path]:
    """The feedback pool tables of vision.feedback (fingerprinted: a redrawn pool is a new run)."""
    out = {}
    for name, t in cfg["vision"]["feedback"]["tasks"].items():
        if t["weight"] > 0:
            for split in (t["train_split"], t["meta_split"]):
                out[f"feedback/{name}/{split}"] = paths.raw_split(cfg, t["dataset"], split)
    return out


def vision_run_setup(cfg: Config, method: str, run_dir: str | Path) -> tuple[TrainConfig, VisionRunSpec]:
    """Continued SSL of vision.learner with `method` on vision.data's images."""
    if method not in VISION_METHODS:
        raise VptError(f"unknown vision method {method!r}; choose one of: {', '.join(VISION_METHODS)}")
    v = cfg.get("vision")
    if v is None:
        raise VptError("the vision runs need a `vision` section in the config")
    learner, init = v["learner"], None
    if learner == paths.VISION_BASE:
        init = paths.final_dir(paths.vision_base_run_dir(cfg))
        backbone: dict[str, Any] = {"timm": v["base_model"]["timm"], "architecture": v["base_model"]["architecture"]}
    elif learner in v.get("models", {}):
        backbone = v["models"][learner]
    else:
        raise VptError(f"key 'vision.learner': {learner!r} is neither {paths.VISION_BASE} nor a key of vision.models "
                       f"({', '.join(v.get('models', {})) or 'none'})")
    m = METHOD_REGISTRY.get(method)
    spec = VisionRunSpec(run_dir=Path(run_dir), table=paths.raw_split(cfg, v["data"]["dataset"], v["data"]["split"]),
                         backbone=backbone, ssl=v["ssl"], init=init, designer=v["designer"] if m.masks else None,
                         config=cfg if m.feedback else None, inputs=feedback_inputs(cfg) if m.feedback else {},
                         extra={"preset": cfg["name"], "learner": learner,
                                "feedback": v["feedback"] if m.feedback else None})
    return TrainConfig.from_dict(vision_train_section(cfg, method)), spec
