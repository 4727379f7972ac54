"""timm DINOv3 backbones through vpt.vision.backbone: the pretrained path on a local file gives
the saved model's outputs, the hub path pins 'id@revision' as timm reads it, the token groups
split CLS / registers / patches, and RoPE's training-time augmentation is off in eval mode."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vpt.vision.backbone import create_backbone, load_backbone, save_backbone, tokens, weights_overlay

from test_targets import paper  # noqa: F401  (the shared config fixture)

torch.set_num_threads(1)

ARCH = {"embed_dim": 32, "depth": 2, "num_heads": 2, "patch_size": 8, "img_size": 32}


def test_pretrained_path_on_a_local_file_loads_the_saved_weights(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(0)
    source = create_backbone({"timm": "vit_base_patch16_dinov3", "architecture": ARCH}).eval()
    weights = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(weights))
    torch.manual_seed(1)  # another random init underneath: only the loaded weights can make them equal
    loaded = create_backbone({"timm": "vit_base_patch16_dinov3.lvd1689m", "architecture": ARCH, "file": str(weights)}).eval()
    fresh = create_backbone({"timm": "vit_base_patch16_dinov3", "architecture": ARCH}).eval()
    assert loaded.pretrained_cfg["file"] == str(weights) and loaded.pretrained_cfg["tag"] == "lvd1689m"
    x = torch.randn(2, 3, 32, 48)  # dynamic image size: any multiple of the patch
    with torch.no_grad():
        assert torch.equal(loaded.forward_features(x), source.forward_features(x))
        assert not torch.allclose(fresh.forward_features(x), source.forward_features(x))


def test_hub_overlay_pins_the_revision_the_way_timm_reads_it(paper: dict) -> None:  # noqa: F811
    from timm.models._builder import resolve_pretrained_cfg
    from timm.models._hub import hf_split

    models = paper["vision"]["models"]
    assert set(models) == {"dinov3-vitb16", "dinov3-vitl16"}
    for spec in models.values():
        overlay = weights_overlay(spec)
        cfg = resolve_pretrained_cfg(spec["timm"], pretrained_cfg_overlay=overlay)  # the tag is a known timm weight
        assert hf_split(cfg.hf_hub_id) == (spec["hub_id"], spec["revision"])
        rev = spec["revision"]
        assert rev is None or (len(rev) == 40 and int(rev, 16) >= 0), spec  # a commit sha (ViT-L: TODO(pin))
    assert weights_overlay({"timm": "x", "file": "w.safetensors", "hub_id": "a/b"}) == {"file": "w.safetensors"}
    assert weights_overlay({"timm": "x"}) == {}


def test_tokens_split_cls_registers_and_the_patch_grid() -> None:
    torch.manual_seed(0)
    model = create_backbone({"timm": "vit_base_patch16_dinov3", "architecture": ARCH}).eval()
    x = torch.randn(2, 3, 32, 48)
    with torch.no_grad():
        feats = model.forward_features(x)  # (2, 5 + 4 * 6, 32)
        out = tokens(model, x)
    assert feats.shape == (2, 5 + 24, 32)
    assert torch.equal(out["cls"], feats[:, 0]) and out["registers"].shape == (2, 4, 32)
    assert out["patch"].shape == (2, 4, 6, 32)
    assert torch.equal(out["patch"].reshape(2, 24, 32), feats[:, 5:])  # no CLS or register token among the patches


def test_rope_augmentation_varies_training_features_and_is_off_in_eval(tmp_path: Path) -> None:
    torch.manual_seed(0)
    aug = {**ARCH, "rope_rescale_coords": 2.0, "rope_jitter_coords": 1.5}
    model = create_backbone({"timm": "vit_base_patch16_dinov3", "architecture": aug})
    plain = create_backbone({"timm": "vit_base_patch16_dinov3", "architecture": ARCH})
    with torch.no_grad():  # sharper attention than at init, so positions visibly matter
        for block in model.blocks:
            block.attn.qkv.weight.mul_(20.0)
    plain.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        model.train()
        a, b = tokens(model, x)["patch"], tokens(model, x)["patch"]
        with torch.random.fork_rng():
            assert not torch.equal(model.rope.get_embed(shape=(4, 4)), model.rope.get_embed(shape=(4, 4)))
        model.eval()
        c, d = tokens(model, x)["patch"], tokens(model, x)["patch"]
        ref = tokens(plain.eval(), x)["patch"]
    # training mode: each forward draws new RoPE coordinates (the same CPU computation twice is bit-identical)
    assert not torch.equal(a, b)
    assert torch.equal(c, d) and torch.allclose(c, ref, atol=1e-6)  # eval: deterministic, as without augmentation
    save_backbone(model, {"timm": "vit_base_patch16_dinov3", "architecture": ARCH}, tmp_path / "saved")
    loaded, meta = load_backbone(tmp_path / "saved")
    assert not loaded.training and meta["prefix_tokens"] == 5
    with torch.no_grad():
        assert torch.allclose(tokens(loaded, x)["patch"], ref, atol=1e-6)


@pytest.mark.parametrize("name", ["vit_base_patch16_dinov3", "vit_large_patch16_dinov3"])
def test_paper_architectures_are_the_dinov3_shapes(name: str) -> None:
    import timm

    with torch.device("meta"):  # the shapes only: no memory for 300M parameters
        model = timm.create_model(name, pretrained=False, num_classes=0)
    assert (model.num_features, len(model.blocks), model.num_prefix_tokens) == ({"vit_base_patch16_dinov3": 768,
                                                                               "vit_large_patch16_dinov3": 1024}[name],
                                                                              {"vit_base_patch16_dinov3": 12,
                                                                               "vit_large_patch16_dinov3": 24}[name], 5)
