"""The A.6 probe on the lab's vpt learner, by the project's run_probe, at several step sizes.

Predicted: eta * g_probe^T g_pre with g_probe from a held-out target-family batch (the paper's
probe); realized: that batch's loss drop after theta_S -= eta * g_pre. Also reported: the
stricter prediction from a feedback-subset batch (what the designer optimizes). A realistic eta
is the learner's per-step parameter change over ||g_pre||; several are measured because the
first-order agreement is near-exact at tiny eta by construction and degrades as eta grows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vpt.io import write_json
from vpt.lab import paths
from vpt.lab.config import LabConfig
from vpt.lab.data import feedback_table, read_split
from vpt.lab.run import lab_tokenizer, train_config
from vpt.models.designer import DesignerConfig, TaskDesigner
from vpt.models.learner import load_learner
from vpt.train.config import VALUE_METHODS
from vpt.language.data import FeedbackSet, PackedBatches
from vpt.language.probe import run_probe
from vpt.value.scope import scope_parameters


def probe(cfg: LabConfig, out: Path) -> dict[str, Any]:
    pr = cfg.probe_runs
    method, seed = pr["method"], int(pr["seed"])
    tcfg = train_config(cfg, method, seed)
    final = paths.run_model(out, method, seed)
    model = load_learner(str(final), None, torch.float32, "sdpa")
    data_dir = paths.data_dir(out)
    tok = lab_tokenizer(data_dir)
    designer = None
    if method in VALUE_METHODS:
        designer = TaskDesigner(DesignerConfig.for_learner(model, tcfg.designer))
        designer.load_state_dict(torch.load(final / "designer.pt", map_location="cpu"))
    fb = tcfg.feedback
    feedback_set = FeedbackSet(feedback_table(read_split(data_dir, "feedback"), "fb"), tok, fb.n, fb.seed, fb.max_len)
    probe_df = read_split(data_dir, "probe")
    probe_set = FeedbackSet(feedback_table(probe_df, "probe"), tok, len(probe_df), 0, fb.max_len)
    results = []
    for eta in pr["etas"]:
        torch.manual_seed(seed)
        data = PackedBatches(paths.packed_dir(data_dir), int(pr["batch_size"]), seed=seed + 1000)
        r = run_probe(model, scope_parameters(model, tcfg.value.scope), data, probe_set, feedback_set, int(pr["probes"]),
                      float(eta), int(pr["batch_size"]), method, designer, tcfg.designer.K, tcfg.alpha_fixed, seed=seed)
        results.append(r)
    result = {"method": method, "seed": seed, "scope": tcfg.value.scope, "checkpoint": str(final), "by_eta": results}
    write_json(paths.probe_result(out), result)
    return result
