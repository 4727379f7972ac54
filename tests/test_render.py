"""The procedural renderer (vpt.data.render): depth and class maps against analytic geometry,
determinism, weights, and the landmark ground truth."""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from vpt.data.render import (FAMILIES, NUM_CLASSES, OBJECT_CLASSES, Camera, LandmarkConfig, Primitive, WorldConfig,
                             render_landmarks, render_scene, zbuffer)
from vpt.data.render.landmarks import grade, _angle
from vpt.data.render.world import CLASS_ID, sample_scene

from conftest import REPO

SIZE = 64
FOV = 60.0


def pinhole_rays(size: int = SIZE, fov: float = FOV) -> tuple[np.ndarray, np.ndarray]:
    """Tangent-plane coordinates (u, v) of every pixel centre, camera looking down +z, row 0 at
    the top: written out here independently of Camera.rays."""
    half = math.tan(math.radians(fov) / 2)
    s = ((np.arange(size) + 0.5) / size * 2 - 1) * half
    u, v = np.meshgrid(s, -s)
    return u, v  # a ray's direction is (u, v, 1) before normalisation


def test_depth_of_a_fronto_parallel_plane_is_its_distance_everywhere() -> None:
    cam = Camera((0.0, 1.5, 0.0), (0.0, 1.5, 10.0), FOV, SIZE)
    hits = zbuffer([Primitive("plane", (0, 0, 7.25), (0, 0, -1), 1)], cam)
    np.testing.assert_allclose(hits.depth, 7.25, rtol=0, atol=1e-9)
    u, v = pinhole_rays()
    np.testing.assert_allclose(hits.t.reshape(SIZE, SIZE), 7.25 * np.sqrt(u**2 + v**2 + 1), rtol=1e-12)


def test_depth_of_the_ground_plane_seen_from_a_pitched_camera() -> None:
    """Ray-plane intersection with y = 0 from height h, camera pitched down by a: the z-depth
    of pixel (u, v) is h / (sin a - v cos a) where that is positive, none elsewhere."""
    h, a = 1.6, math.radians(20)
    cam = Camera((0.0, h, 0.0), (0.0, h - math.tan(a), 1.0), FOV, SIZE)
    hits = zbuffer([Primitive("plane", (0, 0, 0), (0, 1, 0), 2)], cam)
    u, v = pinhole_rays()
    down = math.sin(a) - v * math.cos(a)  # (fwd + u right + v up) . (0, -1, 0), with |fwd + ...| cancelling in z-depth
    expected = np.where(down > 0, h / np.where(down > 0, down, 1), np.inf)
    depth = hits.depth.reshape(SIZE, SIZE)
    assert np.isinf(depth).sum() == np.isinf(expected).sum() > 0
    finite = np.isfinite(expected)
    np.testing.assert_allclose(depth[finite], expected[finite], rtol=1e-9)


def test_a_box_in_front_of_a_sphere_occludes_exactly_its_square() -> None:
    """Camera at the origin looking down +z; a 1 m cube with its front face at z = 4.5 and a
    sphere (radius 2) at z = 10. The cube covers |u|, |v| <= 0.5 / 4.5; the sphere the rays
    within asin(2 / 10) of the axis; everything else is void."""
    cam = Camera((0.0, 0.0, 0.0), (0.0, 0.0, 1.0), FOV, SIZE)
    box = Primitive("box", (0, 0, 5.0), (0.5, 0.5, 0.5), 7)
    sphere = Primitive("sphere", (0, 0, 10.0), (2.0,), 3)
    for prims in ([box, sphere], [sphere, box]):  # draw order must not matter
        hits = zbuffer(prims, cam)
        labels = np.array([p.label for p in prims] + [0])[hits.index].reshape(SIZE, SIZE)
        u, v = pinhole_rays()
        in_box = (np.abs(u) <= 0.5 / 4.5) & (np.abs(v) <= 0.5 / 4.5)
        angle = np.arctan(np.sqrt(u**2 + v**2))
        in_sphere = angle < math.asin(2 / 10)
        expected = np.where(in_box, 7, np.where(in_sphere, 3, 0))
        np.testing.assert_array_equal(labels, expected)
        assert 0 < in_box.sum() < (in_sphere & ~in_box).sum()  # both visible: the occlusion is decided per pixel
        depth = hits.depth.reshape(SIZE, SIZE)
        np.testing.assert_allclose(depth[in_box], 4.5, atol=1e-9)
        # sphere: nearest root of |t d - c|^2 = r^2 with d = (u, v, 1) / n, z-depth = t / n
        n = np.sqrt(u**2 + v**2 + 1)
        b = 10.0 / n
        t = b - np.sqrt(np.maximum(b**2 - (100.0 - 4.0), 0))
        ring = in_sphere & ~in_box
        np.testing.assert_allclose(depth[ring], (t / n)[ring], rtol=1e-9)


