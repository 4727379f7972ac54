"""Procedural textures and shading: the colour of every pixel from the z-buffer.

A texture is a pattern in [0, 1] over the world hit point (stripes, checker, window grid, bricks,
rings, value noise), mixing a primitive's colour with a darker second colour; Lambert shading
with one fixed sun and an ambient term gives the primitives their 3-D look. Pixels where no ray
hits anything are sky (a vertical gradient). Sensor noise comes from the image's own RNG, so an
image stays a function of (seed, split, index).
"""

from __future__ import annotations

import numpy as np

from vpt.data.render.geometry import Hits, Primitive

TEXTURES = ("plain", "stripes", "checker", "grid", "bricks", "rings", "noise")
SUN = np.array([0.4, 0.8, -0.45]) / np.linalg.norm([0.4, 0.8, -0.45])


def _pattern(name: str, p: np.ndarray, n: np.ndarray, s: float) -> np.ndarray:
    """Pattern value (N,) in [0, 1] at world points p (N, 3) with normals n (N, 3)."""
    x, y, z = p[:, 0] * s, p[:, 1] * s, p[:, 2] * s
    # surface coordinates: the two world axes most parallel to the surface
    axis = np.abs(n).argmax(axis=1)
    u = np.where(axis == 0, z, x)
    v = np.where(axis == 1, z, y)
    if name == "plain":
        return np.full(len(p), 1.0)
    if name == "stripes":
        return (np.sin(2 * np.pi * u) > 0).astype(float)
    if name == "checker":
        return ((np.floor(u) + np.floor(v)) % 2 == 0).astype(float)
    if name == "grid":  # facade windows: dark cells in a lighter frame
        fu, fv = u - np.floor(u), v - np.floor(v)
        return 1.0 - ((fu > 0.25) & (fu < 0.75) & (fv > 0.3) & (fv < 0.8)).astype(float)
    if name == "bricks":
        row = np.floor(v * 2)
        fu = (u + 0.5 * (row % 2)) % 1.0
        fv = (v * 2) % 1.0
        return ((fu > 0.06) & (fv > 0.12)).astype(float)
    if name == "rings":
        return (np.sin(2 * np.pi * np.hypot(u, v)) > 0).astype(float)
    if name == "noise":  # smooth-ish value noise from a few incommensurate sinusoids
        w = np.sin(1.7 * u + 0.3) * np.sin(2.3 * v + 1.1) + 0.5 * np.sin(3.1 * u - 2.9 * v)
        return (w + 1.5) / 3.0
    raise ValueError(f"unknown texture {name!r}; choose one of: {', '.join(TEXTURES)}")


def sky(direction: np.ndarray, horizon: np.ndarray, zenith: np.ndarray) -> np.ndarray:
    """Sky colour (P, 3) for unit ray directions (P, 3)."""
    a = np.clip(direction[:, 1], 0, 1)[:, None] ** 0.6
    return horizon[None] * (1 - a) + zenith[None] * a


def shade(hits: Hits, prims: list[Primitive], rng: np.random.Generator, size: int,
          sky_colours: tuple[tuple[float, float, float], tuple[float, float, float]] = ((0.8, 0.85, 0.95), (0.35, 0.55, 0.9)),
          noise: float = 0.02) -> np.ndarray:
    """(H, W, 3) uint8 image."""
    rgb = sky(hits.direction, np.asarray(sky_colours[0]), np.asarray(sky_colours[1]))  # (P, 3)
    for k, prim in enumerate(prims):
        m = hits.index == k
        if not m.any():
            continue
        pat = _pattern(prim.texture, hits.point[m], hits.normal[m], prim.scale)[:, None]  # (N, 1)
        base = np.asarray(prim.colour)[None]
        albedo = base * (0.45 + 0.55 * pat)
        lambert = np.clip(hits.normal[m] @ SUN, 0, 1)[:, None]
        fog = np.exp(-hits.t[m] / 60.0)[:, None]  # far surfaces fade toward the horizon colour
        colour = albedo * (0.35 + 0.65 * lambert)
        rgb[m] = colour * fog + np.asarray(sky_colours[0])[None] * (1 - fog)
    rgb = rgb + rng.normal(0, noise, rgb.shape)
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8).reshape(size, size, 3)
