"""A seeded procedural renderer: the offline stand-in for the vision datasets.

Scenes of textured 3-D primitives (spheres, boxes, cylinders, ground plane, walls) seen by a
pinhole camera and rendered with a z-buffer, each with an exact per-pixel class map, metric
depth and a scene category; and multi-view renders of landmarks with revisitop-style ground
truth. Written in the hub sources' own layouts (vpt.data.render.writers), so the download stage
and the evaluators run the same code on synthetic and real data.

Modules: geometry (camera, primitives, z-buffer), textures (patterns and shading), world
(families, classes, one scene per (seed, split, i)), landmarks (views and ground truth),
writers (parquet and revisitop layouts, atomic targets).
"""

from __future__ import annotations

import os
from typing import Any

from vpt.data.render.geometry import Camera, Primitive, zbuffer
from vpt.data.render.landmarks import LandmarkConfig, render_landmarks, render_view
from vpt.data.render.world import (CLASSES, FAMILIES, NUM_CLASSES, OBJECT_CLASSES, Scene, WorldConfig, image_rng, render,
                                   render_scene)
from vpt.data.render.writers import SCENE_SCHEMAS, write_landmarks, write_scenes
from vpt.data.weights import check_weights

__all__ = [
    "CLASSES", "FAMILIES", "KINDS", "NUM_CLASSES", "OBJECT_CLASSES", "SCENE_SCHEMAS", "Camera", "LandmarkConfig",
    "Primitive", "Scene", "WorldConfig", "check_weights", "image_rng", "render", "render_landmarks", "render_scene",
    "render_view", "synth_target", "write_landmarks", "write_scenes", "zbuffer",
]

KINDS = ("scenes", "landmarks")  # `synth.<name>.kind` of a vision target (no kind: the math corpus)


def synth_target(spec: dict[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Render one `synth.<name>` vision target into `out_dir`; return its manifest."""
    kind = spec.get("kind")
    if kind == "scenes":
        check_weights("scene family", spec["families"], FAMILIES)
        check_weights("object class", spec["classes"], OBJECT_CLASSES)
        return write_scenes(spec, out_dir)
    if kind == "landmarks":
        return write_landmarks(spec, out_dir)
    raise ValueError(f"synth kind {kind!r}; choose one of: {', '.join(KINDS)}")
