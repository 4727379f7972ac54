"""Table 3's overhead protocol (appendix A.5) for the vision methods: `dino` (the baseline) against
`vpt` (designer masks on the global crops, the dense-feedback value update every meta_every steps).

Both arms run the real training step (vpt.train.loop.Trainer on vpt.vision.task.VisionTask) on
the same learner, images and settings, each in a fresh process, alternating ABBA over repeats
(vpt.bench.sidebyside). Per run: W warm-up steps excluded, then a window of T steps timed with
synchronization at its ends (vpt.bench.overhead.timed_window):
    images/s = T * batch_size / window seconds, mean step time = window / T,
    peak memory = CUDA peak allocated in the window (GPU) or peak RSS in the window (CPU),
    phase fractions = time inside a phase / window (CUDA events on GPU, wall clock on CPU):
      value_update (feedback_grad: heads + g_down; estimate: the designer's meta-gradient step;
      meta_batch: the rest, the meta-SSL batch's crops and teacher forward), masks (the
      designer's forward on the learner's global crops), multicrop (decode + crops of the batch).
Ratios vpt/dino are formed within each repeat; the JSON gives their median and range, and
whether the vision targets (VISION_TARGETS, separate from the language ones) are met.

`synthetic`: random images and pools written to a temporary data_dir (vpt.bench.vision_data) in
place of the downloads, for a machine that has none; shapes, not pixels, set a step's cost.
"""

from __future__ import annotations

import logging
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from vpt.bench.learners import build_vision_trainer, machine_info, vision_config
from vpt.bench.overhead import timed_window
from vpt.bench.sidebyside import alternate, arm_summary, current_rss_bytes, ratio_summary

log = logging.getLogger(__name__)

ARMS = ("dino", "vpt")
VISION_TARGETS = {"images_per_s": 0.85, "peak_mem": 1.10}
# JSON key -> vpt.train.timing phase (the trainer's and VisionTask's names)
PHASES = {"value_update_frac": "value_update", "feedback_grad_frac": "value_update/feedback_grad",
          "estimate_frac": "value_update/estimate", "masks_frac": "masks", "multicrop_frac": "multicrop"}
METRICS = ("images_per_s", "images_per_s_at_median_step", "step_s", "step_s_median", "peak_mem", "peak_mem_run", *PHASES,
           "meta_batch_frac", "value_updates", "mask_keep")
RATIOS = ("images_per_s", "images_per_s_at_median_step", "step_s", "peak_mem", "peak_mem_run")
DEFAULT_OUT = "results/bench/overhead_vision.json"


