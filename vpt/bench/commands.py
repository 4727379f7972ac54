"""`vpt bench memory|precision|gpu`: the scale benchmarks' parsers and handlers (vpt.cli calls
add_scale_benchmarks). On demand, not in `all`; defaults from the config's bench.<name> section
(schema defaults when absent), flags override them. Also `vpt bench overhead`'s handler, which
dispatches to the language benchmark or, with --vision, the vision one."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vpt.commands import DEFAULT_CONFIG

Sub = Callable[[Any, str, Callable[[argparse.Namespace], None], str, str], argparse.ArgumentParser]


def _config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", action="append", metavar="YAML",
                   help=f"config file (repeatable; later files override earlier keys). Default: {DEFAULT_CONFIG}")


def _settings(args: argparse.Namespace, name: str, keys: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(settings: schema defaults <- the config's bench.<name> <- flags, plus "config"; the config)."""
    from vpt.bench.learners import resolve_settings
    from vpt.config import load_config

    paths = args.config or [DEFAULT_CONFIG]
    cfg = load_config(paths)
    s = resolve_settings(name, cfg.get("bench", {}).get(name, {}), {k: getattr(args, k) for k in keys})
    return {**s, "config": [str(Path(p).resolve()) for p in paths]}, cfg


def add_scale_benchmarks(bench: Any, sub: Sub) -> None:
    """Register memory, precision and gpu under `vpt bench` (`sub` is vpt.cli's subparser helper)."""
    from vpt.bench.gpu import PARTS
    from vpt.train.methods import LANGUAGE_METHODS

    p = sub(bench, "memory", cmd_bench_memory, "peak memory of one training step vs micro-batch, seq_len and global batch",
            "Peak memory of one real training step (vpt.train.loop.Trainer, built as `vpt bench overhead`\n"
            "builds it) per method, against micro-batch size (train.micro_batch_size), sequence length and\n"
            "global batch (train.batch_size). Each configuration runs in a fresh process: --warmup steps,\n"
            "then the peak over --steps measured steps, with meta_every 1 so a designer method's measured\n"
            "step includes its meta step. GPU: CUDA max_memory_allocated (absolute). CPU: peak RSS during\n"
            "the measured steps minus the RSS just before them (the JSON's peak_kind says which).\n"
            "Several --global-batch values at a fixed micro-batch show whether the peak is flat in the\n"
            "global batch (gradient accumulation). Ratios method/ntp per point (target <= 1.05).\n"
            "Writes results/bench/memory.json and the plot memory.png (+ .pdf) beside it. On demand, not in `all`.\n"
            "Defaults: the config's bench.memory section. GPU example:\n"
            "  vpt bench memory --learner qwen1.5-0.5b --micro-batch 1 2 4 8 --global-batch 32 --dtype bfloat16")
    _config(p)
    p.add_argument("--learner", choices=["config", "qwen1.5-0.5b"])
    p.add_argument("--methods", nargs="+", metavar="METHOD", help=f"default: ntp vpt; any of {', '.join(LANGUAGE_METHODS)}")
    p.add_argument("--micro-batch", dest="micro_batch", nargs="+", type=int, metavar="ROWS", help="default: 1 2 4")
    p.add_argument("--seq-len", dest="seq_len", nargs="+", type=int, metavar="T", help="default: 1024 (0.5B shape) or pack.seq_len")
    p.add_argument("--global-batch", dest="global_batch", nargs="+", type=int, metavar="ROWS", help="default: train.batch_size")
    p.add_argument("--warmup", type=int, help="steps before the measured ones (default 1)")
    p.add_argument("--steps", type=int, help="measured steps (default 1)")
    p.add_argument("--dtype", choices=["auto", "float32", "bfloat16"])
    p.add_argument("--loss-chunk-tokens", dest="loss_chunk_tokens", type=int, help="default: train.loss_chunk_tokens")
    p.add_argument("--activation-checkpointing", dest="activation_checkpointing", action="store_true", default=None)
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--threads", type=int)
    p.add_argument("--out", default="results/bench/memory.json")

    p = sub(bench, "precision", cmd_bench_precision, "bf16 vs fp32 agreement of the finite-difference meta-gradient",
            "The training default estimator (finite_difference, fused) on the same learner weights,\n"
            "designer, unlabeled batch and g_down, evaluated: fp32 (reference); with the learner forwards\n"
            "under bf16 autocast; with the learner's weights cast to bf16. Per setting: cosine and relative\n"
            "norm error of grad_phi V against fp32, V and its relative error, wall time; plus autograd vs\n"
            "finite_difference in fp32 as a sanity row. `recommendation`: the cheapest setting whose\n"
            "cosine >= --min-cosine, computed from the numbers. Default: Qwen1.5-0.5B shape (random init),\n"
            "1 row x 256 tokens, on CPU. Writes results/bench/precision.json. On demand, not in `all`.")
    _config(p)
    p.add_argument("--learner", choices=["config", "qwen1.5-0.5b"])
    p.add_argument("--rows", type=int, help="rows of the unlabeled and feedback batches (default 1)")
    p.add_argument("--seq-len", dest="seq_len", type=int, help="tokens per row (default 256)")
    p.add_argument("--fd-eps", dest="fd_eps", type=float, help="default: train.value.fd_eps")
    p.add_argument("--min-cosine", dest="min_cosine", type=float, help="the recommendation's bar (default 0.99)")
    p.add_argument("--repeats", type=int, help="calls per setting; from 2 on the first is an untimed warm-up (default 2)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--threads", type=int)
    p.add_argument("--out", default="results/bench/precision.json")

    p = sub(bench, "gpu", cmd_bench_gpu, "one <= 10-minute GPU session: learner step, Table 3, memory, bf16 agreement, vision",
            "One command for one GPU (H100/H200), one JSON (results/bench/gpu.json); the parts' time boxes\n"
            "(bench.gpu.budget_s) add up to 10 minutes: 7.5 for the language parts, 2.5 for vision:\n"
            "  learner_step  the bf16 ntp step with flash_attention_2 (sdpa when flash_attn is missing; recorded)\n"
            "  table3        Table 3's protocol at the Qwen1.5-0.5B shape (random init, seq 1024, meta_every 8,\n"
            "                global batch 32 through micro-batches): vpt bench overhead's side-by-side runs\n"
            "  memory        peak memory per method at global batch x seq_len (vpt bench memory, one point)\n"
            "  precision     bf16 vs fp32 meta-gradient agreement (vpt bench precision, --precision-rows rows)\n"
            "  vision        vpt bench overhead --vision's side-by-side runs, dino vs vpt, at the DINOv3\n"
            "                ViT-B/16 shape (random init, bf16 autocast, 2 x 224 + 6 x 96 crops, out_dim 8192, the\n"
            "                paper's U-Net designer, bench.gpu.vision: batch 64, meta_every 4) on synthetic images and pools\n"
            "                written to a temporary directory (no downloads needed: shapes set the cost)\n"
            "Each part is time-boxed and reports its elapsed seconds; the GPU's name is recorded; --parts\n"
            "runs a subset. Refuses without CUDA unless --allow-cpu --tiny (the config's learner, tiny\n"
            "batches, a 32 px ViT for vision, every part on CPU in < 2 minutes: a smoke run). On demand, not in `all`.")
    _config(p)
    p.add_argument("--allow-cpu", dest="allow_cpu", action="store_true", help="run without CUDA (with --tiny only)")
    p.add_argument("--tiny", action="store_true", help="smoke mode: the config's learner and tiny batches")
    p.add_argument("--parts", nargs="+", choices=PARTS, metavar="PART", help=f"run only these ({', '.join(PARTS)}; default: all)")
    for flag, help_ in (("global-batch", "rows per optimizer step (default 32)"), ("micro-batch", "rows per forward (default 8)"),
                        ("seq-len", "default 1024"), ("meta-every", "default 8"), ("warmup", "Table 3 warm-up steps (default 3)"),
                        ("window", "Table 3 timed steps (default 16)"), ("repeats", "Table 3 runs per method (default 2)"),
                        ("precision-rows", "rows of the precision part (default 4)"), ("threads", "torch threads")):
        p.add_argument(f"--{flag}", dest=flag.replace("-", "_"), type=int, help=help_)
    p.add_argument("--out", default="results/bench/gpu.json")


