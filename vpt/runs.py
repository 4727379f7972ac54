"""Runs assembled from the validated config: which run a command means, the trainer's settings
(TrainConfig + RunSpec) for a grid run or the base pretraining, a trained run's saved learner and
designer, and the A.6 probe wired to them.

`vpt train`/`vpt probe` (vpt.cli), the benchmarks (vpt.bench) and the workflow's stamps
(vpt.workflow) all take these from here, so a run is assembled the same way however it starts.
Importable without torch (the Snakefile reads base_train_section): the trainer, the models and
torch are imported by the functions that use them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpt import paths
from vpt.config import deep_update
from vpt.errors import VptError
from vpt.grid import Run, default_run, parse_run, run_train_section
from vpt.io import read_parquet, write_json

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from vpt.models.designer import TaskDesigner
    from vpt.train.config import TrainConfig
    from vpt.language.task import RunSpec

Config = dict[str, Any]

# The parts of `train` only continued pretraining reads: the base pretraining (ntp from scratch)
# drops them, so they neither reach its TrainConfig nor its stamp (editing them does not retrain
# the base). `method` is dropped too; the base always trains with ntp.
NOT_READ_BY_BASE = ("designer", "value", "feedback", "fixed_alpha", "method", "snapshot_steps")


def resolve_run(cfg: Config, run: str | None, method: str | None) -> Run:
    """A grid run from a run id (checked against the config), or the default run of `method`
    (vpt.grid.default_run; vpt when None)."""
    return parse_run(cfg, run) if run else default_run(cfg, method or "vpt")


def base_train_section(cfg: Config) -> dict[str, Any]:
    """The `train` settings the base pretraining reads: train with base_model.train's overrides,
    minus NOT_READ_BY_BASE. A deep copy: the config is left as it is."""
    if "base_model" not in cfg:
        raise VptError("--base needs a `base_model` section in the config (the embedded tiny learner)")
    merged = deep_update(json.loads(json.dumps(cfg["train"])), cfg["base_model"].get("train", {}))
    for key in NOT_READ_BY_BASE:
        merged.pop(key, None)
    return merged


def vision_base_train_section(cfg: Config) -> dict[str, Any]:
    """The `train` settings of the vision base pretraining (method dino): the schema's `train`
    defaults with the top-level seed and vision.base_model.train's overrides, minus NOT_READ_BY_BASE.
    Not the config's `train` section: its lr, batch and clipping are the language runs'."""
    from vpt.config import section_defaults

    base = cfg.get("vision", {}).get("base_model")
    if base is None:
        raise VptError("--vision-base needs a `vision.base_model` section in the config (the embedded tiny ViT)")
    merged = deep_update(deep_update(section_defaults("train"), {"seed": cfg["seed"]}), base.get("train", {}))
    for key in NOT_READ_BY_BASE:
        merged.pop(key, None)
    return merged


def vision_base_table(cfg: Config) -> Path:
    """The image table the vision base pretrains on (vision.base_model.data)."""
    d = cfg["vision"]["base_model"]["data"]
    return paths.raw_split(cfg, d["dataset"], d["split"])


def train_setup(cfg: Config, run: Run | None, run_dir: str | Path | None) -> tuple[TrainConfig, RunSpec]:
    """(TrainConfig, RunSpec) for a grid run, or for the base pretraining (run=None); `run_dir`
    replaces the workflow's run directory."""
    from vpt.data.tokenizer import tokenizer_source
    from vpt.train.config import VALUE_METHODS, TrainConfig
    from vpt.language.task import RunSpec

    tok_path, tok_rev = tokenizer_source(cfg, paths.tokenizer_dir(cfg))
    variant = paths.train_variant(cfg) if run is None else run.corpus
    spec = RunSpec(run_dir=Path("."), packed_dir=paths.packed_dir(cfg, variant),
                   tokenizer_path=tok_path, tokenizer_revision=tok_rev, extra={"preset": cfg["name"]})
    if run is None:
        train = {**base_train_section(cfg), "method": "ntp"}
        spec.architecture = cfg["base_model"]["architecture"]
        spec.run_dir = Path(run_dir) if run_dir else paths.base_run_dir(cfg)
    else:
        train = run_train_section(cfg, run)
        if run.model == "base":
            spec.learner_path = str(paths.final_dir(paths.base_run_dir(cfg)))
        else:
            model = cfg["models"][run.model]
            spec.learner_path, spec.learner_revision = model["path"], model.get("revision")
        spec.run_dir = Path(run_dir) if run_dir else paths.run_dir(cfg, run.id)
        spec.extra["run"] = run.id
    tcfg = TrainConfig.from_dict(train)
    if tcfg.method in VALUE_METHODS:
        spec.feedback_table = feedback_table(cfg, tcfg)
    return tcfg, spec


