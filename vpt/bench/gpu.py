"""One GPU session's worth of measurements (<= 10 minutes on one H100/H200), in one JSON.

Parts, each time-boxed (bench.gpu.budget_s) and timed, at the Qwen1.5-0.5B shape (random init),
bf16 autocast and flash_attention_2 when flash_attn is importable (else sdpa; recorded):
    learner_step  the ntp learner step alone at one micro-batch of rows (tokens/s, peak memory)
    table3        Table 3's protocol (vpt bench overhead's side-by-side runs, reduced warm-up and
                  window): ntp vs vpt at the paper's global batch through micro-batches, meta_every 8
    memory        peak memory per method at global batch x seq_len (vpt bench memory, one point each)
    precision     bf16 vs fp32 meta-gradient agreement (vpt bench precision at a larger batch)
    vision        vpt bench overhead --vision's side-by-side runs, dino vs vpt, at the DINOv3 ViT-B/16
                  shape (random init, bf16 autocast, 2 x 224 + 6 x 96 crops, out_dim 8192, the
                  paper's U-Net designer, bench.gpu.vision: batch 64, meta_every 4) on synthetic
                  images and feedback pools written to a temporary directory (the GPU machine has
                  no downloads; shapes, not pixels, set the cost)
The default time boxes add up to 10 minutes (7.5 for the language parts, 2.5 for vision); a part
usually ends well inside its box. `parts` (--parts) runs a subset, e.g. vision alone in a session
of its own.
A part that fails or outruns its box is reported as such and the next one runs; the JSON is
rewritten (atomically) after every part, so a session cut short keeps what finished.

Without CUDA it refuses, unless `--allow-cpu --tiny`: the config's learner with small batches,
every part exercised on CPU in well under 2 minutes (the tests' and developers' smoke run); its
vision part runs a 32 px ViT (vpt.bench.learners.TINY_VIT) on synthetic tables.
"""

from __future__ import annotations

import importlib.util
import multiprocessing as mp
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vpt.bench.learners import machine_info
from vpt.bench.sidebyside import run_isolated
from vpt.errors import VptError

PARTS = ("learner_step", "table3", "memory", "precision", "vision")
METHODS = ("ntp", "vpt")
# --tiny: the config's learner and rows; small enough for a shared 2-core CPU
TINY = {"global_batch": 4, "micro_batch": 2, "meta_every": 2, "warmup": 1, "window": 2, "repeats": 1, "precision_rows": 1,
        "vision": {"batch_size": 4, "meta_every": 2, "warmup": 1, "window": 2, "repeats": 1}}


def attention() -> str:
    return "flash_attention_2" if importlib.util.find_spec("flash_attn") is not None else "sdpa"


def check_device(allow_cpu: bool, tiny: bool) -> str:
    """'cuda', or 'cpu' for the tiny smoke mode; refuses a CPU run of the full setting."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if allow_cpu and tiny:
        return "cpu"
    raise VptError("vpt bench gpu needs a CUDA device (torch.cuda.is_available() is False here); "
                   "for a CPU smoke run of every part on the config's learner use --allow-cpu --tiny")


def base_settings(s: dict[str, Any], device: str, tiny: bool) -> dict[str, Any]:
    """What every part's runs share: learner, row length, precision, attention, device."""
    if tiny:
        return {"config": s["config"], "learner": "config", "seq_len": None, "dtype": "float32", "attn_implementation": "sdpa",
                "device": device, "threads": s["threads"]}
    return {"config": s["config"], "learner": "qwen1.5-0.5b", "seq_len": s["seq_len"], "dtype": "bfloat16",
            "attn_implementation": attention(), "device": device, "threads": s["threads"]}


def learner_step(b: dict[str, Any], s: dict[str, Any], deadline: float) -> dict[str, Any]:
    from vpt.bench.overhead import measure

    settings = {**b, "batch_size": s["micro_batch"], "micro_batch_size": s["micro_batch"], "warmup": s["warmup"],
                "window": s["window"]}
    return {"rows": s["micro_batch"], **run_isolated(measure, "ntp", settings, deadline - time.monotonic())}


