"""Scene geometry and the z-buffer: a pinhole camera, ray intersection of every primitive, and
per-pixel nearest-hit selection.

Rendering is by ray casting: one ray per pixel centre, each primitive intersected with all rays
at once (numpy, (P,) arrays for P = H*W pixels), and a z-buffer keeping the nearest hit. That is
the same visibility rule as rasterising with a depth test, and it makes depth exact: a pixel's
depth is the z-depth (distance along the optical axis) of its nearest hit, t * (d . forward).

Primitives (all in world coordinates, y up):
    plane     point p0, unit normal n (ground plane, back wall)
    sphere    centre c, radius r
    box       centre c, half-extents (hx, hy, hz), yaw about the vertical axis
    cylinder  vertical axis through centre c, radius r, half-height hy (capped)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

INF = np.float64(np.inf)
EPS = 1e-9


@dataclass(frozen=True)
class Camera:
    """A pinhole camera at `eye` looking at `target`, vertical field of view `fov_deg`, square
    images of `size` pixels."""

    eye: tuple[float, float, float]
    target: tuple[float, float, float]
    fov_deg: float = 60.0
    size: int = 64

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(forward, right, up) unit vectors; the world up is +y."""
        eye, target = np.asarray(self.eye, float), np.asarray(self.target, float)
        fwd = target - eye
        fwd /= np.linalg.norm(fwd)
        right = np.cross(fwd, [0.0, 1.0, 0.0])
        if np.linalg.norm(right) < EPS:  # looking straight up or down: any right vector works
            right = np.array([1.0, 0.0, 0.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, fwd)
        return fwd, right, up

    def rays(self) -> tuple[np.ndarray, np.ndarray]:
        """Ray origin (3,) and unit directions (P, 3) through every pixel centre, row-major
        (row 0 at the top)."""
        fwd, right, up = self.basis()
        half = np.tan(np.radians(self.fov_deg) / 2)
        s = (np.arange(self.size) + 0.5) / self.size * 2 - 1  # pixel centres in (-1, 1)
        u, v = np.meshgrid(s * half, -s * half)  # (H, W); v flipped so that row 0 is the top
        d = fwd[None] + u.reshape(-1, 1) * right[None] + v.reshape(-1, 1) * up[None]  # (P, 3)
        return np.asarray(self.eye, float), d / np.linalg.norm(d, axis=1, keepdims=True)

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points (N, 3) -> pixel coordinates (N, 2) as (x, y), continuous (0..size)."""
        fwd, right, up = self.basis()
        rel = np.asarray(points, float) - np.asarray(self.eye, float)
        z = rel @ fwd
        half = np.tan(np.radians(self.fov_deg) / 2)
        x = (rel @ right) / (z * half)
        y = (rel @ up) / (z * half)
        return np.stack([(x + 1) / 2 * self.size, (1 - y) / 2 * self.size], axis=1)


@dataclass
class Primitive:
    """One textured primitive. `label` is its class id (0 = void); `tag` identifies it within a
    scene (landmark parts, occluders); `texture` and `colour` drive vpt.data.render.textures."""

    kind: str  # plane | sphere | box | cylinder
    centre: tuple[float, float, float]
    size: tuple[float, ...]  # plane: normal (3); sphere: (r,); box: (hx, hy, hz); cylinder: (r, hy)
    label: int
    colour: tuple[float, float, float] = (0.5, 0.5, 0.5)
    texture: str = "plain"
    yaw: float = 0.0  # boxes only, radians about +y
    scale: float = 1.0  # texture frequency
    tag: int = 0
    extra: dict[str, float] = field(default_factory=dict)


def intersect(prim: Primitive, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ray parameter t (P,) of the nearest hit in front of the camera (inf where none) and the
    surface normal (P, 3) there."""
    fn = {"plane": _plane, "sphere": _sphere, "box": _box, "cylinder": _cylinder}.get(prim.kind)
    if fn is None:
        raise ValueError(f"unknown primitive kind {prim.kind!r}; choose one of: plane, sphere, box, cylinder")
    return fn(prim, o, d)


def _plane(p: Primitive, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.asarray(p.size, float)
    n = n / np.linalg.norm(n)
    denom = d @ n  # (P,)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = ((np.asarray(p.centre, float) - o) @ n) / denom
    t = np.where((np.abs(denom) > EPS) & (t > EPS), t, INF)
    normal = np.broadcast_to(np.where(denom[:, None] < 0, n, -n), d.shape)  # face the camera
    return t, normal


def _sphere(p: Primitive, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c, r = np.asarray(p.centre, float), float(p.size[0])
    oc = o - c
    b = d @ oc  # (P,)
    disc = b * b - (oc @ oc - r * r)
    sq = np.sqrt(np.maximum(disc, 0))
    t0, t1 = -b - sq, -b + sq
    t = np.where(t0 > EPS, t0, np.where(t1 > EPS, t1, INF))
    t = np.where(disc >= 0, t, INF)
    hit = o + d * np.where(np.isfinite(t), t, 0)[:, None]
    return t, (hit - c) / r


def _box(p: Primitive, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slab test in the box's own frame (rotated by -yaw about y)."""
    c, h = np.asarray(p.centre, float), np.asarray(p.size, float)
    cy, sy = np.cos(p.yaw), np.sin(p.yaw)
    rot = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])  # world -> local
    ol, dl = rot @ (o - c), d @ rot.T  # (3,), (P, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / np.where(np.abs(dl) > EPS, dl, EPS)
    t1, t2 = (-h - ol) * inv, (h - ol) * inv  # (P, 3)
    tmin, tmax = np.minimum(t1, t2), np.maximum(t1, t2)
    tnear, tfar = tmin.max(axis=1), tmax.min(axis=1)
    ok = (tnear <= tfar) & (tfar > EPS)
    t = np.where(ok, np.where(tnear > EPS, tnear, tfar), INF)
    axis = np.where(tnear > EPS, tmin.argmax(axis=1), tmax.argmin(axis=1))  # the face hit
    local = np.zeros_like(dl)
    local[np.arange(len(d)), axis] = -np.sign(dl[np.arange(len(d)), axis])
    return t, local @ rot  # back to world


def _cylinder(p: Primitive, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertical capped cylinder: the side (a quadratic in x, z) and the two caps."""
    c = np.asarray(p.centre, float)
    r, hy = float(p.size[0]), float(p.size[1])
    oc = o - c
    a = d[:, 0] ** 2 + d[:, 2] ** 2
    b = d[:, 0] * oc[0] + d[:, 2] * oc[2]
    cc = oc[0] ** 2 + oc[2] ** 2 - r * r
    disc = b * b - a * cc
    sq = np.sqrt(np.maximum(disc, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        ts = np.stack([(-b - sq) / a, (-b + sq) / a], axis=1)  # (P, 2)
    y = oc[1] + d[:, 1:2] * ts
    side_ok = (disc[:, None] >= 0) & (a[:, None] > EPS) & (ts > EPS) & (np.abs(y) <= hy)
    t_side = np.where(side_ok, ts, INF).min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        tc = np.stack([(hy - oc[1]) / d[:, 1], (-hy - oc[1]) / d[:, 1]], axis=1)
    px, pz = oc[0] + d[:, 0:1] * tc, oc[2] + d[:, 2:3] * tc
    cap_ok = (np.abs(d[:, 1:2]) > EPS) & (tc > EPS) & (px**2 + pz**2 <= r * r)
    t_cap = np.where(cap_ok, tc, INF).min(axis=1)
    t = np.minimum(t_side, t_cap)
    hit = oc + d * np.where(np.isfinite(t), t, 0)[:, None]
    side_n = np.stack([hit[:, 0], np.zeros(len(d)), hit[:, 2]], axis=1) / r
    cap_n = np.stack([np.zeros(len(d)), np.sign(hit[:, 1]), np.zeros(len(d))], axis=1)
    return t, np.where((t_side <= t_cap)[:, None], side_n, cap_n)


@dataclass
class Hits:
    """The z-buffer after all primitives: per pixel (P = H*W) the winning primitive index (-1 =
    none), ray parameter t, z-depth, world hit point and normal."""

    index: np.ndarray  # (P,) int
    t: np.ndarray  # (P,)
    depth: np.ndarray  # (P,) z-depth, inf where nothing is hit
    point: np.ndarray  # (P, 3)
    normal: np.ndarray  # (P, 3)
    direction: np.ndarray  # (P, 3) ray directions


def bounding_radius(prim: Primitive) -> float | None:
    """Radius of a sphere around `prim.centre` holding the whole primitive (None: unbounded plane)."""
    if prim.kind == "plane":
        return None
    if prim.kind == "cylinder":
        return float(np.hypot(prim.size[0], prim.size[1]))
    return float(np.linalg.norm(prim.size))


def candidates(prim: Primitive, o: np.ndarray, d: np.ndarray) -> np.ndarray | None:
    """Indices of the rays that can hit `prim` (those within its bounding sphere's cone), or None
    for all of them. Exact culling, not an approximation: a ray outside the cone misses the
    bounding sphere, hence the primitive."""
    radius = bounding_radius(prim)
    if radius is None:
        return None
    rel = np.asarray(prim.centre, float) - o
    dist = float(np.linalg.norm(rel))
    if dist <= radius * 1.001:  # the camera is inside: every ray may hit
        return None
    cos_cone = np.sqrt(1 - (radius / dist) ** 2)
    return np.flatnonzero(d @ (rel / dist) >= cos_cone - 1e-9)


def zbuffer(prims: list[Primitive], cam: Camera) -> Hits:
    """Nearest hit per pixel over all primitives (ties go to the earlier primitive)."""
    o, d = cam.rays()
    n_pix = len(d)
    best_t = np.full(n_pix, INF)
    index = np.full(n_pix, -1)
    normal = np.zeros((n_pix, 3))
    for k, prim in enumerate(prims):
        sel = candidates(prim, o, d)
        rays = np.arange(n_pix) if sel is None else sel
        if len(rays) == 0:
            continue
        t, nrm = intersect(prim, o, d[rays])
        closer = t < best_t[rays]
        won = rays[closer]
        best_t[won] = t[closer]
        index[won] = k
        normal[won] = nrm[closer]
    fwd = cam.basis()[0]
    finite = np.isfinite(best_t)
    point = o + d * np.where(finite, best_t, 0)[:, None]
    depth = np.where(finite, best_t * (d @ fwd), INF)
    return Hits(index, best_t, depth, point, normal, d)