def resolve_settings(section: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Defaults (the schema's bench.overhead.vision) <- the config's section <- overrides (None: not given)."""
    from vpt.config import section_defaults

    given = {k: v for k, v in overrides.items() if v is not None}
    return {"threads": os.cpu_count() or 1, **section_defaults("bench", "overhead", "vision"), **section, **given}


def measure(arm: str, s: dict[str, Any]) -> dict[str, Any]:
    """One arm: warm-up, then the timed window (runs in its own process)."""
    import torch

    torch.set_num_threads(s["threads"])
    import timm  # noqa: F401  (libraries in memory before the run's own state)

    import vpt.vision.task  # noqa: F401

    rss_libraries = current_rss_bytes()
    with tempfile.TemporaryDirectory(prefix="vpt-bench-vision-") as run_dir:
        t = build_vision_trainer(arm, s, run_dir)
        w = timed_window(t, s["warmup"], s["window"], rss_libraries)
        dt, ph, rows = w["window_s"], w["phases"], w["rows"]
        images = t.task.units_per_batch
        median = statistics.median(r["seconds"] for r in rows)
        out: dict[str, Any] = {
            "images_per_s": s["window"] * images / dt, "images_per_s_at_median_step": images / median,
            "step_s": dt / s["window"], "step_s_median": median, "window_s": dt,
            **{k: w[k] for k in ("peak_mem", "peak_reserved", "peak_mem_run")},
            **{key: ph.get(name, 0.0) / dt for key, name in PHASES.items()},
            "value_updates": float(w["counts"].get("value_update", 0)),
            "images_per_step": float(images), "final_loss": rows[-1]["loss"],
            "trainer": _trainer_shape(t),
        }
        out["meta_batch_frac"] = out["value_update_frac"] - out["feedback_grad_frac"] - out["estimate_frac"]
        keep = [r["mask_keep"] for r in rows if "mask_keep" in r]
        if keep:
            out["mask_keep"] = float(sum(keep) / len(keep))
        return out


def _trainer_shape(t: Any) -> dict[str, Any]:
    """What the run trained, read off the built trainer (not re-derived from the settings)."""
    cfg, ssl = t.cfg, t.task.spec.ssl
    backbone = t.task.learner.student.backbone
    out = {"batch_size": cfg.batch_size, "micro_batch_size": cfg.micro_batch_size, "dtype": cfg.dtype,
           "autocast": str(t.autocast_dtype).replace("torch.", "") if t.autocast_dtype else None,
           "global_crops": [ssl["global_crops"], ssl["global_size"]], "local_crops": [ssl["local_crops"], ssl["local_size"]],
           "out_dim": ssl["out_dim"], "embed_dim": backbone.num_features, "depth": len(backbone.blocks),
           "backbone_params": sum(p.numel() for p in backbone.parameters()), "device": t.device.type}
    if t.designer is not None:
        v = cfg.value
        out.update(meta_every=v.meta_every, meta_batch_size=v.meta_batch_size or cfg.batch_size, estimator=v.estimator,
                   scope=v.scope, designer_params=sum(p.numel() for p in t.designer.parameters()),
                   feedback=[ev.name for ev in t.task.evaluators])
    return out


def synthetic_data(cfg: dict[str, Any], s: dict[str, Any], root: Path) -> dict[str, Any]:
    """Write the synthetic tables of these settings' run (config `cfg` as vision_config gives it)
    under root/data; what was written."""
    from vpt.bench.vision_data import write_synthetic_tables

    c = cadence(cfg, s)
    v = cfg["vision"]
    size = v["feedback"]["resolution"]
    pool_side = size if isinstance(size, int) else max(size)
    side = v["ssl"]["global_size"] * 8 // 7  # ImageNet-like: a little larger than the global crop
    # two batches of each stream, so the data loader turns over once inside a short run
    shape = {"images": 2 * max(c["batch_size"], c["meta_batch_size"]), "image_side": side,
             "pool": 2 * v["feedback"]["batch_size"], "pool_side": pool_side}
    write_synthetic_tables(cfg, root / "data", **shape)
    return {"kind": "synthetic", **shape, "note": "random images and labels (vpt.bench.vision_data): shapes, not pixels, set the cost"}


def cadence(cfg: dict[str, Any], s: dict[str, Any]) -> dict[str, Any]:
    """The batch, meta_every and meta batch the vpt arm will run: the settings', else vision.train's."""
    from vpt.vision.setup import vision_train_section

    train = vision_train_section(cfg, "vpt")
    batch = s.get("batch_size") or train["batch_size"]
    return {"batch_size": batch, "meta_every": s.get("meta_every") or train["value"]["meta_every"],
            "meta_batch_size": s.get("meta_batch_size") or train["value"].get("meta_batch_size") or batch}


def check_inputs(cfg: dict[str, Any]) -> None:
    """Refuse before any run starts when the config's images or feedback pools are absent (a fresh
    clone has neither): name them and the two ways out."""
    from vpt import paths
    from vpt.errors import VptError
    from vpt.vision.setup import feedback_inputs

    v = cfg["vision"]
    needed = [paths.raw_split(cfg, v["data"]["dataset"], v["data"]["split"]), *feedback_inputs(cfg).values()]
    missing = [str(p) for p in needed if not Path(p).exists()]
    if missing:
        raise VptError(f"the vision benchmark's inputs are absent: {', '.join(missing)}; download them (`vpt data download`) "
                       "or pass --synthetic-data (random images and feedback pools of the same shapes; bench.overhead.vision.synthetic)")


def side_by_side(s: dict[str, Any], deadline: float | None = None) -> dict[str, Any]:
    """Both arms alternating over s["repeats"] (each run in its own process): runs, summaries, ratios."""
    cfg, learner = vision_config(s)
    meta_every = cadence(cfg, s)["meta_every"]
    if s["window"] < 4 * meta_every:
        log.warning("window %d is not >> meta_every %d: few value updates in the window", s["window"], meta_every)
    with tempfile.TemporaryDirectory(prefix="vpt-bench-vision-data-") as tmp:
        if s.get("synthetic"):
            data = synthetic_data(cfg, s, Path(tmp))
            s = {**s, "data_dir": str(Path(tmp) / "data")}
        else:
            check_inputs(cfg)
            data = {"kind": "config", "note": "the config's vision.data table and vision.feedback pools"}
        rows = alternate(ARMS, s["repeats"], measure, s, desc="overhead vision", deadline=deadline)
    return {
        "learner": learner, "data": data,
        "trainer": next(r["trainer"] for r in rows if r["arm"] == "vpt"),
        "runs": rows,
        "arms": {arm: {m: arm_summary(rows, arm, m) for m in METRICS} for arm in ARMS},
        "ratios": {m: ratio_summary(rows, "vpt", "dino", m) for m in RATIOS},
    }


def target_flags(ratios: dict[str, Any]) -> dict[str, bool]:
    rate, mem = ratios["images_per_s"]["median"], ratios["peak_mem"]["median"]
    return {"images_per_s": rate is not None and rate >= VISION_TARGETS["images_per_s"],
            "peak_mem": mem is not None and mem <= VISION_TARGETS["peak_mem"]}


def with_targets(table: dict[str, Any]) -> dict[str, Any]:
    """side_by_side's result with the targets and whether they are met (also the GPU check's part)."""
    return {**table, "targets": VISION_TARGETS, "target_met": target_flags(table["ratios"])}


def run_benchmark(s: dict[str, Any]) -> dict[str, Any]:
    """Both arms side by side; `s` from resolve_settings plus "config" (the config paths)."""
    table = side_by_side(s)
    return {"benchmark": "overhead_vision", "settings": s, "machine": machine_info(s.get("device")), **with_targets(table)}


def summary_line(result: dict[str, Any]) -> str:
    """The ratios against the targets, plainly (the command's last line)."""
    r, t, met = result["ratios"], result["targets"], result["target_met"]

    def verdict(key: str, op: str) -> str:
        return f"target {op} {t[key]:.2f} {'met' if met[key] else 'MISSED'}"

    rate, mem = r["images_per_s"], r["peak_mem"]
    return (f"vpt/dino images/s {rate['median']:.3f} [{rate['min']:.3f}, {rate['max']:.3f}] ({verdict('images_per_s', '>=')})  "
            f"peak memory {mem['median']:.3f} ({verdict('peak_mem', '<=')})  step time {r['step_s']['median']:.3f}  "
            f"value-update fraction {result['arms']['vpt']['value_update_frac']['median']:.3f}")
