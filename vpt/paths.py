"""Where every stage reads and writes: one function per artefact, used by both the CLI and the
Snakefile so the two never disagree."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vpt.errors import VptError

Config = dict[str, Any]


def data_dir(cfg: Config) -> Path:
    return Path(cfg.get("data_dir", "data"))


def synth_dir(cfg: Config, name: str) -> Path:
    """Where `vpt data synth <name>` writes (every kind)."""
    return data_dir(cfg) / "synth" / name


def synth_file(cfg: Config, name: str) -> Path:
    """The math corpus (a `synth` entry without `kind`)."""
    return synth_dir(cfg, name) / "train.jsonl"


def synth_outputs(cfg: Config, name: str) -> list[Path]:
    """The files a synth target produces: the corpus JSONL; a scenes target's split parquet files
    and manifest; a landmarks target's ground-truth pickle and manifest (its jpg/ directory is
    complete when the manifest exists: the target is swapped into place whole)."""
    spec = cfg["synth"][name]
    kind = spec.get("kind")
    if kind is None:
        return [synth_file(cfg, name)]
    d = synth_dir(cfg, name)
    if kind == "scenes":
        return [d / f"{split}.parquet" for split in spec["splits"]] + [d / "manifest.json"]
    return [d / f"gnd_{spec['name']}.pkl", d / "manifest.json"]


def raw_dir(cfg: Config, dataset: str) -> Path:
    return data_dir(cfg) / "raw" / dataset


def raw_split(cfg: Config, dataset: str, split: str) -> Path:
    return raw_dir(cfg, dataset) / f"{split}.parquet"


def raw_manifest(cfg: Config, dataset: str) -> Path:
    return raw_dir(cfg, dataset) / "manifest.json"


def decontaminated_dir(cfg: Config, dataset: str) -> Path:
    return data_dir(cfg) / "decontaminated" / dataset


def decontaminated_split(cfg: Config, dataset: str, split: str) -> Path:
    return decontaminated_dir(cfg, dataset) / f"{split}.parquet"


def decontamination_report(cfg: Config, dataset: str) -> Path:
    return decontaminated_dir(cfg, dataset) / "report.json"


def corpus_split(cfg: Config, dataset: str, split: str, variant: str) -> Path:
    """The corpus file a variant packs: the raw download or its decontaminated version."""
    if variant == "raw":
        return raw_split(cfg, dataset, split)
    if variant == "decontaminated":
        return decontaminated_split(cfg, dataset, split)
    raise ValueError(f"unknown corpus variant {variant!r}; choose one of: raw, decontaminated")


def tokenizer_dir(cfg: Config) -> Path:
    return data_dir(cfg) / "tokenizer" / cfg["tokenizer"]["name"]


def packed_dir(cfg: Config, variant: str) -> Path:
    return data_dir(cfg) / "packed" / cfg["pack"]["dataset"] / variant


def packed_meta(cfg: Config, variant: str) -> Path:
    return packed_dir(cfg, variant) / "meta.json"


REVISITOP_SPLITS = ("database", "queries")


def source_splits(spec: dict[str, Any]) -> list[str]:
    """Splits read from a `datasets` entry's source: local data_files keys, the hub splits asked
    for, or revisitop's database and queries."""
    if spec.get("schema") == "revisitop":
        return list(REVISITOP_SPLITS)
    return list(spec["data_files"]) if "data_files" in spec else list(spec["splits"])


def pool_names(spec: dict[str, Any]) -> list[str]:
    """The feedback pools of a `datasets` entry (`pools`: seed plus name -> {split, n}), sorted."""
    return sorted(k for k, v in spec.get("pools", {}).items() if isinstance(v, dict))


def dataset_splits(spec: dict[str, Any]) -> list[str]:
    """Splits a `datasets` entry provides: its source splits, then its feedback pools."""
    return source_splits(spec) + pool_names(spec)


def results_dir(cfg: Config) -> Path:
    return Path(cfg.get("results_dir", "results"))


def base_run_dir(cfg: Config) -> Path:
    """The embedded default's tiny learner, pretrained from scratch (rule pretrain_base)."""
    return results_dir(cfg) / "models" / "base"


VISION_BASE = "vision_base"  # the run id of the embedded tiny ViT (rule pretrain_vision_base), like "base"


def vision_base_run_dir(cfg: Config) -> Path:
    """The embedded default's tiny DINOv3-architecture ViT, DINO-pretrained from scratch."""
    return results_dir(cfg) / "models" / VISION_BASE