def cmd_bench_memory(args: argparse.Namespace) -> None:
    from vpt.bench.memory import run_benchmark

    s, cfg = _settings(args, "memory", ("learner", "methods", "micro_batch", "seq_len", "global_batch", "warmup", "steps",
                                         "dtype", "loss_chunk_tokens", "activation_checkpointing", "device", "threads"))
    result = run_benchmark(s, cfg, Path(args.out))
    print(json.dumps({"peak_kind": result["peak_kind"], "ratios": result["ratios"], "skipped": result["skipped"]}, indent=2))


def cmd_bench_precision(args: argparse.Namespace) -> None:
    from vpt.bench.precision import run_precision
    from vpt.io import write_json

    s, _ = _settings(args, "precision", ("learner", "rows", "seq_len", "fd_eps", "min_cosine", "repeats", "device", "threads"))
    result = run_precision(s)
    write_json(args.out, result)
    print(json.dumps({"rows": result["rows"], "recommendation": result["recommendation"]}, indent=2))


def cmd_bench_gpu(args: argparse.Namespace) -> None:
    from vpt.bench.gpu import run_benchmark

    keys = ("global_batch", "micro_batch", "seq_len", "meta_every", "warmup", "window", "repeats", "precision_rows", "threads")
    s, _ = _settings(args, "gpu", keys)
    result = run_benchmark(s, Path(args.out), args.allow_cpu, args.tiny, args.parts)
    print(json.dumps({name: {k: part[k] for k in ("status", "elapsed_s")} for name, part in result["parts"].items()}, indent=2))


