"""Multi-view renders of landmarks with revisitop-style ground truth.

A landmark is a fixed, distinctive arrangement of textured primitives around the origin (drawn
once from its own generator). Views orbit it: azimuth (around the
landmark's usual viewing side: queries within a few degrees of it, database views up to 110
degrees away), distance and height vary, and occluders
(plain boxes) may stand between camera and landmark. For each query view, a database view of
the same landmark is
    easy   azimuth within `easy_deg` of the query's and at least half the landmark visible,
    hard   azimuth within `junk_deg` but beyond `easy_deg`, or 15-50 % visible,
    junk   less than 15 % visible (nearly fully occluded or out of view), or seen from beyond
           `junk_deg` (the other side of the landmark),
where "visible" is the landmark's visible pixel count over its count rendered from the same
camera position without occluders, aimed at the landmark. Distractors are random scenes of the
world renderer and views of landmarks that have no query (never positives). The query box is
the bounding box of the landmark's pixels in the query image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vpt.data.render.geometry import Camera, Primitive
from vpt.data.render.textures import TEXTURES
from vpt.data.render.world import WorldConfig, image_rng, render, render_scene

LANDMARK_TAG, OCCLUDER_TAG = 1, 2
VISIBLE_EASY, VISIBLE_JUNK = 0.5, 0.15


@dataclass
class LandmarkConfig:
    name: str = "roxford5k"
    seed: int = 0
    image_size: int = 64
    landmarks: int = 8
    views: int = 10  # database views per landmark
    queries: int = 1  # query views per landmark
    distractors: int = 20
    easy_deg: float = 30.0
    junk_deg: float = 90.0
    occlusion: float = 0.35  # probability that a database view has an occluder


@dataclass
class View:
    image: np.ndarray  # (H, W, 3) uint8
    landmark: int  # -1 for a random-scene distractor
    azimuth: float  # degrees
    visible: float  # fraction of the landmark visible (0..1)
    bbx: list[float] = field(default_factory=list)  # [x0, y0, x1, y1] of the landmark's pixels


def landmark_prims(cfg: LandmarkConfig, k: int) -> list[Primitive]:
    """Landmark k: a tower, a base and 2-4 ornaments, with their own colours and textures."""
    rng = image_rng(cfg.seed, f"{cfg.name}/landmark", k)
    pats = [t for t in TEXTURES if t != "plain"]

    def look() -> dict[str, Any]:
        return {"colour": tuple(float(c) for c in rng.uniform(0.15, 0.95, 3)), "texture": pats[rng.integers(len(pats))],
                "scale": float(rng.uniform(1.0, 4.0)), "tag": LANDMARK_TAG, "label": 1}

    hb, hh = float(rng.uniform(0.9, 1.5)), float(rng.uniform(0.3, 0.6))
    prims = [Primitive("box", (0, hh, 0), (hb, hh, hb * rng.uniform(0.6, 1.0)), yaw=float(rng.uniform(0, 1.5)), **look())]
    top = float(rng.uniform(1.0, 2.0))
    if rng.random() < 0.5:
        prims.append(Primitive("cylinder", (0, 2 * hh + top, 0), (float(rng.uniform(0.3, 0.6)), top), **look()))
    else:
        prims.append(Primitive("box", (0, 2 * hh + top, 0), (0.45, top, 0.45), yaw=float(rng.uniform(0, 1.5)), **look()))
    for _ in range(int(rng.integers(2, 5))):
        a, r = float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(0.6, 1.4))
        kind = ["sphere", "box", "cylinder"][int(rng.integers(3))]
        s = float(rng.uniform(0.2, 0.45))
        y = float(rng.uniform(0.3, 2 * hh + 2 * top))
        size = {"sphere": (s,), "box": (s, s, s), "cylinder": (s, s * 1.5)}[kind]
        prims.append(Primitive(kind, (r * math.cos(a), y, r * math.sin(a)), size, **look()))
    return prims


def _ground() -> Primitive:
    return Primitive("plane", (0, 0, 0), (0, 1, 0), 0, (0.45, 0.45, 0.4), "checker", scale=0.5)


def render_view(cfg: LandmarkConfig, k: int, split: str, index: int, occlude: bool, query: bool = False) -> View:
    """One view of landmark k; `index` picks its own generator within `split`."""
    rng = image_rng(cfg.seed, f"{cfg.name}/{split}", index)
    front = float(image_rng(cfg.seed, f"{cfg.name}/front", k).uniform(0, 360))  # the side a landmark is photographed from
    az = (front + float(rng.normal(0, 8.0) if query else rng.uniform(-110, 110))) % 360
    dist = float(rng.uniform(6.0, 8.0) if query else rng.uniform(5.5, 10.0))
    eye = (dist * math.sin(math.radians(az)), float(rng.uniform(1.2, 2.5)), dist * math.cos(math.radians(az)))
    aim = (0.0, 1.3, 0.0)
    err = 0.0 if query else math.radians(float(rng.normal(0, 12.0)))  # aiming error: the landmark may leave the frame
    lateral = dist * math.tan(err)
    right = (math.cos(math.radians(az)), -math.sin(math.radians(az)))  # horizontal, perpendicular to the line of sight
    target = (aim[0] + lateral * right[0], aim[1], aim[2] + lateral * right[1])
    lm = landmark_prims(cfg, k)
    occluders: list[Primitive] = []
    if occlude:  # a box on the line of sight, between 30 % and 70 % of the way
        f = float(rng.uniform(0.3, 0.7))
        w = float(rng.uniform(0.3, 1.2))
        c = (eye[0] * f + float(rng.normal(0, 0.4)), 0.0, eye[2] * f + float(rng.normal(0, 0.4)))
        h = float(rng.uniform(0.8, 2.2))
        occluders.append(Primitive("box", (c[0], h, c[2]), (w, h, 0.2), 0, (0.3, 0.3, 0.35), "stripes", yaw=math.radians(az), tag=OCCLUDER_TAG))
    prims = [_ground(), *lm, *occluders]
    cam = Camera(eye, target, 60.0, cfg.image_size)
    image, _, _, idx = render(prims, cam, rng)
    tags = np.array([p.tag for p in prims] + [0])
    mask = tags[idx] == LANDMARK_TAG
    ref = render([_ground(), *lm], Camera(eye, aim, 60.0, cfg.image_size), rng)[3]
    ref_count = max(int(np.isin(ref, np.arange(1, 1 + len(lm))).sum()), 1)
    bbx: list[float] = []
    if mask.any():
        ys, xs = np.nonzero(mask)
        bbx = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
    return View(image, k, az, min(float(mask.sum()) / ref_count, 1.0), bbx)


def _angle(a: float, b: float) -> float:
    d = abs(a - b) % 360
    return min(d, 360 - d)


def grade(cfg: LandmarkConfig, q: View, v: View) -> str | None:
    """'easy', 'hard', 'junk' for a database view of the query's landmark; None otherwise."""
    if v.landmark != q.landmark:
        return None
    delta = _angle(q.azimuth, v.azimuth)
    if v.visible < VISIBLE_JUNK or delta > cfg.junk_deg:
        return "junk"
    if delta <= cfg.easy_deg and v.visible >= VISIBLE_EASY:
        return "easy"
    return "hard"


