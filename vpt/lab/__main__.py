"""python -m vpt.lab {data,base,tune,tuning,run,evaluate,probe,report} --config config/lab.yaml"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from vpt.errors import VptError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vpt.lab")
    p.add_argument("stage", choices=["data", "base", "tune", "tuning", "run", "evaluate", "probe", "report"],
                   help="tune: one tuning trial (--method, --trial); tuning: their summary")
    p.add_argument("--config", default="config/lab.yaml")
    p.add_argument("--method")
    p.add_argument("--seed", type=int)
    p.add_argument("--trial", type=int)
    p.add_argument("--threads", type=int, default=1, help="torch threads (2 cores: two jobs of one thread)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=YAML",
                   help="override lab keys for pilots/tuning, e.g. out_dir=/tmp/x train.lr=3e-3")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    import torch

    torch.set_num_threads(a.threads)
    from vpt.lab.config import load_lab

    try:
        cfg = load_lab(a.config, a.set)
        out = Path(cfg.out_dir)
        if a.stage == "data":
            from vpt.lab.data import prepare

            prepare(cfg, out / "data")
        elif a.stage == "base":
            from vpt.lab.run import pretrain_base

            pretrain_base(cfg, out)
        elif a.stage == "tune":
            from vpt.lab.tune import trial

            if a.method is None or a.trial is None:
                raise VptError("tune needs --method and --trial")
            trial(cfg, out, a.method, a.trial)
        elif a.stage == "tuning":
            from vpt.lab.tune import summarize

            summarize(cfg, out)
        elif a.stage == "run":
            from vpt.lab.run import train_run

            if a.method is None or a.seed is None:
                raise VptError("run needs --method and --seed")
            train_run(cfg, out, a.method, a.seed)
        elif a.stage == "evaluate":  # re-evaluate a trained run's snapshots (evaluation code changed)
            from vpt.lab.run import evaluate_run

            if a.method is None or a.seed is None:
                raise VptError("evaluate needs --method and --seed")
            evaluate_run(cfg, out, a.method, a.seed)
        elif a.stage == "probe":
            from vpt.lab.probe import probe

            probe(cfg, out)
        else:
            from vpt.lab.report import build_report

            build_report(cfg, out)
    except VptError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
