"""What a vision grid may name, and the check of vision.grid's cross-references (used by
vpt.config before any rule runs). Apart from vpt.vision.grid so that vpt.config can import it
without importing what the grid itself imports (vpt.config among them)."""

from __future__ import annotations

from typing import Any

from vpt import paths

Config = dict[str, Any]

# The vision.designer keys random masks read (the rest configure the learned designer): a run's
# stamp holds exactly these for random_masks (vpt.vision.targets). Here, not in vpt.vision.views,
# so that the Snakefile's target code never imports torch.
RANDOM_MASK_KEYS = ("apply_to", "keep_ratio", "random", "pictures")

DEFAULT_DESIGNER = "default"  # vision.designer as configured; any other name is a key of vision.designers


def vision_groups(cfg: Config) -> list[str]:
    return list(cfg.get("vision", {}).get("grid", {}))


def vision_learners(cfg: Config) -> list[str]:
    """What a vision run's model may be: vision_base (with a base_model section) or a key of vision.models."""
    v = cfg.get("vision") or {}
    return ([paths.VISION_BASE] if "base_model" in v else []) + list(v.get("models", {}))


def designer_variants(cfg: Config) -> list[str]:
    return [DEFAULT_DESIGNER, *(cfg.get("vision") or {}).get("designers", {})]


def check_vision_grid(cfg: Config) -> list[str]:
    """Cross-references of vision.grid the schema cannot express (used by vpt.config)."""
    problems: list[str] = []
    learners, designers = vision_learners(cfg), designer_variants(cfg)
    for name in vision_groups(cfg):
        g, key = cfg["vision"]["grid"][name], f"key 'vision.grid.{name}"
        problems += [f"{key}.models': {m!r} is not a vision learner; choose one of: {', '.join(learners)}"
                     for m in g.get("models") or [cfg["vision"]["learner"]] if m not in learners]
        problems += [f"{key}.designers': {d!r} is not in vision.designers; choose one of: {', '.join(designers)}"
                     for d in g.get("designers") or [] if d not in designers]
        problems += [f"{key}.weightings': {list(w)} weighs both evaluators 0 (g_down would be empty)"
                     for w in g.get("weightings") or [] if not any(w)]
    return problems
