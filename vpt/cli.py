"""`vpt` command line: the parser and the dispatch (the handlers are vpt.commands). Every stage reads the same validated config as the Snakefile and writes
where vpt.paths says, so running a stage by hand and through Snakemake give the same files.

  vpt config validate|show     check a config against the schema / print it with defaults
  vpt data synth|download|decontaminate|tokenizer|pack
  vpt bench decontaminate      throughput of the decontamination stage
  vpt bench trainer            tokens/s of our ntp loop against transformers.Trainer
  vpt bench memory|precision|gpu   peak memory vs micro-batch, bf16 meta-gradients, one GPU session (vpt.bench.commands)
  vpt lab <stage>              the CPU lab's stages (vpt.lab.commands)
  vpt launch / vpt env         run a stage where the config says / show a job rank's distributed environment
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from vpt.commands import (DEFAULT_CONFIG, cmd_bench_decontaminate, cmd_bench_trainer, cmd_config_show,
                          cmd_config_validate, cmd_decontaminate, cmd_download, cmd_dvc_push, cmd_env, cmd_eval, cmd_launch, cmd_pack,
                          cmd_probe, cmd_report, cmd_synth, cmd_tokenizer, cmd_train)
from vpt.errors import VptError
from vpt.preempt import EXIT_PREEMPTED, Preempted, stop_signals

log = logging.getLogger("vpt")


def _add_launch(top: Any) -> None:
    p = _sub(top, "launch", cmd_launch, "run a stage inline, as a local submitit job or on SLURM (launcher:)",
             "Run `vpt ARGV...` (everything after `--`) with the backend of the config's `launcher:` key:\n"
             "  inline  in this process (the default; what `snakemake --cores N all` does)\n"
             "  local   a submitit LocalExecutor job: a subprocess with a time limit, requeued on USR2\n"
             "  slurm   an sbatch job through submitit (`snakemake --profile slurm all`): this process waits\n"
             "          on the login node, prints the job id and log path, streams the job's log to stdout,\n"
             "          and fails with the job id and the log's last lines if the job fails or vanishes\n"
             "Resources come from `slurm.resources`, merged default <- KIND <- KIND/MODEL (partition, gpus,\n"
             "cpus, mem_gb, time_min, signal_delay_s, nodes, tasks_per_node, extra sbatch options).\n"
             "nodes x tasks_per_node > 1: one job of that many tasks (local or slurm), one per GPU, each\n"
             "stage with the torch.distributed environment (see `vpt env`). On a time-out or preemption\n"
             "`vpt train` checkpoints at a step boundary, exits 75, the job is requeued (up to\n"
             "slurm.max_requeues times) and resumes from that checkpoint. Logs: <slurm.folder>/NAME/<job id>/.\n"
             "Example:\n"
             "  vpt launch --kind train --model qwen1.5-4b --name train-vpt --config C -- train --method vpt --config C")
    _add_config(p)
    from vpt.launch import BACKENDS, KINDS  # light: the module imports submitit only when submitting

    p.add_argument("--kind", required=True, choices=KINDS, help="which resources apply")
    p.add_argument("--model", default="-", help="model key for KIND/MODEL resources ('-': none)")
    p.add_argument("--name", help="job name, also the log folder (default: KIND-MODEL)")
    p.add_argument("--launcher", choices=BACKENDS, help="override the config's `launcher:`")
    p.add_argument("argv", nargs="*", metavar="-- ARGV", help="the vpt command to run, after `--`")


# --------------------------------------------------------------------------- parser


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", "-c", action="append", metavar="YAML",
        help=f"config file (repeatable; later files override earlier keys). Default: {DEFAULT_CONFIG}",
    )


def _sub(subparsers: Any, name: str, func: Callable[[argparse.Namespace], None], help: str, description: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(name, help=help, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func)
    return p


def build_parser() -> argparse.ArgumentParser:
    # the registries name the methods, tasks and reports (choices and help); light imports
    from vpt.eval.registry import TASK_REGISTRY, tasks_help
    from vpt.report.registry import REPORT_REGISTRY, reports_help
    from vpt.train.methods import LANGUAGE_METHODS, VISION_METHODS, methods_help

    parser = argparse.ArgumentParser(
        prog="vpt",
        description=(
            "V-Pretraining: value-based pre-training with downstream feedback.\n\n"
            "Stages run by the Snakemake workflow (`snakemake --cores 2 all`), also usable by hand.\n"
            "Every stage reads the validated config and writes where the workflow expects it."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cfgp = top.add_parser("config", help="validate or print a configuration")
    cfgs = cfgp.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
    for p in (
        _sub(cfgs, "validate", cmd_config_validate, "check config files against workflow/schemas/config.schema.yaml",
             "Validate config files against the schema and cross-references; exit 2 with the offending key on error."),
        _sub(cfgs, "show", cmd_config_show, "print the merged config with schema defaults filled in",
             "Print the configuration exactly as the stages see it (merged files + schema defaults)."),
    ):
        _add_config(p)

    datap = top.add_parser("data", help="data stages: synth, download, decontaminate, tokenizer, pack")
    data = datap.add_subparsers(dest="subcommand", required=True, metavar="STAGE")

    p = _sub(data, "synth", cmd_synth, "generate a seeded corpus of word problems, rendered scenes or landmarks",
             "Generate the `synth.<name>` target of the config. Without `kind`: grade-school word problems from several\n"
             "problem families with step-by-step solutions, in the NuminaMath-CoT schema\n"
             "(problem, solution, source, messages) -> <data_dir>/synth/<name>/train.jsonl. `kind: scenes`: rendered\n"
             "images with class maps, depth and scene categories in a hub schema (ade20k, nyuv2, imagenet)\n"
             "-> <data_dir>/synth/<name>/<split>.parquet. `kind: landmarks`: multi-view landmark renders in the\n"
             "revisitop layout -> <data_dir>/synth/<name>/{jpg/, gnd_<name>.pkl}. Deterministic for a seed.")
    _add_config(p)
    p.add_argument("name", nargs="?", default="corpus", help="key under `synth:` (default: corpus)")
    p.add_argument("--out", help="output file (corpus JSONL) or directory (vision targets) instead of the workflow path")

    p = _sub(data, "download", cmd_download, "fetch one source through datasets.load_dataset into normalized parquet",
             "Fetch dataset NAME (a key of `datasets:`) with datasets.load_dataset, from the hub by id and\n"
             "pinned revision or from local json/csv/parquet files, normalize its columns, and write\n"
             "<data_dir>/raw/<NAME>/<split>.parquet plus manifest.json (rows, columns, sha256, source, revision).")
    _add_config(p)
    p.add_argument("name", help="a key of `datasets:` in the config")
    p.add_argument("--out", help="output directory instead of the workflow path")

    p = _sub(data, "decontaminate", cmd_decontaminate, "remove near-duplicates of reference test sets from the corpus",
             "MinHash LSH (num_perm, ngram, lsh_threshold) proposes candidates; exact word n-gram Jaccard\n"
             "(>= threshold) confirms them. Writes <data_dir>/decontaminated/<corpus>/<split>.parquet and\n"
             "report.json (docs in/out, each removed doc with its matched reference id and score).")
    _add_config(p)
    p.add_argument("--out", help="output directory instead of the workflow path")

    p = _sub(data, "tokenizer", cmd_tokenizer, "train (or fetch) the tokenizer and save it in HF format",
             "Either train a byte-level BPE on the corpus (`tokenizer.train`) or load the learner's own\n"
             "tokenizer by hub id and revision (`tokenizer.pretrained`), and save it with save_pretrained\n"
             "to <data_dir>/tokenizer/<name>/, loadable with AutoTokenizer.from_pretrained.")
    _add_config(p)
    p.add_argument("--out", help="output directory instead of the workflow path")

    p = _sub(data, "pack", cmd_pack, "format, tokenize and pack the corpus into fixed-length sequences",
             "Format each example as 'Question: {problem}\\n Answer: {solution}' + EOS, label only answer\n"
             "tokens (-100 elsewhere), shuffle through a seeded streaming buffer, and pack into rows of\n"
             "seq_len. Writes memory-mappable input_ids.bin / labels.bin and meta.json to\n"
             "<data_dir>/packed/<corpus>/<variant>/.")
    _add_config(p)
    p.add_argument("--variant", default="decontaminated", help="raw or decontaminated (must be in pack.variants)")
    p.add_argument("--out", help="output directory instead of the workflow path")

    p = _sub(top, "train", cmd_train, "continued pretraining with one method (or --base: the tiny base model)",
             "Train the learner on the packed corpus with one of the compute-matched methods:\n"
             f"{methods_help()}\n"
             "A run is a point of the grid (vpt.grid), named by its id <model>/<method>/lr<lr>_s<seed>[_fb<n>]_<corpus>,\n"
             "e.g. base/vpt/lr0.0003_s0_fb1024_decontaminated; --method M alone trains the default run of M\n"
             "(the config's learner, train.lr, train.seed, train.feedback.n). Checkpoints every\n"
             "train.checkpoint_every steps under results/runs/<id>/checkpoints/ and resumes from the latest\n"
             "automatically; per-step metrics in metrics.jsonl; the model in final/; snapshots at\n"
             "train.snapshot_steps (the grid's eval_steps) in snapshots/.\n"
             "--vision-base: DINO-pretrain the embedded tiny ViT (vision.base_model) from scratch on the images of\n"
             "vision.base_model.data (labels unused), with vision.ssl's multi-crop views and the same trainer, into\n"
             "results/models/vision_base (checkpoints/, final/: the EMA teacher's backbone, vpt.vision.backbone format).\n"
             "--vision METHOD: continued DINO SSL of vision.learner on vision.data's images with vision.train's settings,\n"
             "the same for every method; vpt/random_feedback mask the global crops by the designer (vision.designer),\n"
             "trained on the value of the ADE20K/NYUv2 feedback pools (vision.feedback); random_masks by random masks.\n"
             "Into results/runs/<its run id> (or --run-dir), e.g. vision_base/vpt/lr0.0002_s0_seg1_depth1; mask\n"
             "pictures in masks/. --run with a vision grid run id (vision.grid) trains that run: its learner, lr,\n"
             "seed, g_down weights (w_seg, w_depth) and designer variant (vision.designers).")
    _add_config(p)
    p.add_argument("--run", help="a grid run id, language or vision (see above)")
    p.add_argument("--method", default="vpt", choices=LANGUAGE_METHODS,
                   help="without --run: train this method's default run (default: vpt)")
    base = p.add_mutually_exclusive_group()
    base.add_argument("--base", action="store_true", help="pretrain the embedded tiny base model from scratch (ntp)")
    base.add_argument("--vision-base", action="store_true",
                      help="pretrain the embedded tiny ViT from scratch (dino; vision.base_model, vision.ssl)")
    base.add_argument("--vision", metavar="METHOD", choices=VISION_METHODS,
                      help=f"continued DINO SSL of vision.learner with a vision method ({', '.join(VISION_METHODS)})")
    p.add_argument("--run-dir", help="run directory instead of the workflow path")
    p.add_argument("--steps", type=int, help="override train.steps")
    p.add_argument("--stop-at", type=int, help="checkpoint and stop after this step (resume later by rerunning)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")

    p = _sub(top, "probe", cmd_probe, "does V predict the realized one-step improvement? (paper A.6)",
             "Over N probes: predicted = eta * g_probe^T g_pre (g_pre from an unlabeled batch under the\n"
             "method's own targets, g_probe from a held-out feedback batch, both over the alignment scope)\n"
             "vs realized = drop of the held-out batch's loss after theta_S <- theta_S - eta * g_pre.\n"
             "Writes the pairs, Pearson r and its bootstrap 95% CI to results/probe/<method>.json.")
    _add_config(p)
    p.add_argument("--method", default="vpt", choices=LANGUAGE_METHODS)
    p.add_argument("--checkpoint", help="a saved model directory (default: the method's <run>/final)")
    p.add_argument("--out", help="output JSON instead of the workflow path")

    p = _sub(top, "eval", cmd_eval, "evaluate a saved model (language: lm-evaluation-harness; vision: frozen-backbone probes)",
             "Evaluate a run's saved model (<run>/final: save_pretrained format, PEFT adapters too; or a\n"
             "saved ViT, e.g. --run vision_base) on:\n"
             f"{tasks_help()}\n"
             "Data comes from the download outputs (no hub access). Writes\n"
             "results/eval/<run id>/<final|step_N>/<task>.json (metrics, examples/s) and <task>.jsonl (one row per example).")
    _add_config(p)
    p.add_argument("--run", default="vpt", help="a grid run id, a method name (its default run), 'base' or 'vision_base' (default: vpt)")
    p.add_argument("--at", action="extend", nargs="+", metavar="LABEL",
                   help="checkpoint labels: final (default) and/or step_NNNNNNN (snapshots); each is evaluated on every --task")
    p.add_argument("--task", action="extend", nargs="+", choices=TASK_REGISTRY.names(), required=True,
                   help="one or more (the libraries load once for all of them)")
    p.add_argument("--checkpoint", help="a saved model directory instead of the run's final/")
    p.add_argument("--out-dir", help="output directory instead of results/eval/<run id>/<checkpoint>/")
    p.add_argument("--device", help="cpu, cuda, ... (default: eval.device)")

    p = _sub(top, "report", cmd_report, "build one table or figure from the evaluation results",
             "Aggregate the grid's evaluation results (results/eval/...) with pandas into the paper's\n"
             "tables (results/tables/<name>.{md,csv,tex}) and figures (results/figures/<name>.{png,pdf}):\n"
             f"{reports_help()}\n"
             "Cells whose runs are not evaluated yet are left out, never filled in.")
    _add_config(p)
    p.add_argument("name", help=", ".join(REPORT_REGISTRY.names()))

    dvcp = top.add_parser("dvc", help="version datasets, checkpoints and results with DVC")
    dvc = dvcp.add_subparsers(dest="subcommand", required=True, metavar="ACTION")
    p = _sub(dvc, "push", cmd_dvc_push, "dvc add every output stage directory and push it to the remote",
             "Track each existing stage directory (data: synth raw decontaminated tokenizer packed;\n"
             "results: models runs eval probe bench tables figures) with one .dvc pointer, push the files to\n"
             "the DVC remote (default: the `local` remote of .dvc/config, a directory next to the\n"
             "repository), and print the git command that records the pointers. In a fresh clone:\n"
             "  dvc pull && snakemake --touch --cores 1 all\n"
             "restores everything, after which `snakemake -n all` has nothing to do.")
    _add_config(p)
    p.add_argument("--remote", help="a DVC remote name (dvc remote add ...) instead of the default")

    benchp = top.add_parser("bench", help="benchmarks (results under results/bench/)")
    bench = benchp.add_subparsers(dest="subcommand", required=True, metavar="BENCHMARK")
    p = _sub(bench, "decontaminate", cmd_bench_decontaminate, "docs/s of decontamination on synthetic long documents",
             "Decontaminate N generated documents of W words each against GSM8K-sized references and\n"
             "report documents per second (MinHash + LSH query + exact confirmation).")
    p.add_argument("--docs", type=int, default=5000)
    p.add_argument("--words", type=int, default=300)
    p.add_argument("--references", type=int, default=1319)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/bench/decontaminate.json")
    from vpt.bench.commands import cmd_bench_overhead_any  # language or --vision

    p = _sub(bench, "overhead", cmd_bench_overhead_any,
             "Table 3: V-Pretraining vs its baseline (ntp; --vision: dino), throughput, step time, memory",
             "The paper's overhead protocol (appendix A.5), side by side in one invocation.\n"
             "ntp and vpt run the real training step on the same learner, batches and settings, each\n"
             "in a fresh process, alternating ntp vpt vpt ntp ... over --repeats. Per run: --warmup steps\n"
             "excluded, then a window of --window steps (>> meta_every) timed with synchronization:\n"
             "tokens/s, mean step time, peak memory in the window (CUDA peak allocated on GPU, peak RSS\n"
             "on CPU), and the fraction of the window inside the value update (CUDA events on GPU).\n"
             "Ratios vpt/ntp are taken within each repeat; the JSON reports median, min and max.\n"
             "Then autograd vs finite_difference meta-gradients on one batch: cost ratio and agreement.\n"
             "Defaults come from the config's bench.overhead section; flags override them.\n"
             "GPU setting of the issue: --learner qwen1.5-0.5b --seq-len 1024 --dtype bfloat16 --meta-every 8\n\n"
             "--vision: the same protocol for the vision methods, dino vs vpt on the vision trainer\n"
             "(vision.train, vision.designer, vision.feedback): images/s, step time, peak memory, the value\n"
             "update's fraction and its parts (feedback gradient, estimate, meta-SSL batch), the designer's\n"
             "mask fraction and the multi-crop fraction; ratios vpt/dino with targets images/s >= 0.85 and\n"
             "peak memory <= 1.10. Learners: config (vision.learner; vision_base without its final/: a random\n"
             "init of its architecture, said in the JSON) or vit-b (DINOv3 ViT-B/16 shape, random init, crops\n"
             "2 x 224 + 6 x 96, out_dim 8192, the paper's U-Net designer). --synthetic-data: random images\n"
             "and pools of the same shapes instead of the downloads (without them the run is refused).\n"
             "Defaults from bench.overhead.vision; writes results/bench/overhead_vision.json\n"
             "and prints Table 3's layout (images/s). GPU: --vision --learner vit-b --synthetic-data\n"
             "--dtype bfloat16 --batch-size 64 --meta-batch-size 64 --meta-every 4")
    _add_config(p)
    p.add_argument("--vision", action="store_true", help="the vision methods: dino vs vpt (see above)")
    p.add_argument("--learner", choices=["config", "qwen1.5-0.5b", "vit-b"],
                   help="config: the config's learner (language) or vision.learner (--vision); qwen1.5-0.5b (language) / "
                        "vit-b (--vision): random init in that shape")
    p.add_argument("--warmup", type=int, help="steps excluded before the window (default 5; --vision 2)")
    p.add_argument("--window", type=int, help="timed steps per run (default 32)")
    p.add_argument("--repeats", type=int, help="runs per arm, alternating (default 3; --vision 2)")
    p.add_argument("--meta-every", dest="meta_every", type=int, help="value update every N steps (default: the config's)")
    p.add_argument("--seq-len", dest="seq_len", type=int, help="re-cut the packed corpus to rows of this length (language)")
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--meta-batch-size", dest="meta_batch_size", type=int, help="--vision: images of the meta-SSL batch")
    p.add_argument("--estimator", choices=["autograd", "jvp", "finite_difference"], help="--vision: the meta-gradient estimator")
    p.add_argument("--synthetic-data", dest="synthetic", action="store_true", default=None,
                   help="--vision: random images and feedback pools in a temporary directory instead of the downloads")
    p.add_argument("--dtype", choices=["auto", "float32", "bfloat16"])
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    p.add_argument("--estimator-repeats", dest="estimator_repeats", type=int,
                   help="timed rounds of the estimator comparison (default 5; language)")
    p.add_argument("--plain", action="store_true",
                   help="turn the value fast paths off (fused difference, scope boundary, scope-only feedback graph; language)")
    p.add_argument("--out", help="default: results/bench/overhead.json (--vision: results/bench/overhead_vision.json)")

    p = _sub(bench, "trainer", cmd_bench_trainer, "tokens/s of our ntp loop against transformers.Trainer, side by side",
             "Train the config's default ntp run (learner, batch, lr, AdamW betas and weight decay,\n"
             "warmup-cosine schedule, grad clip, dtype) with two loops on the same weights and the same\n"
             "packed rows in the same order:\n"
             "  vpt_ntp     our Trainer.train_step (vpt.train.loop), without metrics file or checkpoints\n"
             "  hf_trainer  transformers.Trainer.train(): sequential sampler over those rows, no logging,\n"
             "              saving or evaluation, our lr schedule and every-parameter weight decay\n"
             "Protocol: each run is a fresh spawned process; W warm-up steps, then a timed window of T\n"
             "steps (wall clock from the end of step W to the end of step W+T); tokens/s =\n"
             "T * batch * seq_len / window. Peak memory (CUDA peak allocated, or peak RSS on CPU) is\n"
             "reset at the window start. Arms alternate ABBA over R repeats; ratios ours/HF are formed\n"
             "within a repeat (median, min, max). fp32 on CPU, bf16 autocast on CUDA. Final losses of\n"
             "both arms are reported: equal data and optimizer give (nearly) equal losses.\n"
             "Target: ours >= HF (target_met: median tokens/s ratio >= 1.0).")
    _add_config(p)
    p.add_argument("--warmup", type=int, default=3, metavar="W", help="warm-up steps excluded from timing (default: 3)")
    p.add_argument("--window", type=int, default=20, metavar="T", help="timed steps (default: 20)")
    p.add_argument("--repeats", type=int, default=5, metavar="R", help="runs per arm (default: 5; a shared machine is noisy)")
    p.add_argument("--threads", type=int, help="torch threads in both arms (default: os.cpu_count())")
    p.add_argument("--device", help="cpu or cuda (one GPU: choose it with CUDA_VISIBLE_DEVICES; default: cuda when available)")
    p.add_argument("--out", default="results/bench/trainer.json")
    from vpt.bench.commands import add_scale_benchmarks  # memory, precision, gpu

    add_scale_benchmarks(bench, _sub)

    _add_launch(top)
    p = _sub(top, "env", cmd_env, "print the distributed environment this process sees (debug a multi-task launch)",
             "Print one JSON line: rank, world_size, local_rank, local_world_size, master_addr, master_port\n"
             "(null outside a distributed job), hostname, pid, torch threads, OMP_NUM_THREADS,\n"
             "CUDA_VISIBLE_DEVICES and the CUDA devices torch sees. --init also joins the process group\n"
             "(env://; nccl with CUDA, else gloo) and all-reduces a 1: all_reduce equals world_size when\n"
             "every rank reached MASTER_ADDR:MASTER_PORT. Example, 2 local ranks:\n"
             "  vpt launch --launcher local --kind probe --config C -- env --init   (with tasks_per_node: 2)")
    p.add_argument("--init", action="store_true", help="join the process group and all-reduce across the ranks")
    p.add_argument("--timeout", type=float, default=120, help="seconds to wait for the other ranks with --init (default 120)")
    from vpt.lab.commands import add_lab_commands  # `vpt lab <stage>`: the lab's stages
    add_lab_commands(top)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    # `vpt train` stops at a step boundary with a checkpoint on SIGUSR2/SIGTERM (a scheduler's
    # time-out or preemption) and exits EXIT_PREEMPTED; vpt.launch then has the job requeued.
    stopping = stop_signals() if args.command == "train" else contextlib.nullcontext()
    try:
        with stopping:
            code = args.func(args)
    except VptError as e:
        print(f"vpt: error: {e}", file=sys.stderr)
        return 2
    except Preempted as e:  # a scheduler's stop signal: the run is resumable, not failed
        print(f"vpt: {e}", file=sys.stderr)
        return EXIT_PREEMPTED
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
