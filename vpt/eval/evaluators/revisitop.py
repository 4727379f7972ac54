"""Revisited Oxford 5k (roxford5k) and Paris 6k (rparis6k) retrieval: the frozen backbone's
mean-pooled patch tokens, L2-normalised, ranked by cosine similarity; mAP under the Easy, Medium
and Hard protocols (vpt.vision.eval.retrieval).

Every image is resized with its long side eval.<task>.resolution and both sides rounded to the
patch grid (aspect kept; images of one shape are batched together); a query is first cropped to
its box bbx [x0, y0, x1, y1] (pixels of the full query image, widened to whole pixels)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vpt.eval.registry import TASK_REGISTRY, Config, NativeTask, Row


def _crop(image: Any, bbx: Any) -> Any:
    import math

    h, w = image.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in bbx)
    x0, y0 = max(0, math.floor(x0)), max(0, math.floor(y0))
    x1, y1 = min(w, math.ceil(x1)), min(h, math.ceil(y1))
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"empty query box {list(bbx)} on a {h} x {w} image")
    return image[y0:y1, x0:x1]


def _evaluate_on(task: str, cfg: Config, model_dir: Path, device: str) -> tuple[dict[str, Any], list[Row]]:
    import numpy as np
    import torch.nn.functional as F

    from vpt.vision.eval.features import Evaluation, decoded, long_side_size, read_split, resize
    from vpt.vision.eval.retrieval import mean_aps, protocol_aps
    from vpt.vision.images import decode_rgb

    s = cfg["eval"][task]
    run = Evaluation(task, s, model_dir, device)

    def views(images: Any) -> Any:
        for im in images:
            yield resize(im, long_side_size(*im.shape[:2], s["resolution"], run.patch))

    def crop(data: bytes, bbx: Any) -> Any:
        return _crop(decode_rgb(data), bbx)

    db, db_path = read_split(cfg, s["dataset"], s["database_split"])
    q, q_path = read_split(cfg, s["dataset"], s["query_split"])
    d = F.normalize(run.features(views(decoded(db, "image", db_path, decode_rgb)), ("mean_patch",), len(db))["mean_patch"], dim=1)
    qd = F.normalize(run.features(views(decoded(q, "image", q_path, crop, "bbx")), ("mean_patch",), len(q))["mean_patch"], dim=1)
    sims = (qd @ d.T).numpy()  # (Q, N) cosine similarities
    rows, per_query = [], []
    for i in range(len(q)):
        ranking = np.argsort(-sims[i], kind="stable")
        aps = protocol_aps(ranking, {k: [int(v) for v in q[k].iat[i]] for k in ("easy", "hard", "junk")})
        per_query.append(aps)
        rows.append({"id": q["id"].iat[i], "name": q["name"].iat[i],
                     **{f"ap_{k}": (None if np.isnan(v) else float(v)) for k, v in aps.items()}})
    return run.summary(len(rows), {**mean_aps(per_query), "database": len(db)}), rows


def _register(task: str, what: str) -> None:
    def needs(e: Config) -> list[tuple[str, str, str]]:
        s = e[task]
        return [(f"eval.{task}", s["dataset"], s["database_split"]), (f"eval.{task}", s["dataset"], s["query_split"])]

    def evaluate(cfg: Config, model_dir: Path, device: str) -> tuple[dict[str, Any], list[Row]]:
        return _evaluate_on(task, cfg, model_dir, device)

    TASK_REGISTRY.register(task, NativeTask(
        f"{what} retrieval, mean-pooled patch tokens, cosine; mAP Easy / Medium / Hard", (task,), needs, evaluate))


_register("roxford5k", "Revisited Oxford 5k")
_register("rparis6k", "Revisited Paris 6k")