def test_a_rotated_box_and_a_cylinder_match_their_analytic_silhouettes() -> None:
    cam = Camera((0.0, 0.0, 0.0), (0.0, 0.0, 1.0), FOV, SIZE)
    u, v = pinhole_rays()
    # a box (hx, hz) = (0.3, 0.8) turned a quarter about y is the box (0.8, 0.3)
    turned = zbuffer([Primitive("box", (0, 0, 6.0), (0.3, 0.5, 0.8), 1, yaw=math.pi / 2)], cam)
    plain = zbuffer([Primitive("box", (0, 0, 6.0), (0.8, 0.5, 0.3), 1)], cam)
    np.testing.assert_array_equal(turned.index, plain.index)
    np.testing.assert_allclose(turned.depth[plain.index == 0], 5.7, atol=1e-9)
    # a vertical cylinder of radius r at distance z, viewed from its axis height: its silhouette
    # is |u| < tan(asin(r / z)) horizontally (side), bounded by the caps vertically
    cyl = zbuffer([Primitive("cylinder", (0, 0, 6.0), (0.5, 0.4), 1)], cam).index.reshape(SIZE, SIZE) == 0
    mid = SIZE // 2
    np.testing.assert_array_equal(cyl[mid], np.abs(u[mid]) < math.tan(math.asin(0.5 / 6.0)))
    assert not cyl[np.abs(v) > 0.4 / (6.0 - 0.5)].any()  # nothing beyond the near rim of the caps


def test_image_i_depends_only_on_seed_split_and_index() -> None:
    cfg = WorldConfig(seed=3)
    a = [render_scene(cfg, "train", i) for i in range(3)]
    b = [render_scene(cfg, "train", i) for i in (2, 1, 0)][::-1]  # other order, other history
    for x, y in zip(a, b):
        assert x.image.tobytes() == y.image.tobytes() and x.label.tobytes() == y.label.tobytes()
        assert x.depth.tobytes() == y.depth.tobytes() and x.category == y.category
    assert render_scene(cfg, "validation", 0).image.tobytes() != a[0].image.tobytes()
    assert render_scene(WorldConfig(seed=4), "train", 0).image.tobytes() != a[0].image.tobytes()
    code = ("from vpt.data.render import WorldConfig, render_scene; import hashlib; "
            "s = render_scene(WorldConfig(seed=3), 'train', 1); "
            "print(hashlib.sha256(s.image.tobytes() + s.label.tobytes() + s.depth.tobytes()).hexdigest())")
    outs = {subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                           env={"PYTHONPATH": str(REPO), "PYTHONHASHSEED": seed, "PATH": ""}).stdout.strip()
            for seed in ("0", "12345")}
    assert outs == {hashlib.sha256(a[1].image.tobytes() + a[1].label.tobytes() + a[1].depth.tobytes()).hexdigest()}


def test_labels_depth_and_categories_exercise_void_and_clipping() -> None:
    scenes = [render_scene(WorldConfig(seed=0), "train", i) for i in range(24)]
    for s in scenes:
        assert s.image.shape == (SIZE, SIZE, 3) and s.label.shape == s.depth.shape == (SIZE, SIZE)
        assert s.label.max() <= NUM_CLASSES and (s.label[[0, -1]] == 0).all() and (s.label[:, [0, -1]] == 0).all()
        assert FAMILIES[s.category] == s.family
        assert ((s.depth == 0) == (s.label == 0))[1:-1, 1:-1].all()  # inside the border: void exactly where nothing is hit
    assert any((s.label[1:-1, 1:-1] == 0).any() for s in scenes)  # sky: void inside the image too
    assert any((s.depth > 10).any() for s in scenes) and all(np.isfinite(s.depth).all() for s in scenes)
    assert {s.family for s in scenes} == set(FAMILIES)


