"""Vision learners through timm: a DINOv3-architecture ViT, its token groups, and its saved form.

A backbone spec (a `vision.models.<name>` entry, or the embedded `vision.base_model`) is

    timm: vit_base_patch16_dinov3[.lvd1689m]   the timm model name (tag: the pretrained weights)
    hub_id, revision                           weights from the hub, pinned (paper.yaml) ...
    file                                       ... or the same pretrained path on a local file
    architecture: {embed_dim: ..., ...}        kwargs overriding the architecture (tiny, from scratch)

Hub and local weights go through the one `timm.create_model(pretrained=True)` path (timm's
`pretrained_cfg_overlay`), so the offline tests exercise the code that loads DINOv3 weights.

A saved backbone is a directory: `model.safetensors` (the backbone's state dict) and
`vision.json` (timm name, architecture, normalisation), readable by load_backbone.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vpt.errors import VptError
from vpt.io import write_json

MODEL_FILE = "model.safetensors"
META_FILE = "vision.json"


def weights_overlay(spec: dict[str, Any]) -> dict[str, Any]:
    """timm's pretrained_cfg_overlay for a spec's weights: a local `file`, or the hub id pinned
    as 'id@revision' (timm splits it back into repo and revision); {} for random init."""
    if spec.get("file"):
        return {"file": str(spec["file"])}
    if spec.get("hub_id"):
        rev = spec.get("revision")
        return {"hf_hub_id": f"{spec['hub_id']}@{rev}" if rev else spec["hub_id"]}
    return {}


def create_backbone(spec: dict[str, Any]) -> nn.Module:
    """A timm ViT without classifier (num_classes=0): pretrained from `hub_id`/`file`, else random init."""
    import timm

    name, arch = spec["timm"], dict(spec.get("architecture") or {})
    overlay = weights_overlay(spec)
    try:
        return timm.create_model(name, pretrained=bool(overlay), pretrained_cfg_overlay=overlay or None,
                                 num_classes=0, **arch)
    except RuntimeError as e:
        if "Unknown model" in str(e):
            raise VptError(f"unknown timm model {name!r} (vision backbone spec): {e}") from e
        raise


def prefix_tokens(model: nn.Module) -> int:
    """CLS + register tokens ahead of the patch tokens (5 for the DINOv3 ViTs)."""
    return int(getattr(model, "num_prefix_tokens", 1))


def tokens(model: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Token groups of normalised images (B, 3, H, W), H and W multiples of the patch size:
    cls (B, D), registers (B, R, D), patch (B, h, w, D) on the patch grid; final norm applied."""
    x = model.forward_features(images)  # (B, P + h*w, D)
    p = prefix_tokens(model)
    ph, pw = model.patch_embed.patch_size
    h, w = images.shape[-2] // ph, images.shape[-1] // pw
    if x.shape[1] != p + h * w:
        raise VptError(f"image size {tuple(images.shape[-2:])} is not a multiple of the patch size {(ph, pw)}")
    return {"cls": x[:, 0], "registers": x[:, 1:p], "patch": x[:, p:].reshape(x.shape[0], h, w, x.shape[-1])}


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Modules in eval mode inside (no drop-path, no RoPE training-time augmentation: the
    deterministic forwards of the meta step and of the feedback heads), their modes restored after."""
    saved = [[(m, m.training) for m in mod.modules()] for mod in modules]
    for mod in modules:
        mod.eval()
    try:
        yield
    finally:
        for pairs in saved:
            for m, mode in pairs:
                m.training = mode


def normalisation(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    return tuple(cfg.get("mean", (0.485, 0.456, 0.406))), tuple(cfg.get("std", (0.229, 0.224, 0.225)))


def to_input(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> normalised float (B, 3, H, W)."""
    x = images.permute(0, 3, 1, 2).float() / 255.0
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s


def save_backbone(model: nn.Module, spec: dict[str, Any], out: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
    """Write model.safetensors and vision.json into `out` (the caller makes the directory atomic)."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sd = state_dict if state_dict is not None else model.state_dict()
    save_file({k: v.detach().contiguous().cpu() for k, v in sd.items()}, str(out / MODEL_FILE))
    mean, std = normalisation(model)
    write_json(out / META_FILE, {"timm": spec["timm"].split(".")[0], "architecture": dict(spec.get("architecture") or {}),
                                 "mean": list(mean), "std": list(std), "prefix_tokens": prefix_tokens(model),
                                 "patch_size": list(model.patch_embed.patch_size)})


def load_backbone(directory: Path) -> tuple[nn.Module, dict[str, Any]]:
    """A saved backbone in eval mode (RoPE training-time augmentation off) and its vision.json."""
    from safetensors.torch import load_file

    directory = Path(directory)
    meta_path = directory / META_FILE
    if not meta_path.exists() or not (directory / MODEL_FILE).exists():
        raise VptError(f"{directory} holds no saved vision backbone ({META_FILE} and {MODEL_FILE})")
    meta = json.loads(meta_path.read_text())
    model = create_backbone({"timm": meta["timm"], "architecture": meta["architecture"]})
    missing, unexpected = model.load_state_dict(load_file(str(directory / MODEL_FILE)), strict=False)
    if missing or unexpected:
        raise VptError(f"{directory / MODEL_FILE} does not fit {meta['timm']}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.pretrained_cfg = {**(getattr(model, "pretrained_cfg", {}) or {}), "mean": tuple(meta["mean"]), "std": tuple(meta["std"])}
    return model.eval(), meta
