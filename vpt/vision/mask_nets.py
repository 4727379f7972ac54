"""The two mask designers of the vision task: normalised crops (B, 3, S, S) -> soft masks
(B, 1, S, S) in [0, 1] (vpt.vision.masks builds them from the config and holds the operators).

Both sit inside the value objective, so both avoid what the estimators cannot differentiate
twice or in forward mode: no BatchNorm (GroupNorm / LayerNorm), no in-place ops on activations,
no nn.TransformerEncoderLayer fast path (attention is F.scaled_dot_product_attention, which the
estimators run under the MATH kernel).

Both end in a layer with zero weight and bias logit(init_keep): the initial mask is exactly
init_keep at every pixel of every image, so the designer starts as a near-identity view (a
uniform dimming, no structure) and only the value signal gives it structure. At that point only
the output layer receives a gradient (the zero weight blocks the rest); after its first update
the gradient reaches every layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vpt.errors import VptError


def _logit(p: float) -> float:
    if not 0.0 < p < 1.0:
        raise VptError(f"vision.designer.init_keep must lie strictly between 0 and 1, got {p}")
    return math.log(p / (1.0 - p))


def _init_output(layer: nn.Conv2d | nn.Linear, init_keep: float) -> None:
    """Zero weight, bias logit(init_keep): sigmoid(output) == init_keep for every input."""
    nn.init.zeros_(layer.weight)
    nn.init.constant_(layer.bias, _logit(init_keep))


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """[3x3 conv, GroupNorm, GELU] x 2 (GroupNorm: per image, so no batch statistics in V)."""
    groups = math.gcd(c_out, 8)
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(groups, c_out), nn.GELU(),
        nn.Conv2d(c_out, c_out, 3, padding=1), nn.GroupNorm(groups, c_out), nn.GELU(),
    )


class UNetMasker(nn.Module):
    """A tiny U-Net: `depth` levels with base * 2^l channels, avg-pool down, nearest up, skips."""

    def __init__(self, base_channels: int, depth: int, init_keep: float) -> None:
        super().__init__()
        if base_channels < 1 or depth < 1:
            raise VptError(f"vision.designer.unet needs base_channels >= 1 and depth >= 1, got {base_channels}, {depth}")
        ch = [base_channels * 2**level for level in range(depth)]
        self.depth = depth
        self.down = nn.ModuleList([_conv_block(3 if level == 0 else ch[level - 1], ch[level]) for level in range(depth)])
        # decoder level l takes the upsampled level l+1 and the skip of level l
        self.up = nn.ModuleList([_conv_block(ch[level + 1] + ch[level], ch[level]) for level in range(depth - 1)])
        self.out = nn.Conv2d(ch[0], 1, 1)
        _init_output(self.out, init_keep)

    def check_size(self, size: int) -> None:
        factor = 2 ** (self.depth - 1)
        if size % factor:
            raise VptError(f"the U-Net designer (vision.designer.unet.depth = {self.depth}) needs a crop size divisible "
                           f"by {factor}, got {size}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, S, S) normalised crops -> (B, 1, S, S) masks in [0, 1]."""
        self.check_size(x.shape[-1])
        skips = []
        h = x
        for level, block in enumerate(self.down):
            if level:
                h = F.avg_pool2d(h, 2)  # (B, C_l, S / 2^l, S / 2^l)
            h = block(h)
            skips.append(h)
        for level in reversed(range(self.depth - 1)):
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = self.up[level](torch.cat([h, skips[level]], dim=1))  # (B, C_l, S / 2^l, S / 2^l)
        return torch.sigmoid(self.out(h))


class _Block(nn.Module):
    """A pre-norm transformer block: x + MHSA(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape  # (B, N, D)
        qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, H, N, D / H)
        x = x + self.proj(a.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


class SiTMasker(nn.Module):
    """A small vision transformer that predicts one mask logit per patch (SiT-style).

    The learned position embedding is for the grid of `crop_size` (the global crops); crops of
    another size get it bilinearly interpolated. Per-patch logits are upsampled bilinearly to the
    pixels before the sigmoid, so the mask is smooth across patch borders."""

    def __init__(self, dim: int, layers: int, heads: int, patch_size: int, crop_size: int, init_keep: float) -> None:
        super().__init__()
        if dim % heads:
            raise VptError(f"vision.designer.sit.dim ({dim}) must be divisible by vision.designer.sit.heads ({heads})")
        self.patch_size = patch_size
        self.check_size(crop_size)
        grid = crop_size // patch_size
        self.embed = nn.Conv2d(3, dim, patch_size, stride=patch_size)
        self.pos = nn.Parameter(torch.zeros(1, dim, grid, grid))  # (1, D, g, g)
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList([_Block(dim, heads) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, 1)
        _init_output(self.out, init_keep)

    def check_size(self, size: int) -> None:
        if size % self.patch_size:
            raise VptError(f"the SiT designer (vision.designer.sit.patch_size = {self.patch_size}) needs a crop size "
                           f"divisible by it, got {size}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, S, S) normalised crops -> (B, 1, S, S) masks in [0, 1]."""
        self.check_size(x.shape[-1])
        h = self.embed(x)  # (B, D, g, g)
        b, d, g, _ = h.shape
        pos = self.pos if self.pos.shape[-1] == g else F.interpolate(self.pos, size=(g, g), mode="bilinear",
                                                                      align_corners=False)
        t = (h + pos).flatten(2).transpose(1, 2)  # (B, g * g, D)
        for block in self.blocks:
            t = block(t)
        logits = self.out(self.norm(t)).transpose(1, 2).reshape(b, 1, g, g)  # (B, 1, g, g)
        logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)  # (B, 1, S, S)
        return torch.sigmoid(logits)
