"""What every training-step benchmark shares: its settings (schema defaults <- the config's
bench.<name> section <- flags), the learners it measures, and the real trainer built on them.

Learners: `config` (the config's learner, e.g. the embedded base model, on the packed corpus) or
`qwen1.5-0.5b` (random init in Qwen1.5-0.5B's shape; the packed corpus re-cut to seq_len rows).
vpt bench overhead, memory, precision and gpu all build their runs here, so a run of one
benchmark and the same settings in another are the same run.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

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