def test_family_and_class_weights_are_honoured() -> None:
    cfg = WorldConfig(seed=1, families={"street": 0.1, "garden": 0.9})
    fams = Counter(sample_scene(cfg, "train", i)[2] for i in range(2000))
    assert set(fams) == {"street", "garden"} and abs(fams["street"] / 2000 - 0.1) < 0.03
    cfg = WorldConfig(seed=1, families={"garden": 1}, classes={"rock": 1, "bush": 1})
    seen = {p.label for i in range(50) for p in sample_scene(cfg, "train", i)[0]}
    assert seen == {CLASS_ID["grass"], CLASS_ID["rock"], CLASS_ID["bush"]}
    with pytest.raises(ValueError, match=r"unknown scene family 'forest'; choose one of: street, room, garden, hall"):
        sample_scene(WorldConfig(families={"forest": 1}), "train", 0)
    for bad in (0, -1, float("inf"), True):
        with pytest.raises(ValueError, match="positive finite"):
            sample_scene(WorldConfig(classes={"rock": bad}), "train", 0)
    assert set(OBJECT_CLASSES) < set(CLASS_ID)


def test_landmark_ground_truth_is_well_formed() -> None:
    cfg = LandmarkConfig(landmarks=4, views=8, queries=2, distractors=5, image_size=48)
    database, queries, gnd = render_landmarks(cfg)
    assert len(database) == 4 * 8 + 5 and len(queries) == len(gnd) == 3 * 2  # the last quarter has no query
    names = [n for n, _ in database] + [n for n, _ in queries]
    assert len(set(names)) == len(names)
    distractors = {i for i, (_, v) in enumerate(database) if v.landmark < 0 or v.landmark == 3}
    kinds = Counter()
    for (_, q), g in zip(queries, gnd):
        x0, y0, x1, y1 = g["bbx"]
        assert 0 <= x0 < x1 <= 48 and 0 <= y0 < y1 <= 48
        lists = [set(g["easy"]), set(g["hard"]), set(g["junk"])]
        assert sum(map(len, lists)) == len(set().union(*lists)) == 8  # disjoint; every view of its landmark graded
        assert not set().union(*lists) & distractors
        assert g["easy"] or g["hard"]
        for kind, idx in zip(("easy", "hard", "junk"), lists):
            kinds[kind] += len(idx)
            for i in idx:
                v = database[i][1]
                assert v.landmark == q.landmark and grade(cfg, q, v) == kind
                if kind == "easy":
                    assert _angle(q.azimuth, v.azimuth) <= cfg.easy_deg and v.visible >= 0.5
    assert all(kinds[k] > 0 for k in ("easy", "hard", "junk")), kinds
    again = render_landmarks(cfg)
    assert again[2] == gnd and all(a[1].image.tobytes() == b[1].image.tobytes() for a, b in zip(again[0], database))


def test_schema_enums_equal_the_renderer_and_normalizer_lists() -> None:
    from vpt.config import load_schema
    from vpt.data.normalize import NORMALIZERS
    from vpt.data.render import KINDS, SCENE_SCHEMAS

    s = load_schema()
    scenes = s["$defs"]["synth_scenes"]["properties"]
    assert scenes["families"]["propertyNames"]["enum"] == list(FAMILIES)
    assert scenes["classes"]["propertyNames"]["enum"] == list(OBJECT_CLASSES)
    assert scenes["schema"]["enum"] == list(SCENE_SCHEMAS)
    assert s["properties"]["synth"]["additionalProperties"]["then"]["properties"]["kind"]["enum"] == list(KINDS)
    assert s["properties"]["datasets"]["additionalProperties"]["properties"]["schema"]["enum"] == list(NORMALIZERS)
