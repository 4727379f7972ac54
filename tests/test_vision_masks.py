"""The vision designer's parts against references: the two mask networks (contract, the init_keep
start, gradients, forward-mode and double-backward derivatives against finite differences in
float64), the regularisers (numpy, a checkerboard in closed form), the random-mask ablation,
the soft-masking operator and the mask pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from vpt.errors import VptError
from vpt.vision.images import decode_rgb
from vpt.vision.masks import (DESIGNER_KINDS, MaskDesignerConfig, build_mask_designer, keep_ratio_penalty, random_masks,
                              soft_mask, total_variation)
from vpt.vision.pictures import SEPARATOR, scale_for, write_mask_pictures

torch.set_num_threads(1)
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _section(kind: str) -> dict[str, Any]:
    """A tiny validated `vision.designer` section (the tests' sizes, not the defaults)."""
    return {"kind": kind, "unet": {"base_channels": 4, "depth": 3},
            "sit": {"dim": 16, "layers": 2, "heads": 2, "patch_size": 8}, "keep_ratio": 0.6, "init_keep": 0.9}


def _designer(kind: str, dtype: torch.dtype = torch.float32, perturb: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_mask_designer(MaskDesignerConfig.from_section(_section(kind)), 32).to(dtype)
    if perturb:  # move the zero-initialised output layer off zero, so every layer shapes the mask
        with torch.no_grad():
            net.out.weight.normal_(0, 0.5)
    return net


@pytest.mark.parametrize("kind", DESIGNER_KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_designer_shape_range_and_initial_mask_is_init_keep(kind: str, dtype: torch.dtype) -> None:
    net = _designer(kind, dtype)
    x = torch.randn(3, 3, 32, 32, dtype=dtype) * 2
    m = net(x)
    assert m.shape == (3, 1, 32, 32) and m.dtype == dtype
    torch.testing.assert_close(m, torch.full_like(m, 0.9), atol=1e-6, rtol=0)
    m16 = net(x[:, :, :16, :16])  # another crop size (the SiT interpolates its position grid)
    assert m16.shape == (3, 1, 16, 16)
    mp = _designer(kind, dtype, perturb=True)(x)
    assert mp.min() >= 0 and mp.max() <= 1 and mp.std() > 1e-3  # no longer constant once the output layer moves


@pytest.mark.parametrize("kind", DESIGNER_KINDS)
def test_gradients_reach_every_parameter_through_soft_mask(kind: str) -> None:
    x, w = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    net = _designer(kind)
    (soft_mask(x, net(x)) * w).sum().backward()
    # at initialisation the zero output weight blocks every layer below it: only the output learns
    assert {n for n, p in net.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0} == {"out.weight", "out.bias"}
    net = _designer(kind, perturb=True)
    (soft_mask(x, net(x)) * w).sum().backward()
    dead = [n for n, p in net.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert dead == []


@pytest.mark.parametrize("kind", DESIGNER_KINDS)
def test_jvp_and_double_backward_match_finite_differences_in_float64(kind: str) -> None:
    """The value estimators' two derivative paths: forward-mode (torch.func.jvp) and a
    Hessian-vector product by double backward, each against central differences."""
    net = _designer(kind, torch.float64, perturb=True)
    names = [n for n, _ in net.named_parameters()]
    params = [p.detach() for p in net.parameters()]
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 32, 32, generator=gen, dtype=torch.float64)
    w = torch.randn(2, 3, 32, 32, generator=gen, dtype=torch.float64)
    v = [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in params]
    norm = torch.cat([d.flatten() for d in v]).norm()
    v = [d / norm for d in v]  # a unit direction: eps is the step's length

    def f(*ps: torch.Tensor) -> torch.Tensor:
        m = torch.func.functional_call(net, dict(zip(names, ps)), (x,))
        return (soft_mask(x, m) * w).sum() + (m ** 2).sum()  # nonlinear in m: a non-zero Hessian

    def grad(ps: list[torch.Tensor], create_graph: bool = False) -> tuple[torch.Tensor, ...]:
        return torch.autograd.grad(f(*ps), ps, create_graph=create_graph)

    eps = 1e-4
    plus, minus = [p + eps * d for p, d in zip(params, v)], [p - eps * d for p, d in zip(params, v)]
    with sdpa_kernel(SDPBackend.MATH):
        _, tangent = torch.func.jvp(f, tuple(params), tuple(v))
        fd = (f(*plus) - f(*minus)) / (2 * eps)
        torch.testing.assert_close(tangent, fd, rtol=1e-6, atol=1e-8)
        leaves = [p.clone().requires_grad_(True) for p in params]
        g = grad(leaves, create_graph=True)
        hvp = torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, v)), leaves)
        fd_h = [(a - b) / (2 * eps) for a, b in zip(grad([p.requires_grad_(True) for p in plus]),
                                                     grad([p.requires_grad_(True) for p in minus]))]
    flat, flat_fd = torch.cat([h.flatten() for h in hvp]), torch.cat([h.flatten() for h in fd_h])
    assert flat.abs().max() > 1e-3  # the check has something to compare
    torch.testing.assert_close(flat, flat_fd, rtol=1e-5, atol=1e-6 * flat.abs().max().item())


def test_config_errors_name_the_key_and_the_choices() -> None:
    with pytest.raises(VptError, match=r"vision\.designer\.kind.*unet, sit"):
        MaskDesignerConfig.from_section({**_section("unet"), "kind": "vae"})
    with pytest.raises(VptError, match=r"vision\.designer\.init_keep"):
        MaskDesignerConfig.from_section({**_section("unet"), "init_keep": 1.0})
    cfg = MaskDesignerConfig.from_section(_section("unet"))
    with pytest.raises(VptError, match=r"vision\.designer\.unet\.depth = 3.*divisible by 4, got 30"):
        build_mask_designer(cfg, 30)
    with pytest.raises(VptError, match=r"patch_size = 8.*got 36"):
        build_mask_designer(MaskDesignerConfig.from_section(_section("sit")), 36)
    with pytest.raises(VptError, match=r"divisible by 4, got 18"):
        build_mask_designer(cfg, 32)(torch.zeros(1, 3, 18, 18))


