"""What every training-step benchmark shares: its settings (schema defaults <- the config's
bench.<name> section <- flags), the learners it measures, and the real trainer built on them.

Learners: `config` (the config's learner, e.g. the embedded base model, on the packed corpus) or
`qwen1.5-0.5b` (random init in Qwen1.5-0.5B's shape; the packed corpus re-cut to seq_len rows).
vpt bench overhead, memory, precision and gpu all build their runs here, so a run of one
benchmark and the same settings in another are the same run.

Vision learners (build_vision_trainer): `config` (vision.learner as configured; the embedded
vision_base falls back to a random init of vision.base_model.architecture when its final/ is
absent) or `vit-b` (timm vit_base_patch16_dinov3 at its default architecture, random init, with
the paper's crops 2 x 224 + 6 x 96, out_dim 8192 and feedback pools at 224). `tiny` (a 32 px ViT)
is the GPU check's CPU smoke shape.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from vpt.errors import VptError

# Qwen1.5-0.5B's config.json (hub: Qwen/Qwen1.5-0.5B), weights left random.
QWEN15_05B = {"model_type": "qwen2", "vocab_size": 151936, "hidden_size": 1024, "intermediate_size": 2816,
              "num_hidden_layers": 24, "num_attention_heads": 16, "num_key_value_heads": 16,
              "max_position_embeddings": 32768, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
              "tie_word_embeddings": True}
LEARNERS = {"config": None, "qwen1.5-0.5b": QWEN15_05B}
SHAPE_SEQ_LEN = 1024  # the GPU setting for a model-shaped learner (the config learner keeps pack.seq_len)
FAST_PATHS = ("fd_fused", "scope_cache", "feedback_scope_graph")  # train.value switches; --plain turns them off
# train.* keys a benchmark may set (None: the config's value)
TRAIN_KEYS = ("batch_size", "dtype", "micro_batch_size", "loss_chunk_tokens", "activation_checkpointing", "attn_implementation")


def resolve_settings(name: str, section: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Defaults (the schema's bench.<name>) <- the config's section <- command-line overrides (None: not given)."""
    from vpt.config import section_defaults

    given = {k: v for k, v in overrides.items() if v is not None}
    return {"threads": os.cpu_count() or 1, **section_defaults("bench", name), **section, **given}


def recut_packed(src: Path, seq_len: int, out: Path) -> Path:
    """The packed corpus as rows of `seq_len` tokens (consecutive rows joined, answer masks kept)."""
    from vpt.data.pack import open_packed

    ids, labels, meta = open_packed(src)
    n = ids.size // seq_len
    if n == 0:
        raise ValueError(f"{src}: {ids.size} tokens, fewer than one row of seq_len {seq_len}")
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for key, arr in (("input_ids", ids), ("labels", labels)):
        np.asarray(arr).reshape(-1)[: n * seq_len].reshape(n, seq_len).tofile(out / f"{key}.bin")
        files[key] = {"file": f"{key}.bin", "dtype": str(arr.dtype), "shape": [n, seq_len]}
    (out / "meta.json").write_text(json.dumps({**meta, "files": files, "seq_len": seq_len, "recut_from": str(src)}))
    return out


def default_seq_len(s: dict[str, Any]) -> int | None:
    """The row length a run of these settings trains on: s["seq_len"], else 1024 for a model shape,
    else None (the packed corpus as it is: pack.seq_len)."""
    return s.get("seq_len") or (SHAPE_SEQ_LEN if LEARNERS[s["learner"]] is not None else None)


# Shapes of the vision shape learners: the backbone spec (random init: no weights), the vision.ssl
# keys that set the crops' and heads' cost, the designer (the paper's U-Net beside a ViT-B: base
# channels 16, depth 3; the config's own designer is sized for its learner) and the feedback pools'
# resolution.
VIT_B = {"backbone": {"timm": "vit_base_patch16_dinov3", "architecture": {}},
         "ssl": {"out_dim": 8192, "hidden_dim": 2048, "bottleneck_dim": 256, "global_crops": 2, "local_crops": 6,
                 "global_size": 224, "local_size": 96},
         "designer": {"kind": "unet", "unet": {"base_channels": 16, "depth": 3}},
         "feedback_resolution": 224}
TINY_VIT = {"backbone": {"timm": "vit_base_patch16_dinov3",
                         "architecture": {"embed_dim": 32, "depth": 2, "num_heads": 2, "patch_size": 8, "img_size": 32}},
            "ssl": {"out_dim": 64, "hidden_dim": 32, "bottleneck_dim": 16, "global_crops": 2, "local_crops": 2,
                    "global_size": 32, "local_size": 16},
            "designer": {"kind": "unet", "unet": {"base_channels": 4, "depth": 2}},
            "feedback_resolution": 32}
VISION_LEARNERS = ("config", "vit-b")  # the schema's bench.overhead.vision.learner enum
VISION_SHAPES = {"vit-b": VIT_B, "tiny": TINY_VIT}  # tiny: the GPU check's CPU smoke shape only
VISION_TRAIN_KEYS = ("batch_size", "dtype", "micro_batch_size")
VISION_VALUE_KEYS = ("meta_every", "meta_batch_size", "estimator")  # vision.train.value keys a benchmark may set
RANDOM_INIT = "random init"


