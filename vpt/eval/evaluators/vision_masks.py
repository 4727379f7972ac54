"""Where a run's masks keep the image: mask statistics per class and per region on a labeled split.

The final designer of a `vpt` / `random_feedback` run (designer.pt beside the backbone), or the
random masks of a `random_masks` run (its keep ratio and smoothness, seeded per image), applied to
each image of eval.vision_masks.split resized to the run's global crop size (the size the designer
sees in training). A method without masks (dino) has nothing to measure: an error names the run.

Per image: the mean keep and its spatial std. Over the split: the mean keep of every class's
pixels (raw label ids, 0 = void included: the sky of outdoor scenes), of each third of the
image from top to bottom, of the centre (the inner half box) against the border, and each
class's pixel count, so a report can say what the masks hide and what they keep.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vpt.errors import VptError
from vpt.eval.registry import TASK_REGISTRY, Config, NativeTask, Row

REGIONS = ("top", "middle", "bottom", "centre", "border")
EVAL_DRAW = 2**31 - 1  # the random masks' "step" here: apart from every training step's draws


def _needs(e: Config) -> list[tuple[str, str, str]]:
    s = e["vision_masks"]
    return [("eval.vision_masks", s["dataset"], s["split"])]


def region_masks(size: int) -> dict[str, Any]:
    """(size, size) boolean masks of REGIONS: thirds top to bottom; the centre box of half the side."""
    import numpy as np

    rows = np.arange(size)[:, None].repeat(size, 1)
    cols = rows.T
    lo, hi = size // 4, size - size // 4
    centre = (rows >= lo) & (rows < hi) & (cols >= lo) & (cols < hi)
    third = np.minimum(rows * 3 // size, 2)
    return {"top": third == 0, "middle": third == 1, "bottom": third == 2, "centre": centre, "border": ~centre}


def _masker(model_dir: Path, run: dict[str, Any], size: int) -> Any:
    """images (B, 3, S, S) normalised, row indices -> masks (B, 1, S, S)."""
    import torch

    from vpt.vision.masks import MaskDesignerConfig, build_mask_designer, random_masks
    from vpt.vision.views import MASK_STREAM, image_seed

    method, section = run["train"]["method"], run.get("designer")
    if section is None:
        raise VptError(f"vision_masks: the run in {model_dir.parent} ({method}) has no masks to measure; "
                       "evaluate it on a masked method's run (vpt, random_feedback, random_masks)")
    if (model_dir / "designer.pt").exists():
        designer = build_mask_designer(MaskDesignerConfig.from_section(section), size).eval()
        designer.load_state_dict(torch.load(model_dir / "designer.pt", map_location="cpu"))
        return lambda x, rows: designer(x)
    seed = int(run["train"]["seed"])

    def draw(x: torch.Tensor, rows: list[int]) -> torch.Tensor:
        gens = [torch.Generator().manual_seed(image_seed(seed + MASK_STREAM, EVAL_DRAW, r)) for r in rows]
        return torch.cat([random_masks(1, size, float(section["keep_ratio"]), int(section["random"]["grid"]), g,
                                       float(section["random"]["sharpness"])) for g in gens])
    return draw


def _evaluate(cfg: Config, model_dir: Path, device: str) -> tuple[dict[str, Any], list[Row]]:
    import numpy as np
    import torch

    from vpt.vision.backbone import to_input
    from vpt.vision.eval.features import Evaluation, decoded, read_split, resize
    from vpt.vision.images import decode_label, decode_rgb

    s = cfg["eval"]["vision_masks"]
    run_config = json.loads((model_dir / "run_config.json").read_text())
    size = int(run_config["ssl"]["global_size"])
    ev = Evaluation("vision_masks", {**s, "resolution": size}, model_dir, "cpu")  # the designer is tiny
    masker = _masker(model_dir, run_config, size)
    df, path = read_split(cfg, s["dataset"], s["split"], s["limit"])
    regions = region_masks(size)
    keep_sum: dict[int, float] = {}
    count: dict[int, int] = {}
    region_sum = dict.fromkeys(REGIONS, 0.0)
    rows: list[Row] = []
    images = decoded(df, "image", path, decode_rgb)
    labels = decoded(df, "label", path, decode_label)
    mean, std = tuple(ev.meta["mean"]), tuple(ev.meta["std"])
    with torch.no_grad():
        for i, (image, label) in enumerate(zip(images, labels)):
            x = to_input(torch.from_numpy(resize(image, (size, size))[None].copy()), mean, std)  # (1, 3, S, S)
            m = masker(x, [i])[0, 0].double().numpy()  # (S, S)
            lab = resize(label, (size, size), nearest=True)
            for c in np.unique(lab):
                sel = lab == c
                keep_sum[int(c)] = keep_sum.get(int(c), 0.0) + float(m[sel].sum())
                count[int(c)] = count.get(int(c), 0) + int(sel.sum())
            for r in REGIONS:
                region_sum[r] += float(m[regions[r]].mean())
            rows.append({"id": df["id"].iat[i], "keep": float(m.mean()), "keep_std": float(m.std())})
    n = len(rows)
    if n == 0:
        raise VptError(f"{path}: no images to measure masks on")
    metrics = {
        "keep": float(np.mean([r["keep"] for r in rows])),
        "keep_std": float(np.mean([r["keep_std"] for r in rows])),
        "class_keep": {str(c): keep_sum[c] / count[c] for c in sorted(count)},
        "class_pixels": {str(c): count[c] for c in sorted(count)},
        "region_keep": {r: region_sum[r] / n for r in REGIONS},
        "source": "designer" if (model_dir / "designer.pt").exists() else "random",
    }
    ev.images = n
    return ev.summary(n, metrics), rows


TASK_REGISTRY.register("vision_masks", NativeTask(
    "mask statistics of a masked run's final masks on eval.vision_masks.split: keep per class and per region",
    ("vision_masks",), _needs, _evaluate, default=False))