def run_dir(cfg: Config, run_id: str) -> Path:
    """A grid run (vpt.grid.Run.id): results/runs/<model>/<method>/<lr_seed_...>."""
    return results_dir(cfg) / "runs" / run_id


# The embedded base models: run ids outside the grid, each with its own directory.
NAMED_RUNS = {"base": base_run_dir, VISION_BASE: vision_base_run_dir}


# ---- inside a run directory (a grid run, the base model, a lab run): the one spelling of the layout
#   <run>/checkpoints/step_NNNNNNN/   resumable training state (vpt.train.checkpoint)
#   <run>/checkpoints/latest.json     names the newest complete checkpoint
#   <run>/snapshots/step_NNNNNNN/     an evaluable model saved during training (grid eval_steps)
#   <run>/final/                      the end-of-training model; final/state.json is written last
FINAL = "final"  # checkpoint label of the end-of-training model
CHECKPOINT_LABEL_PATTERN = r"final|step_\d{7}"  # a label as a regular expression (Snakemake wildcard)
_STEP_LABEL = re.compile(r"step_(\d+)")


def step_label(step: int) -> str:
    """step_0000200: the directory name of a checkpoint or snapshot taken after `step` steps."""
    return f"step_{step:07d}"


def checkpoint_label(step: int | None) -> str:
    """'final', or 'step_0000200' for a snapshot taken during training."""
    return FINAL if step is None else step_label(step)


def parse_checkpoint_label(label: str) -> int | None:
    """The step of a label (None for 'final'); the inverse of checkpoint_label."""
    if label == FINAL:
        return None
    m = _STEP_LABEL.fullmatch(label)
    if not m:
        raise VptError(f"checkpoint {label!r} is neither 'final' nor step_<N>")
    return int(m[1])


def is_step_label(name: str) -> bool:
    return _STEP_LABEL.fullmatch(name) is not None


def checkpoints_dir(run: Path) -> Path:
    return Path(run) / "checkpoints"


def checkpoint_dir(run: Path, step: int) -> Path:
    return checkpoints_dir(run) / step_label(step)


def latest_pointer(run: Path) -> Path:
    return checkpoints_dir(run) / "latest.json"


def snapshots_dir(run: Path) -> Path:
    return Path(run) / "snapshots"


def snapshot_dir(run: Path, step: int) -> Path:
    return snapshots_dir(run) / step_label(step)


def mask_picture(run: Path, step: int) -> Path:
    """A vision run's mask picture (crop | mask | masked view) at `step` (0: before any update)."""
    return run / "masks" / f"{step_label(step)}.png"


def final_dir(run: Path) -> Path:
    return Path(run) / FINAL


def final_state(run: Path) -> Path:
    """Written last in a finished run's final/ directory (save_pretrained model + tokenizer)."""
    return final_dir(run) / "state.json"


def saved_model(run: Path, checkpoint: str = FINAL) -> Path:
    """A run's saved model at a checkpoint label: final/ or snapshots/<label>/."""
    return final_dir(run) if checkpoint == FINAL else snapshots_dir(run) / checkpoint


def train_variant(cfg: Config) -> str:
    """The packed corpus the base pretraining uses: decontaminated when packed, else raw."""
    variants = cfg["pack"]["variants"]
    return "decontaminated" if "decontaminated" in variants else variants[0]


def probe_result(cfg: Config, method: str) -> Path:
    return results_dir(cfg) / "probe" / f"{method}.json"


def eval_dir(cfg: Config, run_id: str, checkpoint: str = FINAL) -> Path:
    """results/eval/<run id>/<final | step_NNNNNNN>/"""
    return results_dir(cfg) / "eval" / run_id / checkpoint


def eval_result(cfg: Config, run_id: str, task: str, checkpoint: str = FINAL) -> Path:
    return eval_dir(cfg, run_id, checkpoint) / f"{task}.json"


def model_dir(cfg: Config, run_id: str, checkpoint: str = FINAL) -> Path:
    """The saved model of a run id ('base', 'vision_base': the embedded base models) at a checkpoint label."""
    return saved_model(NAMED_RUNS[run_id](cfg) if run_id in NAMED_RUNS else run_dir(cfg, run_id), checkpoint)


def bench_result(cfg: Config, name: str) -> Path:
    """results/bench/<name>.json"""
    return results_dir(cfg) / "bench" / f"{name}.json"


def table_stem(cfg: Config, name: str) -> Path:
    """results/tables/<name>: .md, .csv and .tex next to each other."""
    return results_dir(cfg) / "tables" / name


def figure_stem(cfg: Config, name: str) -> Path:
    """results/figures/<name>: .png and .pdf."""
    return results_dir(cfg) / "figures" / name
