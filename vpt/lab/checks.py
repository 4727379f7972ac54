"""The lab's checks across keys that a schema cannot express (vpt.config.validate_config calls
them for a lab preset). Imports nothing of vpt.config, so the two do not import each other."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vpt.data.synth import N_TEMPLATES


def check_lab(lab: Mapping[str, Any]) -> list[str]:
    """Problems across keys of a schema-valid `lab:` section, one line each."""
    problems: list[str] = []
    n = N_TEMPLATES[lab["target"]]
    if not set(lab["heldout_templates"]) < set(range(n)):
        problems.append(f"key 'lab.heldout_templates': {lab['heldout_templates']} must be a proper subset of the "
                        f"`{lab['target']}` templates 0..{n - 1}")
    c = lab["conflict"]
    if c and c["find"] == c["replace"]:
        problems.append(f"key 'lab.conflict': find and replace are both {c['find']!r}; they must differ")
    if lab["primary_metric"] == "conflict_token_accuracy" and not c:
        problems.append("key 'lab.primary_metric': conflict_token_accuracy needs a lab.conflict")
    bad = sorted(set(lab["method_train"]) - set(lab["methods"]))
    if bad:
        problems.append(f"key 'lab.method_train': {bad} not in lab.methods {lab['methods']}")
    grid = lab["tuning"].get("trials", {})
    if grid:
        missing = [m for m in lab["methods"] if m not in grid]
        sizes = {m: len(t) for m, t in grid.items()}
        if missing or len(set(sizes.values())) != 1:
            problems.append(f"key 'lab.tuning.trials': every method needs the same number of trials (equal budget); "
                            f"got {sizes}, missing {missing}")
        if lab["tuning"]["seed"] in lab["seeds"]:
            problems.append(f"key 'lab.tuning.seed': {lab['tuning']['seed']} is one of lab.seeds {lab['seeds']}; "
                            "tune on another seed")
    steps = lab["train"]["steps"]
    if lab["eval_steps"][-1] != steps:
        problems.append(f"key 'lab.eval_steps': {lab['eval_steps']}; must end at the last learner step, lab.train.steps "
                        f"({steps}), which the report's final comparison reads")
    return problems