# `vpt bench overhead` (its parser is vpt.cli's): the language benchmark (vpt.commands) or, with
# --vision, the vision one (vpt.bench.overhead_vision). Flags of the other modality are refused.
LANGUAGE_ONLY = {"seq_len": "--seq-len", "estimator_repeats": "--estimator-repeats", "plain": "--plain"}
VISION_ONLY = {"meta_batch_size": "--meta-batch-size", "estimator": "--estimator", "synthetic": "--synthetic-data"}


def cmd_bench_overhead_any(args: argparse.Namespace) -> None:
    from vpt.commands import UsageError

    other = LANGUAGE_ONLY if args.vision else VISION_ONLY
    given = [flag for key, flag in other.items() if getattr(args, key) not in (None, False)]
    wrong = {"qwen1.5-0.5b"} if args.vision else {"vit-b"}
    if args.learner in wrong:
        given.append(f"--learner {args.learner}")
    if given:
        mode = "vision (--vision)" if args.vision else "language (without --vision)"
        raise UsageError(f"{', '.join(given)}: not an option of the {mode} overhead benchmark; see vpt bench overhead --help")
    if not args.vision:
        from vpt.commands import cmd_bench_overhead

        args.out = args.out or "results/bench/overhead.json"
        return cmd_bench_overhead(args)
    return cmd_bench_overhead_vision(args)


def cmd_bench_overhead_vision(args: argparse.Namespace) -> None:
    from vpt.bench.overhead_vision import DEFAULT_OUT, resolve_settings, run_benchmark, summary_line
    from vpt.config import load_config
    from vpt.io import write_json
    from vpt.report.render import to_markdown
    from vpt.report.table3 import table3_vision

    paths = args.config or [DEFAULT_CONFIG]
    keys = ("learner", "warmup", "window", "repeats", "meta_every", "meta_batch_size", "batch_size", "dtype", "estimator",
            "synthetic", "device", "threads")
    section = load_config(paths).get("bench", {}).get("overhead", {}).get("vision", {})
    s = resolve_settings(section, {k: getattr(args, k) for k in keys})
    result = run_benchmark({**s, "config": [str(Path(p).resolve()) for p in paths]})
    write_json(args.out or DEFAULT_OUT, result)  # atomic (vpt.io): a run cut short leaves the old file whole
    print(to_markdown(table3_vision(result)))
    print(summary_line(result))
