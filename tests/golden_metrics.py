"""Per-step metrics of tests/test_train.py's tiny world (every method, float32 and float64, 30
steps), to show what a change does to the numbers: record them on two checkouts, then diff.

    PYTHONPATH=<checkout> python tests/golden_metrics.py record <checkout> <out.json>
    python tests/golden_metrics.py diff <before.json> <after.json>
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

METHODS = ("ntp", "vpt", "random_feedback", "uniform_smoothing", "self_distill")
TIMING = ("seconds", "tokens_per_s", "meta_seconds")
KEYS = ("loss", "ce", "grad_norm", "value", "alpha_mean")


def record(checkout: Path, out: Path) -> None:
    import pandas as pd
    import torch

    sys.path.insert(0, str(checkout / "tests"))
    from conftest import SHIPPED
    from test_train import make

    from vpt.data.pack import PackConfig, pack
    from vpt.data.synth import SynthConfig, generate
    from vpt.data.tokenizer import corpus_texts, load_tokenizer, train_bpe

    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="golden-"))
    corpus = pd.DataFrame(generate(SynthConfig(n_docs=400, seed=0)))
    train_bpe(corpus_texts(corpus["problem"], corpus["solution"]), 400, 2, root / "tok")
    pack(corpus, load_tokenizer(root / "tok"), PackConfig(seq_len=48, shuffle_buffer=50, seed=0), root / "packed", "t", "s")
    gsm = pd.read_json(SHIPPED / "gsm8k/train.jsonl", lines=True).head(64)
    gsm.insert(0, "id", [f"gsm8k/train/{i}" for i in range(len(gsm))])
    world, rows = {"root": root, "feedback": gsm}, {}
    for method in METHODS:
        for dtype in ("float32", "float64"):
            t = make(world, f"{method}-{dtype}", method, steps=30, dtype=dtype)
            t.run()
            rows[f"{method}/{dtype}"] = [{k: v for k, v in r.items() if k not in TIMING} for r in t.metrics.rows]
    out.write_text(json.dumps(rows))


def diff(before: Path, after: Path) -> None:
    a, b = json.loads(before.read_text()), json.loads(after.read_text())
    for run in a:
        worst: dict[str, float] = {}
        for x, y in zip(a[run], b[run], strict=True):
            for key in KEYS:
                if key in x:
                    worst[key] = max(worst.get(key, 0.0), abs(x[key] - y[key]) / max(abs(x[key]), 1e-30))
        print(f"{run:28s} max relative difference over {len(a[run])} steps: "
              + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))


if __name__ == "__main__":
    if sys.argv[1] == "record":
        record(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        diff(Path(sys.argv[2]), Path(sys.argv[3]))
