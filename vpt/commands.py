"""The handlers of the `vpt` commands (vpt.cli builds the parser and dispatches to them). Each
reads the validated config, calls the library (vpt.runs, the stage modules) and reports; none
holds a stage's logic."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import yaml

from vpt.config import load_config
from vpt.errors import VptError

log = logging.getLogger("vpt")

DEFAULT_CONFIG = "config/config.yaml"


class UsageError(VptError):
    pass


def _cfg(args: argparse.Namespace) -> dict[str, Any]:
    return load_config(args.config or [DEFAULT_CONFIG])


# --------------------------------------------------------------------------- config


def cmd_config_validate(args: argparse.Namespace) -> None:
    cfg = _cfg(args)
    print(f"OK: {', '.join(args.config or [DEFAULT_CONFIG])} is valid (preset {cfg['name']!r})")


def cmd_config_show(args: argparse.Namespace) -> None:
    print(yaml.safe_dump(_cfg(args), sort_keys=False), end="")


# --------------------------------------------------------------------------- data


def cmd_synth(args: argparse.Namespace) -> None:
    from vpt.paths import synth_dir, synth_file

    cfg = _cfg(args)
    if args.name not in cfg["synth"]:
        raise UsageError(f"no synth corpus {args.name!r} in the config; choose one of: {', '.join(cfg['synth']) or '(none)'}")
    spec = cfg["synth"][args.name]
    if "kind" in spec:  # a vision target: rendered scenes or landmarks
        from vpt.data.render import synth_target

        out_dir = Path(args.out) if args.out else synth_dir(cfg, args.name)
        manifest = synth_target(spec, out_dir)
        log.info("rendered %d images (%.0f images/s) to %s", manifest["images"], manifest["images_per_second"], out_dir)
        return
    from vpt.data.synth import SynthConfig, generate, write_jsonl

    docs = generate(SynthConfig(n_docs=spec["n_docs"], seed=spec["seed"], families=dict(spec["families"])))
    out = Path(args.out) if args.out else synth_file(cfg, args.name)
    write_jsonl(docs, out)
    log.info("wrote %d documents to %s", len(docs), out)


def cmd_download(args: argparse.Namespace) -> None:
    from vpt.data.download import download
    from vpt.paths import raw_dir

    cfg = _cfg(args)
    if args.name not in cfg["datasets"]:
        raise UsageError(f"no dataset {args.name!r} in the config; choose one of: {', '.join(sorted(cfg['datasets']))}")
    out = Path(args.out) if args.out else raw_dir(cfg, args.name)
    manifest = download(args.name, cfg["datasets"][args.name], out)
    for split, info in manifest["splits"].items():
        log.info("%s/%s: %d rows -> %s", args.name, split, info["rows"], out / info["file"])


def cmd_decontaminate(args: argparse.Namespace) -> None:
    from vpt.data.decontaminate import decontaminate_stage

    report, out = decontaminate_stage(_cfg(args), args.out)
    log.info(
        "kept %d of %d documents (%d removed, %.0f docs/s) -> %s",
        report["docs_out"], report["docs_in"], report["docs_removed"], report["docs_per_second"], out,
    )


def cmd_tokenizer(args: argparse.Namespace) -> None:
    from vpt.data.tokenizer import tokenizer_stage

    cfg = _cfg(args)
    tok, out = tokenizer_stage(cfg, args.out)
    log.info("tokenizer %s (vocab %d) -> %s", cfg["tokenizer"]["name"], len(tok), out)


def cmd_pack(args: argparse.Namespace) -> None:
    from vpt.data.pack import PackConfig, pack
    from vpt.data.tokenizer import load_tokenizer, tokenizer_source
    from vpt.io import read_parquet
    from vpt.paths import corpus_split, packed_dir, tokenizer_dir

    cfg = _cfg(args)
    p = cfg["pack"]
    if args.variant not in p["variants"]:
        raise UsageError(f"variant {args.variant!r} is not in pack.variants; choose one of: {', '.join(p['variants'])}")
    src = corpus_split(cfg, p["dataset"], p["split"], args.variant)
    corpus = read_parquet(src)
    path, revision = tokenizer_source(cfg, tokenizer_dir(cfg))
    tok = load_tokenizer(path, revision)
    out = Path(args.out) if args.out else packed_dir(cfg, args.variant)
    meta = pack(corpus, tok, PackConfig(p["seq_len"], p["shuffle_buffer"], p["seed"]), out, cfg["tokenizer"]["name"], str(src))
    log.info("%d documents -> %d sequences of %d tokens (%d answer tokens) -> %s",
             meta["documents"], meta["sequences"], meta["seq_len"], meta["answer_tokens"], out)


# --------------------------------------------------------------------------- train


def cmd_train(args: argparse.Namespace) -> None:
    from vpt import paths
    from vpt.runs import resolve_run, train_setup

    cfg = _cfg(args)
    from vpt.vision.grid import is_vision_run_id

    if args.vision_base or args.vision or (args.run and is_vision_run_id(args.run)):
        from vpt.vision.grid import default_vision_run, parse_vision_run, vision_run_config
        from vpt.vision.setup import vision_base_setup, vision_run_setup
        from vpt.vision.task import vision_trainer

        if args.vision or args.run:  # a vision grid run, or the default run of a vision method
            if "vision" not in cfg:
                raise UsageError("vision runs need a `vision` section in the config")
            run = parse_vision_run(cfg, args.run) if args.run else default_vision_run(cfg, args.vision)
            tcfg, spec = vision_run_setup(vision_run_config(cfg, run), run.method, args.run_dir or paths.run_dir(cfg, run.id))
        else:
            tcfg, spec = vision_base_setup(cfg, args.run_dir)
        make: Any = vision_trainer
    else:
        from vpt.language.task import language_trainer

        tcfg, spec = train_setup(cfg, None if args.base else resolve_run(cfg, args.run, args.method), args.run_dir)
        make = language_trainer
    if args.steps is not None:
        tcfg.steps = args.steps
    from vpt.dist import close_world

    try:
        trainer = make(tcfg, spec, device=args.device)  # FSDP over the ranks when RANK/WORLD_SIZE are set
        if trainer.resume_from is not None and trainer.world.is_main:
            log.info("resuming from %s (step %d)", trainer.resume_from, trainer.step)
        summary = trainer.run(stop_at=args.stop_at)
        if trainer.world.is_main:
            log.info("%s: %s", spec.run_dir, json.dumps(summary))
    finally:
        close_world()


def cmd_probe(args: argparse.Namespace) -> None:
    from vpt.runs import probe

    result, out = probe(_cfg(args), args.method, args.checkpoint, args.out)
    log.info("probe %s: Pearson r = %.3f (95%% CI %.3f..%.3f); with g_down from the feedback subset r = %.3f "
             "(%.3f..%.3f); %d probes -> %s", args.method, result["pearson_r"], *result["pearson_r_ci95"],
             result["feedback_subset_pearson_r"], *result["feedback_subset_pearson_r_ci95"], result["probes"], out)


def cmd_eval(args: argparse.Namespace) -> None:
    from vpt import paths
    from vpt.eval.registry import TASK_REGISTRY, NativeTask, task_inputs
    from vpt.eval.run import evaluate, make_lm, task_config, write_results
    from vpt.runs import resolve_run

    cfg = _cfg(args)
    e = cfg["eval"]
    run_id = args.run if args.run in paths.NAMED_RUNS or "/" in args.run else resolve_run(cfg, None, args.run).id
    labels = args.at or [paths.FINAL]
    if args.checkpoint and len(labels) > 1:
        raise UsageError(f"--checkpoint names one model; got --at {' '.join(labels)}")
    device = args.device or e["device"]
    for label in labels:  # a job's checkpoints in turn, each on every task
        checkpoint = Path(args.checkpoint) if args.checkpoint else paths.model_dir(cfg, run_id, label)
        lm = None
        for task in args.task:
            entry = TASK_REGISTRY.get(task)
            if isinstance(entry, NativeTask):  # vision: vpt's own evaluator on the saved backbone
                files = task_inputs(cfg, task)
            else:
                task_cfg, opts = task_config(cfg, task)
                files = [Path(f) for f in task_cfg["dataset_kwargs"]["data_files"].values()]
            for f in files:
                if not Path(f).exists():
                    raise UsageError(f"evaluation data {f} does not exist; run `vpt data download` first")
            if isinstance(entry, NativeTask):
                summary, rows = entry.evaluate(cfg, checkpoint, device)
            else:
                lm = lm or make_lm(checkpoint, e["batch_size"], e["max_length"], device)  # once per checkpoint, on its first language task
                summary, rows = evaluate(lm, task, task_cfg, opts["limit"], opts["num_fewshot"], opts["seed"])
            summary.update(run=run_id, checkpoint=str(checkpoint), checkpoint_label=label)
            out = Path(args.out_dir) if args.out_dir else paths.eval_dir(cfg, run_id, label)
            write_results(out, task, summary, rows)
            shown = {k: v for k, v in summary["metrics"].items() if not isinstance(v, dict)}
            log.info("%s/%s/%s: %s (%d examples, %.2f examples/s) -> %s", run_id, label, task, shown, summary["examples"],
                     summary["throughput"]["examples_per_s"], out / f"{task}.json")


# --------------------------------------------------------------------------- report


def cmd_report(args: argparse.Namespace) -> None:
    from vpt.report.registry import REPORT_REGISTRY

    report = REPORT_REGISTRY.get(args.name)  # unknown: the error lists the registered reports
    written, source = report.write(_cfg(args))
    log.info("%s %s -> %s", args.name, source, ", ".join(map(str, written)))


# --------------------------------------------------------------------------- dvc


def cmd_dvc_push(args: argparse.Namespace) -> None:
    from vpt.dvc import push

    files = push(_cfg(args), args.remote)
    print("tracked and pushed; record the pointers in git with:\n  git add " + " ".join(map(str, files)) + " && git commit -m 'outputs'")


# --------------------------------------------------------------------------- bench


def cmd_bench_decontaminate(args: argparse.Namespace) -> None:
    from vpt.bench.decontaminate import run_benchmark
    from vpt.io import write_json

    result = run_benchmark(n_docs=args.docs, words=args.words, workers=args.workers, n_refs=args.references, seed=args.seed)
    write_json(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "params"}, indent=2))


def cmd_bench_overhead(args: argparse.Namespace) -> None:
    from vpt.bench.overhead import FAST_PATHS, resolve_settings, run_benchmark
    from vpt.io import write_json

    keys = ("learner", "warmup", "window", "repeats", "meta_every", "seq_len", "batch_size", "dtype", "device", "threads",
            "estimator_repeats")
    overrides = {k: getattr(args, k) for k in keys} | ({k: False for k in FAST_PATHS} if args.plain else {})
    s = resolve_settings(_cfg(args).get("bench", {}).get("overhead", {}), overrides)
    if s["window"] < 4 * (s.get("meta_every") or 1):
        log.warning("window %d is not >> meta_every %s: few value updates in the window", s["window"], s.get("meta_every"))
    result = run_benchmark({**s, "config": args.config or [DEFAULT_CONFIG]})
    write_json(args.out, result)
    r, e = result["ratios"], result["estimators"]
    print(f"vpt/ntp tokens/s {r['tokens_per_s']['median']:.3f} [{r['tokens_per_s']['min']:.3f}, {r['tokens_per_s']['max']:.3f}]  "
          f"step time {r['step_s']['median']:.3f}  peak memory {r['peak_mem']['median']:.3f}  "
          f"value-update fraction {result['arms']['vpt']['value_update_frac']['median']:.3f}  "
          f"finite_difference/autograd {e['fd_over_autograd']:.3f}  targets met: {result['target_met']}")


def cmd_bench_trainer(args: argparse.Namespace) -> None:
    import os

    import torch

    from vpt.bench.trainer import run_benchmark, settings_from_config
    from vpt.io import write_json

    if args.warmup < 1 or args.window < 1 or args.repeats < 1:
        raise UsageError("--warmup, --window and --repeats must be at least 1 (the first step carries one-time costs)")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.device(device).type == "cuda" and (torch.cuda.device_count() > 1 or torch.device(device).index not in (None, 0)):
        # transformers.Trainer takes every visible GPU (DataParallel) and ignores a device index
        raise UsageError("the trainer benchmark compares one GPU: run it with CUDA_VISIBLE_DEVICES=<one GPU id> and --device cuda")
    settings = settings_from_config(_cfg(args), args.warmup, args.window, args.threads or os.cpu_count() or 1, device)
    result = run_benchmark(settings, args.repeats)
    write_json(args.out, result)
    shown = {k: result[k] for k in ("target_met", "tokens_per_s", "tokens_per_s_at_median_step", "step_s", "peak_mem_bytes", "final_loss")}
    print(json.dumps(shown, indent=2))


# --------------------------------------------------------------------------- launch


def cmd_launch(args: argparse.Namespace) -> int:
    from vpt.launch import launch

    return launch(args.argv, _cfg(args), args.kind, args.model, args.name or f"{args.kind}-{args.model}", args.launcher)


def cmd_env(args: argparse.Namespace) -> None:
    """One JSON line: the distributed environment this process sees (what a rank of a
    `vpt launch` job gets), and with --init whether the ranks reach each other."""
    import os
    import socket
    from datetime import timedelta

    import torch

    from vpt.launch.job import DIST_VARS

    info: dict[str, Any] = {var.lower(): os.environ.get(var) for var in DIST_VARS}
    info.update({k: int(v) for k, v in info.items() if k != "master_addr" and v is not None})
    info.update(hostname=socket.gethostname(), pid=os.getpid(), torch_threads=torch.get_num_threads(),
                omp_num_threads=os.environ.get("OMP_NUM_THREADS"), cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
                cuda_devices=torch.cuda.device_count())
    if args.init:
        import torch.distributed as dist

        missing = [var for var in DIST_VARS[:4] if var not in os.environ]
        if missing:
            raise UsageError(f"vpt env --init: {', '.join(missing)} not set; run it as a task of a distributed job "
                             "(vpt launch with slurm.resources tasks_per_node > 1) or under torchrun")

        cuda = torch.cuda.is_available()
        device = torch.device("cuda", info["local_rank"] or 0) if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=args.timeout))  # env://
        try:
            ones = torch.ones(1, device=device)
            dist.all_reduce(ones)  # the sum over ranks: world_size when every rank took part
            info.update(backend=dist.get_backend(), all_reduce=int(ones.item()))
        finally:
            dist.destroy_process_group()
    print(json.dumps(info), flush=True)