def feedback_table(cfg: Config, tcfg: TrainConfig) -> Any:
    """The labeled split the feedback set is drawn from (train.feedback.dataset/split)."""
    fb = tcfg.feedback
    return read_parquet(paths.raw_split(cfg, fb.dataset, fb.split))


def load_trained(ckpt_dir: Path, tcfg: TrainConfig) -> tuple[PreTrainedModel, TaskDesigner | None]:
    """The learner saved in `ckpt_dir` (float32, on the CPU) and, for a value method, its designer."""
    import torch

    from vpt.models.designer import DesignerConfig, TaskDesigner
    from vpt.models.learner import load_learner
    from vpt.train.config import VALUE_METHODS

    model = load_learner(str(ckpt_dir), None, torch.float32, tcfg.attn_implementation)
    designer = None
    if tcfg.method in VALUE_METHODS:
        designer = TaskDesigner(DesignerConfig.for_learner(model, tcfg.designer))
        designer.load_state_dict(torch.load(ckpt_dir / "designer.pt", map_location="cpu"))
    return model, designer


def probe(cfg: Config, method: str, checkpoint: str | Path | None = None, out: str | Path | None = None) -> tuple[dict[str, Any], Path]:
    """The A.6 probe (vpt.language.probe.run_probe) of `method`'s default run, or of the model saved
    in `checkpoint`, written to `out` (default: the workflow's path); (result, where it went)."""
    import torch

    from vpt.data.tokenizer import load_tokenizer
    from vpt.language.data import FeedbackSet, PackedBatches
    from vpt.language.probe import run_probe
    from vpt.value.scope import scope_parameters

    tcfg, spec = train_setup(cfg, resolve_run(cfg, None, method), None)
    pr = cfg["probe"]
    ckpt_dir = Path(checkpoint) if checkpoint else paths.final_dir(spec.run_dir)
    if not (ckpt_dir / "config.json").exists():
        raise VptError(f"no saved model in {ckpt_dir}; train it first (vpt train --method {method})")
    model, designer = load_trained(ckpt_dir, tcfg)
    tok = load_tokenizer(ckpt_dir)
    fb = tcfg.feedback
    table = feedback_table(cfg, tcfg)
    feedback_set = FeedbackSet(table, tok, fb.n, fb.seed, fb.max_len)  # the subset the designer saw
    probe_set = FeedbackSet(table, tok, pr["n"], fb.seed + 1, fb.max_len, exclude=set(feedback_set.row_ids))
    data = PackedBatches(spec.packed_dir, pr["batch_size"], seed=tcfg.seed + 1000)
    torch.manual_seed(tcfg.seed)
    result = run_probe(model, scope_parameters(model, tcfg.value.scope), data, probe_set, feedback_set, pr["probes"], pr["eta"],
                       pr["batch_size"], tcfg.method, designer, tcfg.designer.K, tcfg.alpha_fixed, seed=tcfg.seed)
    result.update(checkpoint=str(ckpt_dir), scope=tcfg.value.scope, held_out_examples=pr["n"])
    path = Path(out) if out else paths.probe_result(cfg, method)
    write_json(path, result)
    return result, path