def render_landmarks(cfg: LandmarkConfig) -> tuple[list[tuple[str, View]], list[tuple[str, View]], list[dict[str, Any]]]:
    """(database [(name, view)], queries [(name, view)], gnd): revisitop's imlist, qimlist, gnd."""
    n_query_lm = max(1, cfg.landmarks - max(1, cfg.landmarks // 4))  # the last quarter: no queries (distractors)
    database: list[tuple[str, View]] = []
    for k in range(cfg.landmarks):
        for j in range(cfg.views):
            idx = k * cfg.views + j
            occ = bool(image_rng(cfg.seed, f"{cfg.name}/occlude", idx).random() < cfg.occlusion)
            database.append((f"lm{k:03d}_{j:03d}", render_view(cfg, k, "database", idx, occ)))
    wcfg = WorldConfig(seed=cfg.seed, image_size=cfg.image_size)
    for d in range(cfg.distractors):
        scene = render_scene(wcfg, f"{cfg.name}/distractor", d)
        database.append((f"distractor_{d:04d}", View(scene.image, -1, 0.0, 0.0)))
    queries = [(f"query_lm{k:03d}_{j}", render_view(cfg, k, "query", k * cfg.queries + j, False, query=True))
               for k in range(n_query_lm) for j in range(cfg.queries)]
    gnd = []
    for _, q in queries:
        g: dict[str, Any] = {"bbx": q.bbx, "easy": [], "hard": [], "junk": []}
        for i, (_, v) in enumerate(database):
            kind = grade(cfg, q, v)
            if kind:
                g[kind].append(i)
        gnd.append(g)
    return database, queries, gnd
