"""DINO's multi-crop views in torch: G global and L local crops of every image of a batch.

Per view of each image: a random resized crop (area fraction drawn from the view's scale range,
aspect ratio log-uniform in [3/4, 4/3], as torchvision's RandomResizedCrop) resized to the view's
size (torchvision's roi_align: bilinear samples averaged per output pixel, batched over images), then, batched over the images, a horizontal flip, colour jitter
(brightness, contrast, saturation, applied with probability `jitter_p`) and grayscale, and the
backbone's mean/std normalisation. Every random number comes from the torch.Generators passed in,
so a batch's views are a function of (images, generator states): the task seeds one generator
per image from (seed, batch, row), and a resumed run redraws exactly the views it would have drawn.

Gaussian blur and solarisation (in DINO's recipe) are left out: at the embedded 32-64 px crops a
blur removes most of the signal, and the paper's appendix does not list them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

GRAY = (0.299, 0.587, 0.114)  # ITU-R 601 luma weights, as PIL's convert("L")
RATIO = (3 / 4, 4 / 3)
ATTEMPTS = 10  # crop boxes tried before the centre-crop fallback


@dataclass(frozen=True)
class MultiCropConfig:
    global_crops: int
    local_crops: int
    global_size: int
    local_size: int
    global_scale: tuple[float, float]
    local_scale: tuple[float, float]
    flip_p: float
    jitter_p: float
    brightness: float
    contrast: float
    saturation: float
    grayscale_p: float

    @classmethod
    def from_ssl(cls, ssl: dict) -> MultiCropConfig:
        """From a validated `vision.ssl` section."""
        j = ssl["color_jitter"]
        return cls(ssl["global_crops"], ssl["local_crops"], ssl["global_size"], ssl["local_size"],
                   tuple(ssl["global_scale"]), tuple(ssl["local_scale"]), ssl["flip_p"], j["p"], j["brightness"],
                   j["contrast"], j["saturation"], ssl["grayscale_p"])


def crop_box(h: int, w: int, scale: tuple[float, float], gen: torch.Generator) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random resized crop of an (h, w) image."""
    u = torch.rand(ATTEMPTS, 4, generator=gen, dtype=torch.float64)  # area, log-ratio, top, left
    area = h * w * (scale[0] + (scale[1] - scale[0]) * u[:, 0])
    log_r = math.log(RATIO[0]) + (math.log(RATIO[1]) - math.log(RATIO[0])) * u[:, 1]
    ratio = torch.exp(log_r)
    cw, ch = torch.sqrt(area * ratio).round().long(), torch.sqrt(area / ratio).round().long()
    for i in range(ATTEMPTS):
        bw, bh = int(cw[i]), int(ch[i])
        if 0 < bw <= w and 0 < bh <= h:
            top = int(u[i, 2].item() * (h - bh + 1))
            left = int(u[i, 3].item() * (w - bw + 1))
            return min(top, h - bh), min(left, w - bw), bh, bw
    r = w / h  # every attempt fell outside the image: the largest centred box of a clamped ratio
    if r > RATIO[1]:  # too wide: full height
        bw, bh = min(w, round(h * RATIO[1])), h
    elif r < RATIO[0]:  # too tall: full width
        bw, bh = w, min(h, round(w / RATIO[0]))
    else:
        bw, bh = w, h
    return (h - bh) // 2, (w - bw) // 2, bh, bw