def vision_config(s: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the config a vision benchmark run trains on, with the shape learner and the synthetic data
    dir of `s` applied; what its learner is: backbone spec, weights (a path or RANDOM_INIT), note)."""
    from vpt import paths
    from vpt.config import load_config

    cfg = load_config(s["config"])
    if "vision" not in cfg:
        raise VptError(f"the vision benchmark needs a `vision` section in the config ({', '.join(map(str, s['config']))})")
    if s.get("data_dir"):
        cfg["data_dir"] = str(s["data_dir"])
    v = cfg["vision"]
    v["ssl"].update(head_warmup_steps=0, freeze_last_layer_steps=0)  # the steady state: every weight trains
    learner = s.get("learner") or "config"
    if learner in VISION_SHAPES:
        shape = VISION_SHAPES[learner]
        v["models"] = {**v.get("models", {}), f"bench-{learner}": shape["backbone"]}
        v["learner"] = f"bench-{learner}"
        v["ssl"].update(shape["ssl"])
        v["designer"] = {**v["designer"], **shape["designer"]}
        v["feedback"]["resolution"] = shape["feedback_resolution"]
        return cfg, {"learner": learner, "backbone": shape["backbone"], "weights": RANDOM_INIT, "note": "the shape only"}
    if learner != "config":
        raise VptError(f"vision benchmark learner {learner!r}; choose one of: {', '.join([*VISION_LEARNERS, *VISION_SHAPES])}")
    if v["learner"] != paths.VISION_BASE:
        spec = v["models"][v["learner"]]
        return cfg, {"learner": v["learner"], "backbone": spec, "weights": spec.get("file") or spec.get("hub_id") or RANDOM_INIT,
                     "note": "vision.learner (vision.models)"}
    base = {"timm": v["base_model"]["timm"], "architecture": v["base_model"]["architecture"]}
    final = paths.final_dir(paths.vision_base_run_dir(cfg))
    if Path(final, "model.safetensors").exists():
        return cfg, {"learner": paths.VISION_BASE, "backbone": base, "weights": str(final), "note": "vision.learner"}
    return cfg, {"learner": paths.VISION_BASE, "backbone": base, "weights": RANDOM_INIT,
                 "note": f"{final} absent: a random init of vision.base_model.architecture stands in (same shape)"}


def build_vision_trainer(arm: str, s: dict[str, Any], run_dir: str) -> Any:
    """The real vpt.train.loop.Trainer of vision method `arm` (dino, vpt, ...) on the config's vision
    run, with the benchmark's settings `s` (config paths, learner, data_dir, warmup + window,
    meta_every, meta_batch_size, estimator, VISION_TRAIN_KEYS); no checkpoints, logs or pictures
    inside the window."""
    import torch

    from vpt.vision.setup import vision_run_setup
    from vpt.vision.task import vision_trainer

    cfg, learner = vision_config(s)
    tcfg, spec = vision_run_setup(cfg, arm, run_dir)
    if learner["weights"] == RANDOM_INIT:
        spec.init = None  # vision_base's final/ is absent (or a shape learner): the architecture, untrained
    # one schedule step more than is run: the end-of-run mask pictures (at the last step) never happen
    tcfg.steps = (s["steps"] if s.get("steps") else s["warmup"] + s["window"]) + 1
    tcfg.checkpoint_every, tcfg.log_every, tcfg.snapshot_steps, tcfg.tensorboard = 10**9, 10**9, [], False
    for key in VISION_TRAIN_KEYS:
        if s.get(key) is not None:
            setattr(tcfg, key, s[key])
    for key in VISION_VALUE_KEYS:
        if s.get(key) is not None:
            setattr(tcfg.value, key, s[key])
    tcfg.value.burn_in = 0
    torch.manual_seed(0)
    return vision_trainer(tcfg, spec, device=s.get("device"))


def build_trainer(arm: str, s: dict[str, Any], run_dir: str) -> Any:
    """The real vpt.train.loop.Trainer of method `arm` on the config's default run of it, with the
    benchmark's settings `s` (config paths, learner, steps or warmup + window, meta_every, TRAIN_KEYS,
    value fast paths and estimator, seq_len) applied; no checkpoints, logs or snapshots."""
    import torch

    from vpt.config import load_config
    from vpt.language.task import language_trainer
    from vpt.runs import resolve_run, train_setup

    cfg = load_config(s["config"])
    tcfg, spec = train_setup(cfg, resolve_run(cfg, None, arm), run_dir)
    tcfg.steps = s["steps"] if s.get("steps") else s["warmup"] + s["window"]
    tcfg.checkpoint_every, tcfg.log_every, tcfg.snapshot_steps, tcfg.tensorboard = 10**9, 10**9, [], False
    for key in TRAIN_KEYS:
        if s.get(key) is not None:
            setattr(tcfg, key, s[key])
    if s.get("meta_every"):
        tcfg.value.meta_every = s["meta_every"]
    tcfg.value.burn_in = 0
    for key in (*FAST_PATHS, "estimator"):
        if s.get(key) is not None:
            setattr(tcfg.value, key, s[key])
    shape = LEARNERS[s["learner"]]
    if shape is not None:
        spec.learner_path, spec.architecture = None, shape
    seq_len = default_seq_len(s)
    if seq_len:
        spec.packed_dir = recut_packed(Path(spec.packed_dir), seq_len, Path(run_dir) / "packed")
    torch.manual_seed(0)
    return language_trainer(tcfg, spec, device=s.get("device"))


def machine_info(device: str | None = None) -> dict[str, Any]:
    """Where a benchmark ran: host, platform, CPUs, library versions and the device (GPU name on CUDA)."""
    import torch
    import transformers

    cuda = torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda")
    return {"host": platform.node(), "platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "transformers": transformers.__version__, "device": torch.cuda.get_device_name() if cuda else "cpu"}
