"""The DINO projection head: MLP -> bottleneck -> L2 normalisation -> weight-normalised prototypes.

    x (B, D) -> Linear(D, H) GELU [Linear(H, H) GELU]* Linear(H, bottleneck) -> x / |x|
             -> Linear(bottleneck, out_dim, no bias) with each prototype row of unit norm

The last layer is weight-normalised with its norm fixed at 1 (DINO's `norm_last_layer`): only the
directions are learned, so the logits are cosine similarities, which keeps the softmax over many
prototypes from being dominated by a few rows' norms. The normalisation is written out in forward
(not torch.nn.utils weight_norm), so the state dict holds one plain tensor per layer, which FSDP
shards and the EMA teacher follows like any other weight.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DINOHead(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 2048, bottleneck_dim: int = 256, layers: int = 3) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (layers - 1) + [bottleneck_dim]
        mods: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            mods.append(nn.Linear(a, b))
            if i < len(dims) - 2:
                mods.append(nn.GELU())
        self.mlp = nn.Sequential(*mods)
        self.last_layer = nn.Parameter(torch.empty(out_dim, bottleneck_dim))  # prototype directions
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.last_layer, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) features -> (B, out_dim) logits."""
        z = F.normalize(self.mlp(x), dim=-1, eps=1e-6)  # (B, bottleneck), unit norm
        return z @ F.normalize(self.last_layer, dim=-1).t()  # (B, out_dim), cosines
