"""World sampling: scene families, object classes, and one labelled image per (seed, split, i).

A scene is a family's background (ground plane, walls, ceiling, sky) plus objects drawn from the
family's object classes, weighted by the configured class weights, and a camera at eye height.
Every pixel gets the class id of its nearest primitive (ADE convention: 0 = void), where sky is
void and so is a one-pixel border, so reduce_zero_label and the ignore index always have work;
depth is the z-depth in metres, 0 (invalid) where nothing is hit. The road and far hall walls
reach beyond 10 m, so the evaluator's max-depth clipping matters too.

Image i of a split draws everything from its own numpy Generator seeded by a hash of
f"{seed}:{split}:{i}", so a split of n images is a prefix of a longer one and nothing depends
on PYTHONHASHSEED or on the other images.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np

from vpt.data.render.geometry import Camera, Primitive, zbuffer
from vpt.data.render.textures import shade
from vpt.data.weights import check_weights

# Class ids are positions + 1 (0 is void); the first five are backgrounds, the rest objects.
CLASSES: tuple[str, ...] = (
    "wall", "floor", "ceiling", "road", "grass",
    "building", "car", "tree", "pole", "table", "cabinet", "lamp", "ball", "bush", "rock", "barrel", "pillar",
)
NUM_CLASSES = len(CLASSES)
OBJECT_CLASSES: tuple[str, ...] = CLASSES[5:]
CLASS_ID = {name: i + 1 for i, name in enumerate(CLASSES)}


@dataclass(frozen=True)
class Family:
    ground: str
    sky: bool
    objects: tuple[str, ...]
    n_objects: tuple[int, int]
    distance: tuple[float, float]  # where objects stand in front of the camera (m)
    room: tuple[float, float, float, float] | None = None  # (half width lo, hi, back wall lo, hi)
    ceiling: tuple[float, float] | None = None


FAMILY_SPECS: dict[str, Family] = {
    "street": Family("road", True, ("building", "car", "pole", "tree"), (3, 7), (4.0, 25.0)),
    "room": Family("floor", False, ("table", "cabinet", "lamp", "ball", "barrel"), (2, 5), (1.5, 5.0),
                   room=(2.5, 4.0, 4.0, 8.0), ceiling=(2.6, 3.2)),
    "garden": Family("grass", True, ("tree", "bush", "rock", "barrel", "ball"), (3, 7), (2.0, 15.0)),
    "hall": Family("floor", False, ("pillar", "cabinet", "table", "lamp"), (3, 7), (2.0, 12.0),
                   room=(5.0, 8.0, 11.0, 18.0), ceiling=(4.0, 6.0)),
}
FAMILIES: tuple[str, ...] = tuple(FAMILY_SPECS)

# Object class -> (shape, size ranges, palette, texture, texture scale)
_OBJECTS: dict[str, tuple[str, tuple[tuple[float, float], ...], tuple[tuple[float, float, float], ...], str, float]] = {
    "building": ("box", ((1.5, 3.0), (2.0, 5.0), (1.5, 3.0)), ((0.7, 0.68, 0.62), (0.6, 0.45, 0.35), (0.55, 0.58, 0.62)), "grid", 1.0),
    "car": ("box", ((0.8, 1.1), (0.45, 0.65), (0.45, 0.6)), ((0.85, 0.1, 0.1), (0.1, 0.25, 0.8), (0.9, 0.9, 0.9), (0.1, 0.1, 0.1)), "plain", 1.0),
    "tree": ("tree", ((0.8, 1.4), (1.0, 1.6)), ((0.15, 0.5, 0.15), (0.25, 0.6, 0.2)), "noise", 3.0),
    "pole": ("cylinder", ((0.05, 0.1), (1.5, 3.0)), ((0.4, 0.4, 0.42),), "plain", 1.0),
    "table": ("box", ((0.5, 0.9), (0.35, 0.45), (0.4, 0.6)), ((0.55, 0.35, 0.2), (0.7, 0.5, 0.3)), "stripes", 6.0),
    "cabinet": ("box", ((0.4, 0.7), (0.8, 1.1), (0.3, 0.4)), ((0.9, 0.88, 0.8), (0.4, 0.3, 0.25)), "checker", 3.0),
    "lamp": ("cylinder", ((0.08, 0.15), (0.6, 0.9)), ((0.95, 0.85, 0.5),), "rings", 5.0),
    "ball": ("sphere", ((0.15, 0.35),), ((0.95, 0.5, 0.1), (0.9, 0.1, 0.5), (0.2, 0.7, 0.9)), "stripes", 5.0),
    "bush": ("sphere", ((0.4, 0.8),), ((0.1, 0.4, 0.1), (0.2, 0.45, 0.15)), "noise", 5.0),
    "rock": ("sphere", ((0.3, 0.7),), ((0.5, 0.5, 0.48), (0.45, 0.42, 0.4)), "noise", 4.0),
    "barrel": ("cylinder", ((0.3, 0.45), (0.4, 0.55)), ((0.5, 0.3, 0.15), (0.2, 0.35, 0.6)), "rings", 3.0),
    "pillar": ("cylinder", ((0.25, 0.4), (2.0, 3.0)), ((0.85, 0.82, 0.75),), "bricks", 2.0),
}
_GROUNDS = {"road": ((0.3, 0.3, 0.32), "stripes", 0.25), "grass": ((0.3, 0.6, 0.25), "noise", 2.0),
            "floor": ((0.6, 0.5, 0.4), "checker", 1.0)}


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The image's own generator: a function of (seed, split, index) only."""
    digest = hashlib.sha256(f"{seed}:{split}:{index}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


@dataclass
class WorldConfig:
    seed: int = 0
    image_size: int = 64
    families: dict[str, float] = field(default_factory=lambda: {f: 1.0 for f in FAMILIES})
    classes: dict[str, float] = field(default_factory=lambda: {c: 1.0 for c in OBJECT_CLASSES})


@dataclass
class Scene:
    image: np.ndarray  # (H, W, 3) uint8
    label: np.ndarray  # (H, W) uint8, 0 = void
    depth: np.ndarray  # (H, W) float32 metres, 0 = invalid
    category: int  # index of the family in FAMILIES
    family: str


def _u(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(*lo_hi))


def make_object(name: str, x: float, z: float, rng: np.random.Generator, tag: int = 0) -> list[Primitive]:
    """The primitives of one object of class `name` standing on the ground at (x, z)."""
    shape, sizes, palette, texture, scale = _OBJECTS[name]
    colour = tuple(float(c) for c in np.clip(np.asarray(palette[rng.integers(len(palette))]) + rng.normal(0, 0.04, 3), 0, 1))
    label = CLASS_ID[name]
    s = [_u(rng, r) for r in sizes]
    if shape == "box":
        return [Primitive("box", (x, s[1], z), (s[0], s[1], s[2]), label, colour, texture, yaw=float(rng.uniform(-0.6, 0.6)), scale=scale, tag=tag)]
    if shape == "sphere":
        sink = 0.5 if name in ("bush", "rock") else 1.0  # bushes and rocks sit half in the ground
        return [Primitive("sphere", (x, s[0] * sink, z), (s[0],), label, colour, texture, scale=scale, tag=tag)]
    if shape == "cylinder":
        return [Primitive("cylinder", (x, s[1], z), (s[0], s[1]), label, colour, texture, scale=scale, tag=tag)]
    # tree: trunk and canopy, one class
    trunk = Primitive("cylinder", (x, s[1] / 2, z), (0.12, s[1] / 2), label, (0.4, 0.28, 0.15), "plain", tag=tag)
    canopy = Primitive("sphere", (x, s[1] + 0.7 * s[0], z), (s[0],), label, colour, texture, scale=scale, tag=tag)
    return [trunk, canopy]


def background(fam: Family, rng: np.random.Generator) -> list[Primitive]:
    colour, texture, scale = _GROUNDS[fam.ground]
    jitter = tuple(float(c) for c in np.clip(np.asarray(colour) + rng.normal(0, 0.04, 3), 0, 1))
    prims = [Primitive("plane", (0, 0, 0), (0, 1, 0), CLASS_ID[fam.ground], jitter, texture, scale=scale)]
    if fam.room is not None:
        half, back = _u(rng, fam.room[:2]), _u(rng, fam.room[2:])
        wall = tuple(float(c) for c in rng.uniform(0.55, 0.9, 3))
        for pos, normal in (((0, 0, back), (0, 0, -1)), ((-half, 0, 0), (1, 0, 0)), ((half, 0, 0), (-1, 0, 0))):
            prims.append(Primitive("plane", pos, normal, CLASS_ID["wall"], wall, "bricks", scale=1.5))
    if fam.ceiling is not None:
        prims.append(Primitive("plane", (0, _u(rng, fam.ceiling), 0), (0, -1, 0), CLASS_ID["ceiling"], (0.92, 0.92, 0.9), "plain"))
    return prims


def render(prims: list[Primitive], cam: Camera, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(image (H, W, 3) uint8, label (H, W) uint8, depth (H, W) float32, primitive index (H, W))."""
    hits = zbuffer(prims, cam)
    n = cam.size
    labels = np.array([p.label for p in prims] + [0], dtype=np.uint8)  # index -1 -> 0 (void)
    label = labels[hits.index].reshape(n, n)
    depth = np.where(hits.index >= 0, hits.depth, 0.0).astype(np.float32).reshape(n, n)
    return shade(hits, prims, rng, n), label, depth, hits.index.reshape(n, n)


def sample_scene(cfg: WorldConfig, split: str, index: int) -> tuple[list[Primitive], Camera, str]:
    """The primitives, camera and family of image `index` of `split`."""
    rng = image_rng(cfg.seed, split, index)
    fam_names, fam_w = check_weights("scene family", cfg.families, FAMILIES)
    family = fam_names[rng.choice(len(fam_names), p=np.asarray(fam_w) / sum(fam_w))]
    fam = FAMILY_SPECS[family]
    prims = background(fam, rng)
    cls_names, cls_w = check_weights("object class", cfg.classes, OBJECT_CLASSES)
    allowed = [(c, w) for c, w in zip(cls_names, cls_w) if c in fam.objects]
    if allowed:
        p = np.asarray([w for _, w in allowed])
        for _ in range(int(rng.integers(fam.n_objects[0], fam.n_objects[1] + 1))):
            name = allowed[rng.choice(len(allowed), p=p / p.sum())][0]
            z = _u(rng, fam.distance)
            x = z * float(rng.uniform(-0.5, 0.5))
            if fam.room is not None:  # keep objects inside the room
                x = float(np.clip(x, -fam.room[0] + 0.8, fam.room[0] - 0.8))
                z = min(z, fam.room[2] - 0.8)
            prims += make_object(name, x, z, rng)
    eye_h = _u(rng, (1.2, 1.7))
    yaw, pitch = float(rng.uniform(-0.25, 0.25)), float(rng.uniform(-0.2, 0.02))
    target = (10 * math.sin(yaw), eye_h + 10 * math.tan(pitch), 10 * math.cos(yaw))
    return prims, Camera((0.0, eye_h, 0.0), target, 60.0, cfg.image_size), family


def render_scene(cfg: WorldConfig, split: str, index: int) -> Scene:
    prims, cam, family = sample_scene(cfg, split, index)
    image, label, depth, _ = render(prims, cam, image_rng(cfg.seed, f"{split}/noise", index))
    label[[0, -1], :] = 0  # the void border (label only)
    label[:, [0, -1]] = 0
    return Scene(image, label, depth, FAMILIES.index(family), family)