def _np_tv(m: np.ndarray) -> float:
    return float(np.abs(np.diff(m, axis=-2)).mean() + np.abs(np.diff(m, axis=-1)).mean())


def test_regularisers_against_numpy_and_a_checkerboard_in_closed_form() -> None:
    rng = np.random.default_rng(0)
    m = rng.uniform(size=(4, 1, 8, 6))
    mt = torch.from_numpy(m)
    want = np.mean([(m[i].mean() - 0.6) ** 2 for i in range(4)])
    assert keep_ratio_penalty(mt, 0.6).item() == pytest.approx(want, rel=1e-12)
    assert total_variation(mt).item() == pytest.approx(_np_tv(m), rel=1e-12)
    # an n x n checkerboard of c x c cells with levels lo, lo + a: along each line n/c - 1 of
    # the n - 1 neighbour differences cross a cell border, each of size a, in both directions
    n, c, lo, a = 12, 3, 0.2, 0.5
    idx = np.arange(n) // c
    board = lo + a * ((idx[:, None] + idx[None, :]) % 2)
    closed = 2 * a * (n / c - 1) / (n - 1)
    assert total_variation(torch.from_numpy(board)[None, None]).item() == pytest.approx(closed, rel=1e-12)
    assert total_variation(torch.full((2, 1, 5, 5), 0.3)).item() == 0.0
    assert keep_ratio_penalty(torch.full((2, 1, 5, 5), 0.6, dtype=torch.float64), 0.6).item() == pytest.approx(0, abs=1e-30)


def test_random_masks_keep_ratio_determinism_and_the_smoothness_knob() -> None:
    def draw(seed: int, grid: int = 4, rho: float = 0.6, sharpness: float = 8.0) -> torch.Tensor:
        return random_masks(6, 32, rho, grid, torch.Generator().manual_seed(seed), sharpness)

    for rho in (0.4, 0.6, 0.7):
        m = draw(0, rho=rho)
        assert m.shape == (6, 1, 32, 32) and m.min() >= 0 and m.max() <= 1
        assert (m.flatten(1).double().mean(dim=1) - rho).abs().max() < 1e-4
    assert torch.equal(draw(3), draw(3)) and not torch.equal(draw(3), draw(4))
    gen = torch.Generator().manual_seed(5)
    first, second = random_masks(2, 16, 0.5, 4, gen, 8.0), random_masks(2, 16, 0.5, 4, gen, 8.0)
    assert not torch.equal(first, second)  # the generator's state moves on
    tv = [total_variation(draw(0, grid=g)).item() for g in (2, 4, 8)]
    assert tv[0] < tv[1] < tv[2]
    assert total_variation(draw(0, sharpness=2.0)) < total_variation(draw(0, sharpness=20.0))
    assert (draw(0, sharpness=50.0) - 0.5).abs().mean() > 0.4  # sharp: near-binary masks


def test_soft_mask_identity_and_the_mean_colour() -> None:
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(soft_mask(x, torch.ones(2, 1, 8, 8)), x)
    grey = soft_mask(x, torch.zeros(2, 1, 8, 8)) * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    torch.testing.assert_close(grey, torch.tensor(MEAN).view(1, 3, 1, 1).expand(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, 1, S, S\)"):
        soft_mask(x, torch.ones(2, 3, 8, 8))


def test_mask_pictures_decode_to_the_grid_and_hold_the_crops(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    n, s = 3, 32
    pixels = torch.rand(n, 3, s, s, generator=gen, dtype=torch.float64)
    crops = (pixels - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    masks = random_masks(n, s, 0.6, 4, gen, 8.0)
    path = tmp_path / "sub" / "masks.png"
    write_mask_pictures(path, crops, masks, MEAN, STD)
    img = decode_rgb(path.read_bytes())
    k = scale_for(s)
    cell = k * s
    assert k * s >= 96 and img.shape == (n * cell + (n - 1) * SEPARATOR, 3 * cell + 2 * SEPARATOR, 3)
    want = (pixels * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()  # (n, S, S, 3)
    mask_u8 = (masks[:, 0].double() * 255).round().to(torch.uint8).numpy()  # (n, S, S)
    for i in range(n):
        top = i * (cell + SEPARATOR)
        crop_cell = img[top:top + cell, :cell]
        assert np.abs(crop_cell[::k, ::k].astype(int) - want[i]).max() <= 1
        assert np.array_equal(crop_cell, crop_cell[::k, ::k].repeat(k, 0).repeat(k, 1))  # nearest upscaling
        mask_cell = img[top:top + cell, cell + SEPARATOR:2 * cell + SEPARATOR, 0]
        assert np.abs(mask_cell[::k, ::k].astype(int) - mask_u8[i]).max() <= 1
        view = img[top:top + cell, 2 * (cell + SEPARATOR):][::k, ::k].astype(float) / 255  # (S, S, 3)
        m = masks[i, 0].double().numpy()[..., None]
        blended = (pixels[i].permute(1, 2, 0).numpy() * m + np.array(MEAN) * (1 - m))  # x m + mean (1 - m)
        assert np.abs(view - blended).max() <= 1 / 255 + 1e-9
    assert (img[cell:cell + SEPARATOR] == 255).all() and list(tmp_path.joinpath("sub").iterdir()) == [path]
