"""One training run of tests/test_train.py's tiny world, as a script: run under torchrun for
several ranks (tests/test_fsdp.py), or plainly for one process.

    python tests/fsdp_run.py SPEC_JSON    SPEC: {"root", "run", "method", "stop_at", "overrides"}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))

from conftest import SHIPPED  # noqa: E402
from test_train import make  # noqa: E402

from vpt.dist import close_world  # noqa: E402


def main(spec: dict) -> None:
    torch.set_num_threads(1)
    gsm = pd.read_json(SHIPPED / "gsm8k/train.jsonl", lines=True).head(64)
    gsm.insert(0, "id", [f"gsm8k/train/{i}" for i in range(len(gsm))])
    world = {"root": Path(spec["root"]), "feedback": gsm}
    try:
        t = make(world, spec["run"], spec["method"], **spec.get("overrides", {}))
        t.run(stop_at=spec.get("stop_at"))
    finally:
        close_world()


if __name__ == "__main__":
    main(json.loads(Path(sys.argv[1]).read_text()))
