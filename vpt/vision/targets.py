"""Target-building logic of the vision stages for the Snakefile (re-exported by vpt.workflow):
what the base ViT's pretraining and each vision grid run read (their stamps and inputs) and write."""

from __future__ import annotations

from typing import Any

from vpt import paths, runs
from vpt.train.methods import METHOD_REGISTRY
from vpt.vision.grid import VisionRun, vision_run_config, vision_runs
from vpt.vision.grid_refs import RANDOM_MASK_KEYS

Config = dict[str, Any]


def vision_base_settings(cfg: Config) -> dict[str, Any]:
    """Everything the vision base pretraining reads from the config (its stamp): its train
    settings, the backbone's architecture, the data it reads and the SSL recipe."""
    base = cfg["vision"]["base_model"]
    return {"train": runs.vision_base_train_section(cfg), "backbone": {"timm": base["timm"], "architecture": base["architecture"]},
            "data": base["data"], "ssl": cfg["vision"]["ssl"]}


def vision_base_inputs(cfg: Config) -> list[str]:
    return [str(runs.vision_base_table(cfg))]


def vision_base_output(cfg: Config) -> str:
    return str(paths.final_state(paths.vision_base_run_dir(cfg)))


# Vision runs (vpt.vision.grid): continued SSL of a ViT per vision grid run.
def vision_run_settings(cfg: Config, run: VisionRun) -> dict[str, Any]:
    """Everything a vision run reads from the config (its stamp): its TrainConfig, backbone, SSL
    recipe, designer (with its variant applied), g_down weights and heads, and for the feedback
    methods the class count and depth range the heads read."""
    from vpt.vision.setup import vision_run_setup

    run_cfg = vision_run_config(cfg, run)
    tcfg, spec = vision_run_setup(run_cfg, run.method, paths.run_dir(cfg, run.id))
    designer = spec.designer
    if designer is not None and METHOD_REGISTRY.get(run.method).masks == "random":
        designer = {k: designer[k] for k in RANDOM_MASK_KEYS}
    out: dict[str, Any] = {"train": tcfg.to_dict(), "backbone": spec.backbone, "ssl": spec.ssl, "designer": designer,
                           "data": run_cfg["vision"]["data"], "init": str(spec.init) if spec.init else None}
    if spec.config is not None:  # the feedback methods
        fb = run_cfg["vision"]["feedback"]
        out["feedback"] = fb
        out["datasets"] = {t["dataset"]: run_cfg["datasets"][t["dataset"]].get("num_classes") for t in fb["tasks"].values()}
        out["depth_range"] = {k: run_cfg["eval"]["nyuv2"].get(k) for k in ("min_depth", "max_depth")}
    return out


def vision_train_inputs(cfg: Config, run: VisionRun) -> list[str]:
    """The unlabeled image table, the base ViT (embedded) and, for the feedback methods, the pools."""
    from vpt.vision.setup import feedback_inputs

    run_cfg = vision_run_config(cfg, run)
    v = run_cfg["vision"]
    ins = [str(paths.raw_split(cfg, v["data"]["dataset"], v["data"]["split"]))]
    if run.model == paths.VISION_BASE:
        ins.append(vision_base_output(cfg))
    if METHOD_REGISTRY.get(run.method).feedback:
        ins += sorted(map(str, feedback_inputs(run_cfg).values()))
    return ins


def vision_model_targets(cfg: Config) -> list[str]:
    return [str(paths.final_state(paths.run_dir(cfg, r.id))) for r in vision_runs(cfg)]
