"""The vision task designer's building blocks: the designer's config and builder, the one soft-
masking operator of the vision code, the designer's regularisers, and the `random_masks`
ablation's masks (appendix A.2: a mask m_phi(x) in [0, 1]^{H x W} per global crop, applied by a
differentiable soft-masking operator; R_spars pulls the keep ratio toward rho, R_tv smooths).

Shapes: crops (B, 3, S, S) are normalised ((x - mean) / std, vpt.vision.backbone.to_input);
masks are (B, 1, S, S) in [0, 1], 1 = keep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vpt.errors import VptError
from vpt.vision.mask_nets import SiTMasker, UNetMasker

DESIGNER_KINDS = ("unet", "sit")  # the schema's vision.designer.kind enum (tests/test_registry.py)


@dataclass(frozen=True)
class UNetConfig:
    base_channels: int
    depth: int


@dataclass(frozen=True)
class SiTConfig:
    dim: int
    layers: int
    heads: int
    patch_size: int


@dataclass(frozen=True)
class MaskDesignerConfig:
    kind: str
    unet: UNetConfig
    sit: SiTConfig
    keep_ratio: float  # rho, the keep ratio R_spars pulls every mask toward
    init_keep: float  # the mask value everywhere at initialisation (near 1: "no masking")

    @classmethod
    def from_section(cls, d: dict[str, Any]) -> MaskDesignerConfig:
        """From a validated `vision.designer` section (every default filled in by the schema)."""
        if d.get("kind") not in DESIGNER_KINDS:
            raise VptError(f"vision.designer.kind is {d.get('kind')!r}; choose one of {', '.join(DESIGNER_KINDS)}")
        for key in ("keep_ratio", "init_keep"):
            if not 0.0 < float(d[key]) < 1.0:
                raise VptError(f"vision.designer.{key} must lie strictly between 0 and 1, got {d[key]}")
        u, s = d["unet"], d["sit"]
        return cls(kind=d["kind"], unet=UNetConfig(int(u["base_channels"]), int(u["depth"])),
                   sit=SiTConfig(int(s["dim"]), int(s["layers"]), int(s["heads"]), int(s["patch_size"])),
                   keep_ratio=float(d["keep_ratio"]), init_keep=float(d["init_keep"]))


def build_mask_designer(cfg: MaskDesignerConfig, crop_size: int) -> nn.Module:
    """The designer of `cfg.kind` for crops of `crop_size` pixels (the global crops: the SiT's
    position grid is theirs; a size the network cannot take is an error now, not at step 1)."""
    net: UNetMasker | SiTMasker
    if cfg.kind == "unet":
        net = UNetMasker(cfg.unet.base_channels, cfg.unet.depth, cfg.init_keep)
    elif cfg.kind == "sit":
        s = cfg.sit
        net = SiTMasker(s.dim, s.layers, s.heads, s.patch_size, crop_size, cfg.init_keep)
    else:
        raise VptError(f"vision.designer.kind is {cfg.kind!r}; choose one of {', '.join(DESIGNER_KINDS)}")
    net.check_size(crop_size)
    return net


def soft_mask(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """The soft-masking operator: x * m, on NORMALISED crops x (B, 3, S, S), masks m (B, 1, S, S).

    Masking in normalised space moves a masked-out pixel to 0, which is the dataset mean colour
    once de-normalised: a flat grey fill that carries no image content and no colour cue, the
    convention of masked-image modelling (a masked patch is the mean, not black, so the fill
    itself is not an out-of-distribution signal). A partial value m in (0, 1) blends the pixel
    toward that grey, and the view is differentiable in m (the meta step's gradient path)."""
    if x.ndim != 4 or m.ndim != 4 or m.shape[1] != 1 or m.shape[0] != x.shape[0] or m.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"soft_mask takes crops (B, C, S, S) and masks (B, 1, S, S), got {tuple(x.shape)} "
                         f"and {tuple(m.shape)}")
    return x * m


def keep_ratio_penalty(m: torch.Tensor, rho: float) -> torch.Tensor:
    """R_spars: mean over images of (mean over pixels of m_i - rho)^2 (a scalar)."""
    return ((m.flatten(1).mean(dim=1) - rho) ** 2).mean()


def total_variation(m: torch.Tensor) -> torch.Tensor:
    """R_tv: anisotropic total variation, per-pixel means of the vertical and horizontal
    absolute differences, added (a scalar; 0 for a constant mask)."""
    dv = (m[..., 1:, :] - m[..., :-1, :]).abs().mean()
    dh = (m[..., :, 1:] - m[..., :, :-1]).abs().mean()
    return dv + dh


_BISECTION_STEPS = 64  # float64 bisection: the bracket (width < 60 / sharpness + range) shrinks below 1e-15


def random_masks(n: int, size: int, keep_ratio: float, grid: int, generator: torch.Generator,
                 sharpness: float) -> torch.Tensor:
    """The `random_masks` ablation: n smooth random soft masks (n, 1, size, size) with no feedback.

    Gaussian noise on a (grid x grid) lattice drawn from `generator` (so the masks are a function
    of its state), bilinearly upsampled to (size, size) and standardised per mask, then
    m = sigmoid(sharpness * (z - t_i)) with t_i found by bisection so that mean(m_i) = keep_ratio.

    "The same keep ratio and smoothness as the designer" means: the keep ratio is rho exactly (to
    ~1e-7, far inside the 1e-4 R_spars resolves), while smoothness is set by two knobs, `grid` (the
    spatial frequency: a larger lattice gives more, smaller blobs and a larger total variation) and
    `sharpness` (how hard the blob edges are: large -> near-binary masks, small -> gentle dimming).
    Float32 on the generator's device."""
    if not 0.0 < keep_ratio < 1.0:
        raise VptError(f"random masks need a keep ratio strictly between 0 and 1, got {keep_ratio}")
    if grid < 1 or size < 1 or sharpness <= 0:
        raise VptError(f"random masks need grid >= 1, size >= 1 and sharpness > 0, got {grid}, {size}, {sharpness}")
    dev = generator.device
    z = torch.randn(n, 1, grid, grid, generator=generator, device=dev, dtype=torch.float64)  # (n, 1, g, g)
    z = F.interpolate(z, size=(size, size), mode="bilinear", align_corners=False)  # (n, 1, S, S)
    flat = z.flatten(1)
    z = (flat - flat.mean(dim=1, keepdim=True)) / flat.std(dim=1, keepdim=True).clamp_min(1e-12)  # (n, S * S)
    # mean(sigmoid(s (z - t))) falls monotonically in t: from > rho at min z - 30/s to < rho at max z + 30/s
    lo = z.min(dim=1, keepdim=True).values - 30.0 / sharpness  # (n, 1)
    hi = z.max(dim=1, keepdim=True).values + 30.0 / sharpness
    for _ in range(_BISECTION_STEPS):
        mid = (lo + hi) / 2
        too_much = torch.sigmoid(sharpness * (z - mid)).mean(dim=1, keepdim=True) > keep_ratio
        lo, hi = torch.where(too_much, mid, lo), torch.where(too_much, hi, mid)
    m = torch.sigmoid(sharpness * (z - (lo + hi) / 2))
    return m.reshape(n, 1, size, size).float()
