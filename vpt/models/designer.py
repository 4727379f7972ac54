"""The language task designer (paper appendix A.1).

A small LLaMA-style decoder (RMSNorm, rotary attention, SwiGLU) reads the context tokens,
adds the embedding of the true next token, and outputs
  - p_phi: a distribution over the learner's top-K candidate ids, scored against the designer's
    own embeddings of just those ids (never full-vocabulary logits), and
  - alpha = alpha_max * sigmoid(gate): how far the target moves away from the one-hot label.
Written out here rather than taken from transformers so that it computes in whatever dtype it
is given (the numerics tests run it in float64; transformers' norms upcast to float32).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class DesignerConfig:
    vocab_size: int
    n_layer: int = 6
    n_embd: int = 256
    n_head: int = 4
    K: int = 64
    alpha_max: float = 0.5
    rope_theta: float = 10000.0

    @classmethod
    def for_learner(cls, learner: nn.Module, section: Any) -> DesignerConfig:
        """The designer of a learner, sized from `train.designer` (`section`). Its vocabulary is the
        learner's output vocabulary, not the tokenizer's: the candidates are the learner's top-K
        logits, and models pad their vocabulary (Qwen1.5: 151,936 rows, 151,646 tokens)."""
        rows = learner.get_output_embeddings().weight.shape[0]  # type: ignore[operator,union-attr]
        return cls(rows, section.n_layer, section.n_embd, section.n_head, section.K, section.alpha_max)


@dataclass
class DesignerOutput:
    alpha: torch.Tensor  # (B, T) in [0, alpha_max]
    probs: torch.Tensor  # (B, T, K) p_phi over the candidates, rows sum to 1


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # fused kernel, same formula: x * rsqrt(mean(x^2) + eps) * weight, in x's dtype
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def rotations(T: int, D: int, theta: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(T, D/2) unit complex numbers e^{i t w_j}: one table per forward, shared by every block."""
    inv = 1.0 / theta ** (torch.arange(0, D, 2, device=device, dtype=dtype) / D)
    ang = torch.arange(T, device=device, dtype=dtype)[:, None] * inv[None]
    return torch.polar(torch.ones_like(ang), ang)


def rotary(x: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (2j, 2j+1) by the position's angle, as one complex product. x: (B, H, T, D)."""
    pairs = torch.view_as_complex(x.unflatten(-1, (-1, 2)).contiguous())  # (B, H, T, D/2)
    return torch.view_as_real(pairs * rot).flatten(-2)


class Block(nn.Module):
    def __init__(self, cfg: DesignerConfig) -> None:
        super().__init__()
        d, self.n_head = cfg.n_embd, cfg.n_head
        self.attn_norm = RMSNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.mlp_norm = RMSNorm(d)
        hidden = 4 * d * 2 // 3
        self.gate_up = nn.Linear(d, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, d, bias=False)

    def forward(self, x: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).split(d, dim=-1)
        q, k, v = (t.view(B, T, self.n_head, d // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        y = F.scaled_dot_product_attention(rotary(q, rot), rotary(k, rot), v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, d))
        gate, up = self.gate_up(self.mlp_norm(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up)


class TaskDesigner(nn.Module):
    def __init__(self, cfg: DesignerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.n_embd
        self.embed = nn.Embedding(cfg.vocab_size, d)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = RMSNorm(d)
        self.next_proj = nn.Linear(d, d, bias=False)  # conditions on the true next token
        self.query = nn.Linear(d, d, bias=False)  # scores candidates against their embeddings
        self.gate = nn.Linear(d, 1)
        self.apply(self._init)
        # zero gate: alpha starts at alpha_max / 2, a neutral point the value signal moves from
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, input_ids: torch.Tensor, next_ids: torch.Tensor, cand_ids: torch.Tensor) -> DesignerOutput:
        """input_ids, next_ids: (B, T); cand_ids: (B, T, K) learner top-K ids at each position."""
        h = self.embed(input_ids)
        rot = rotations(h.shape[1], h.shape[2] // self.cfg.n_head, self.cfg.rope_theta, h.device, h.dtype)
        for block in self.blocks:
            h = block(h, rot)
        h = self.norm(h) + self.next_proj(self.embed(next_ids))  # (B, T, d)
        cand = self.embed(cand_ids)  # (B, T, K, d): only the K candidate rows
        scores = torch.einsum("btd,btkd->btk", self.query(h), cand) / math.sqrt(h.shape[-1])
        alpha = self.cfg.alpha_max * torch.sigmoid(self.gate(h).squeeze(-1))
        return DesignerOutput(alpha=alpha, probs=scores.softmax(-1))
