"""The vision experiment grid (vision.grid): named groups of continued-SSL runs, each run a point
(backbone, method, learning rate, seed, feedback weighting, designer variant).

A run's id is its path under results/runs/, as readable as a language run's:

    dinov3-vitb16/dino/lr1e-05_s0                      no feedback: no weighting in the id
    dinov3-vitb16/vpt/lr1e-05_s0_seg1_depth1           w_seg = 1, w_depth = 1 (g_down's weights)
    vision_base/vpt/lr0.0002_s0_seg4_depth1_tv-high    a named designer variant (vision.designers)

Groups overlap freely: a run is trained once and evaluated once per task however many groups
list it. The reports know the group names `main` (Tables 1-2), `pareto` (Figure 2 right) and
`ablation` (the vision ablation table).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from vpt import paths
from vpt.errors import VptError
from vpt.train.methods import METHOD_REGISTRY, VISION_METHODS
from vpt.vision.grid_refs import DEFAULT_DESIGNER, check_vision_grid, designer_variants, vision_groups, vision_learners  # noqa: F401

Config = dict[str, Any]

_NUM = r"[0-9.e+-]+"
# A Snakemake wildcard constraint. It matches no language run id: those of the shared methods
# (vpt, random_feedback) always carry _fb<n>_<corpus>, and a designer name has no underscore.
VISION_RUN_ID_PATTERN = (rf"[^/]+/(?:{'|'.join(VISION_METHODS)})/lr{_NUM}_s\d+"
                         rf"(?:_seg{_NUM}_depth{_NUM})?(?:_[a-z][a-z0-9-]*)?")
_ID = re.compile(rf"^(?P<model>[^/]+)/(?P<method>[a-z_]+)/lr(?P<lr>{_NUM})_s(?P<seed>\d+)"
                 rf"(?:_seg(?P<seg>{_NUM})_depth(?P<depth>{_NUM}))?(?:_(?P<designer>[a-z][a-z0-9-]*))?$")


@dataclass(frozen=True, order=True)
class VisionRun:
    model: str  # vision_base (the embedded base ViT) or a key of vision.models
    method: str  # a vision method: dino, vpt, random_feedback, random_masks
    lr: float
    seed: int
    weights: tuple[float, float] | None  # (w_seg, w_depth) of g_down; None for methods without feedback
    designer: str  # DEFAULT_DESIGNER or a key of vision.designers; only masks-learning methods have one

    @property
    def variant(self) -> str:
        """What sets the run apart beyond model, method, lr and seed: its g_down weighting and
        designer variant, as in the id ("seg4_depth1_tv-high"; "" for neither)."""
        w = f"seg{self.weights[0]:g}_depth{self.weights[1]:g}" if self.weights is not None else ""
        d = self.designer if self.designer != DEFAULT_DESIGNER else ""
        return "_".join(x for x in (w, d) if x)

    @property
    def id(self) -> str:
        return f"{self.model}/{self.method}/lr{self.lr!r}_s{self.seed}" + (f"_{self.variant}" if self.variant else "")

    @classmethod
    def parse(cls, run_id: str) -> VisionRun:
        m = _ID.match(run_id)
        if not m or m["method"] not in VISION_METHODS:
            raise VptError(f"vision run id {run_id!r} is malformed; expected <model>/<method>/lr<lr>_s<seed>"
                           f"[_seg<w>_depth<w>][_<designer>] with a method of {', '.join(VISION_METHODS)}, "
                           "e.g. dinov3-vitb16/vpt/lr1e-05_s0_seg1_depth1")
        weights = (float(m["seg"]), float(m["depth"])) if m["seg"] is not None else None
        return cls(m["model"], m["method"], float(m["lr"]), int(m["seed"]), weights, m["designer"] or DEFAULT_DESIGNER)


def record_group(name: str) -> str:
    """A vision group's name in the evaluation records ("vision.main"): the language grid has
    groups of the same names (main, ablation), and the records hold both halves."""
    return f"vision.{name}"


def is_vision_run_id(run_id: str) -> bool:
    return re.fullmatch(VISION_RUN_ID_PATTERN, run_id) is not None


def make_vision_run(model: str, method: str, lr: float, seed: int, weights: Any, designer: str) -> VisionRun:
    """A run with the fields its method ignores dropped, so runs differing only in them are one."""
    m = METHOD_REGISTRY.get(method)
    w = (float(weights[0]), float(weights[1])) if m.feedback else None
    return VisionRun(model, method, float(lr), int(seed), w, designer if m.masks == "designer" else DEFAULT_DESIGNER)


def configured_weights(cfg: Config) -> tuple[float, float]:
    t = cfg["vision"]["feedback"]["tasks"]
    return float(t["ade20k"]["weight"]), float(t["nyuv2"]["weight"])


def vision_tasks() -> list[str]:
    """The registered vision evaluations (vpt's own, on the frozen backbone) a group runs by default."""
    from vpt.eval.registry import TASK_REGISTRY, NativeTask

    return list(TASK_REGISTRY.where(lambda t: isinstance(t, NativeTask) and t.default))


def vision_group_spec(cfg: Config, name: str) -> dict[str, Any]:
    """A vision grid group with its defaults resolved from the rest of the vision section."""
    from vpt.vision.setup import vision_train_section

    v = cfg["vision"]
    g = v["grid"][name]
    t = vision_train_section(cfg, "dino")
    return {
        "models": g.get("models") or [v["learner"]],
        "methods": g["methods"],
        "lrs": g.get("lrs") or [t["lr"]],
        "seeds": g.get("seeds") or [t["seed"]],
        "weightings": [tuple(w) for w in g.get("weightings") or [configured_weights(cfg)]],
        "designers": g.get("designers") or [DEFAULT_DESIGNER],
        "tasks": g.get("tasks") or vision_tasks(),
    }


def vision_group_runs(cfg: Config, name: str) -> list[VisionRun]:
    s = vision_group_spec(cfg, name)
    return sorted({make_vision_run(mo, me, lr, seed, w, d) for mo in s["models"] for me in s["methods"] for lr in s["lrs"]
                   for seed in s["seeds"] for w in s["weightings"] for d in s["designers"]})


def vision_runs(cfg: Config) -> list[VisionRun]:
    return sorted({r for g in vision_groups(cfg) for r in vision_group_runs(cfg, g)})


def vision_group_evaluations(cfg: Config, name: str) -> list[tuple[VisionRun, None, str]]:
    """(run, None: the final model, task) of every evaluation one group asks for."""
    s = vision_group_spec(cfg, name)
    return [(run, None, task) for run in vision_group_runs(cfg, name) for task in s["tasks"]]


def vision_evaluations(cfg: Config) -> list[tuple[VisionRun, None, str]]:
    out = {e for g in vision_groups(cfg) for e in vision_group_evaluations(cfg, g)}
    return sorted(out, key=lambda e: (e[0].id, e[2]))


def parse_vision_run(cfg: Config, run_id: str) -> VisionRun:
    """The run a vision run id names, checked against the config."""
    run = VisionRun.parse(run_id)
    for what, value, choices in (("model", run.model, vision_learners(cfg)), ("designer", run.designer, designer_variants(cfg))):
        if value not in choices:
            raise VptError(f"vision run {run_id!r}: {what} {value!r} is not in the config; choose one of: {', '.join(choices)}")
    return run


def default_vision_run(cfg: Config, method: str) -> VisionRun:
    """The run `vpt train --vision METHOD` means: vision.learner, the vision runs' lr and seed,
    the configured g_down weights and designer."""
    from vpt.vision.setup import vision_train_section

    t = vision_train_section(cfg, method)
    return make_vision_run(cfg["vision"]["learner"], method, t["lr"], t["seed"], configured_weights(cfg), DEFAULT_DESIGNER)


def vision_run_config(cfg: Config, run: VisionRun) -> Config:
    """The config this run trains with: its learner, lr, seed, g_down weights and designer variant
    put into the vision section (the rest is the same for every run: compute-matched)."""
    out = copy.deepcopy(cfg)
    v = out["vision"]
    v["learner"] = run.model
    v["train"] = {**v.get("train", {}), "lr": run.lr, "seed": run.seed}
    if run.weights is not None:
        v["feedback"]["tasks"]["ade20k"]["weight"], v["feedback"]["tasks"]["nyuv2"]["weight"] = run.weights
    if run.designer != DEFAULT_DESIGNER:
        from vpt.config import deep_update

        variant = copy.deepcopy(v["designers"][run.designer])
        if "lr" in variant:  # the designer optimizer's lr, which lives in vision.train.designer
            v["train"]["designer"] = {**v["train"].get("designer", {}), "lr": variant.pop("lr")}
        v["designer"] = deep_update(v["designer"], variant)
    return out