def _gray(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) -> (B, 1, S, S) luma."""
    wts = torch.tensor(GRAY, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * wts).sum(dim=1, keepdim=True)


@dataclass(frozen=True)
class Draw:
    """The random choices of one view of one image."""

    box: tuple[int, int, int, int]  # top, left, height, width
    flip: bool
    factors: tuple[float, float, float]  # brightness, contrast, saturation (1: unchanged)
    gray: bool


def draw(h: int, w: int, scale: tuple[float, float], cfg: MultiCropConfig, gen: torch.Generator) -> Draw:
    """One view's crop box and photometric choices, in a fixed order from `gen`."""
    box = crop_box(h, w, scale, gen)
    u = torch.rand(6, generator=gen, dtype=torch.float64).tolist()  # flip, jitter on, b, c, s, gray
    on = u[1] < cfg.jitter_p
    factors = tuple(1 + st * (2 * x - 1) if on else 1.0 for st, x in zip((cfg.brightness, cfg.contrast, cfg.saturation), u[2:5]))
    return Draw(box, u[0] < cfg.flip_p, factors, u[5] < cfg.grayscale_p)  # type: ignore[arg-type]


def photometric(x: torch.Tensor, draws: Sequence[Draw]) -> torch.Tensor:
    """Flip, colour jitter (brightness, contrast, saturation) and grayscale of (B, 3, S, S) images
    in [0, 1], image i by draws[i], batched."""
    n = x.shape[0]

    def col(values: Sequence[float | bool]) -> torch.Tensor:
        return torch.tensor(values, dtype=x.dtype).view(n, 1, 1, 1)

    x = torch.where(col([d.flip for d in draws]).bool(), x.flip(-1), x)
    b, c, s = (col([d.factors[k] for d in draws]) for k in range(3))
    x = (x * b).clamp(0, 1)
    mean = _gray(x).mean(dim=(2, 3), keepdim=True)  # (B, 1, 1, 1)
    x = ((x - mean) * c + mean).clamp(0, 1)
    g = _gray(x)
    x = ((x - g) * s + g).clamp(0, 1)
    return torch.where(col([d.gray for d in draws]).bool(), _gray(x).expand_as(x), x)


def _resized(images: Sequence[torch.Tensor], boxes: Sequence[tuple[int, int, int, int]], size: int) -> torch.Tensor:
    """Box i of uint8 (H, W, 3) image i, resized -> (B, 3, size, size) in [0, 1]. One roi_align
    call per group of equally sized images (bilinear, averaging ceil(box / size) samples per
    output pixel: antialiased when a crop shrinks)."""
    from torchvision.ops import roi_align

    out = torch.empty(len(images), 3, size, size)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, im in enumerate(images):
        groups.setdefault(tuple(im.shape), []).append(i)
    for idx in groups.values():
        x = torch.stack([images[i] for i in idx]).permute(0, 3, 1, 2).float() / 255.0  # (n, 3, H, W)
        rois = torch.tensor([[j, boxes[i][1], boxes[i][0], boxes[i][1] + boxes[i][3], boxes[i][0] + boxes[i][2]]
                             for j, i in enumerate(idx)], dtype=torch.float32)  # (n, 5): batch, x0, y0, x1, y1
        out[idx] = roi_align(x, rois, output_size=size, spatial_scale=1.0, sampling_ratio=-1, aligned=True)
    return out.clamp(0, 1)


def multi_crop(images: Sequence[torch.Tensor], cfg: MultiCropConfig, mean: Sequence[float], std: Sequence[float],
               gens: Sequence[torch.Generator]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """uint8 images, each (H, W, 3) (sizes may differ), and one generator per image ->
    (G global (B, 3, Sg, Sg), L local (B, 3, Sl, Sl)) normalised views. Image i's views depend on
    gens[i] alone, so they do not change with how a batch is split over micro-batches or ranks."""
    kinds = [(cfg.global_size, cfg.global_scale)] * cfg.global_crops + [(cfg.local_size, cfg.local_scale)] * cfg.local_crops
    draws = [[draw(im.shape[0], im.shape[1], scale, cfg, g) for _, scale in kinds] for im, g in zip(images, gens, strict=True)]
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    views = []
    for v, (size, _) in enumerate(kinds):
        x = _resized(images, [d[v].box for d in draws], size)  # (B, 3, size, size)
        views.append((photometric(x, [d[v] for d in draws]) - m) / s)
    return views[:cfg.global_crops], views[cfg.global_crops:]