def table3(b: dict[str, Any], s: dict[str, Any], deadline: float) -> dict[str, Any]:
    from vpt.bench.overhead import side_by_side

    settings = {**b, "batch_size": s["global_batch"], "micro_batch_size": s["micro_batch"], "meta_every": s["meta_every"],
                "warmup": s["warmup"], "window": s["window"], "repeats": s["repeats"]}
    return {"global_batch": s["global_batch"], "micro_batch": s["micro_batch"], **side_by_side(settings, deadline)}


def memory(b: dict[str, Any], s: dict[str, Any], deadline: float) -> dict[str, Any]:
    from vpt.bench.memory import measure_point, ratios

    rows = []
    for method in METHODS:
        point = {"method": method, "global_batch": s["global_batch"], "micro_batch": s["micro_batch"], "warmup": 1, "steps": 1}
        rows.append({**point, "seq_len": b["seq_len"],
                     **run_isolated(measure_point, method, {**b, **point}, deadline - time.monotonic())})
    return {"rows": rows, "ratios": ratios(rows)}


def precision(b: dict[str, Any], s: dict[str, Any], deadline: float) -> dict[str, Any]:
    from vpt.bench.precision import measure_precision

    settings = {**b, "rows": s["precision_rows"], "repeats": 1, "min_cosine": 0.99, "fd_eps": None}
    if b["learner"] == "config":
        settings["seq_len"] = None  # the packed rows as they are
    return run_isolated(measure_precision, "vpt", settings, deadline - time.monotonic())


def vision(b: dict[str, Any], s: dict[str, Any], deadline: float) -> dict[str, Any]:
    from vpt.bench.overhead_vision import side_by_side, with_targets

    v = s["vision"]
    # --tiny runs the config's (language) learner; its vision counterpart is the 32 px smoke ViT
    settings = {"config": b["config"], "learner": "tiny" if b["learner"] == "config" else "vit-b",
                "synthetic": True, "dtype": b["dtype"], "device": b["device"], "threads": b["threads"],
                "batch_size": v["batch_size"], "meta_batch_size": v["batch_size"], "meta_every": v["meta_every"],
                "warmup": v["warmup"], "window": v["window"], "repeats": v["repeats"]}
    return {"settings": settings, **with_targets(side_by_side(settings, deadline))}


RUNNERS: dict[str, Callable[[dict[str, Any], dict[str, Any], float], dict[str, Any]]] = {
    "learner_step": learner_step, "table3": table3, "memory": memory, "precision": precision, "vision": vision}


def run_benchmark(s: dict[str, Any], out: Path, allow_cpu: bool, tiny: bool, parts: list[str] | None = None) -> dict[str, Any]:
    """Every part (or those of `parts`, in PARTS order) in turn, each in its own process(es) under its
    time box; `out` rewritten after each."""
    from vpt.io import write_json

    device = check_device(allow_cpu, tiny)
    s = {**s, **(TINY if tiny else {})}
    b = base_settings(s, device, tiny)
    machine = machine_info(device)
    result: dict[str, Any] = {"benchmark": "gpu", "mode": "tiny" if tiny else "full", "settings": {**s, **b}, "machine": machine,
                              "gpu": machine["device"] if device == "cuda" else None, "attn_implementation": b["attn_implementation"],
                              "dtype": b["dtype"], "parts": {}}
    start = time.monotonic()
    chosen = [name for name in PARTS if parts is None or name in parts]
    for name in chosen:
        budget = float(s["budget_s"][name])
        t0 = time.monotonic()
        try:
            part = {"status": "ok", **RUNNERS[name](b, s, t0 + budget)}
        except mp.TimeoutError:
            part = {"status": "timeout", "error": f"stopped after its {budget:g} s budget (bench.gpu.budget_s.{name})"}
        except Exception as e:  # one failed part must not cost the session the other parts' numbers
            part = {"status": "error", "error": f"{type(e).__name__}: {e}"}
        result["parts"][name] = {**part, "elapsed_s": time.monotonic() - t0, "budget_s": budget}
        result["elapsed_s"] = time.monotonic() - start
        write_json(out, result)
    return result
