"""`vpt lab <stage>`: the lab's stages as subcommands of the main CLI (vpt.cli calls
add_lab_commands). Every stage reads the lab preset through vpt.config.load_config (several -c
files layer, later keys win, as for every `vpt` command) and writes where vpt.lab.paths says.

  vpt lab data|base|tuning|probe|report [-c config/lab.yaml ...]
  vpt lab tune --method M --trial I      one tuning trial
  vpt lab run --method M --seed S        one continued-pretraining run, then its evaluation
  vpt lab evaluate --method M --seed S   re-evaluate a trained run's snapshots
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vpt.lab.config import DEFAULT_CONFIG
from vpt.train.config import METHODS

# stage -> (help, the options it needs)
STAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "data": ("generate the splits, train the tokenizer, pack the corpus", ()),
    "base": ("pretrain the base learner from scratch with ntp", ()),
    "tune": ("one tuning trial on the validation split", ("method", "trial")),
    "tuning": ("the tuning summary: every trial, the best per method, the pins checked", ()),
    "run": ("continued pretraining of one method and seed, then its evaluation", ("method", "seed")),
    "evaluate": ("re-evaluate a trained run's snapshots (after an evaluation change)", ("method", "seed")),
    "probe": ("the A.6 probe on lab.probe_runs' learner", ()),
    "report": ("the report: curves, paired tests, probe, value signal, alpha, goal check", ()),
}


def add_lab_commands(subparsers: Any) -> None:
    """Register `vpt lab <stage>` on the main CLI's subparsers."""
    lab = subparsers.add_parser("lab", help="the CPU lab (vpt.lab): " + ", ".join(STAGES),
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    stages = lab.add_subparsers(dest="subcommand", required=True, metavar="STAGE")
    for name, (help_, needs) in STAGES.items():
        p = stages.add_parser(name, help=help_, description=help_)
        p.add_argument("--config", "-c", action="append", metavar="YAML",
                       help=f"lab preset (repeatable; later files override earlier keys). Default: {DEFAULT_CONFIG}")
        if "method" in needs:
            p.add_argument("--method", required=True, choices=METHODS)
        if "seed" in needs:
            p.add_argument("--seed", type=int, required=True)
        if "trial" in needs:
            p.add_argument("--trial", type=int, required=True, help="index into lab.tuning.trials.<method>")
        p.add_argument("--threads", type=int, default=1, help="torch threads (2 cores: two jobs of one thread)")
        p.set_defaults(func=run_stage)


def run_stage(args: argparse.Namespace) -> None:
    """Run one stage; the heavy modules are imported only for the stage that needs them."""
    import torch

    from vpt.lab import paths
    from vpt.lab.config import load_lab

    torch.set_num_threads(args.threads)
    cfg = load_lab(args.config or [DEFAULT_CONFIG])
    out, stage = Path(cfg.out_dir), args.subcommand
    if stage == "data":
        from vpt.lab.data import prepare

        prepare(cfg, paths.data_dir(out))
    elif stage == "base":
        from vpt.lab.run import pretrain_base

        pretrain_base(cfg, out)
    elif stage == "tune":
        from vpt.lab.tune import trial

        trial(cfg, out, args.method, args.trial)
    elif stage == "tuning":
        from vpt.lab.tune import summarize

        summarize(cfg, out)
    elif stage == "run":
        from vpt.lab.run import train_run

        train_run(cfg, out, args.method, args.seed)
    elif stage == "evaluate":
        from vpt.lab.run import evaluate_run

        evaluate_run(cfg, out, args.method, args.seed)
    elif stage == "probe":
        from vpt.lab.probe import probe

        probe(cfg, out)
    else:
        from vpt.lab.report import build_report

        build_report(cfg, out)
