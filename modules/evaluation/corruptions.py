"""The study's 11 ImageNet-C common corruptions (Hendrycks & Dietterich, ICLR 2019), in torch.

Parameters and algorithms follow the reference `imagecorruptions` package (1.1.x) function by
function, on [0, 1] float batches (N, 3, H, W) on any device; its randomness comes from one
seeded generator per image (seed from the image's dataset index), so the corrupted test set
is the same in every run and on every rank. JPEG goes through torchvision's encoder on the CPU.

Block rule (`corruption_of`): test image i of n gets corruption floor(i * 11 / n), i.e. 11
contiguous blocks in `CORRUPTIONS` order whose sizes differ by at most one (1,000 images:
blocks of 90 or 91). The study's text says "each image exactly one, in contiguous blocks";
its code was not available to check the exact rounding, so this is the assumption.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchvision.io import decode_jpeg, encode_jpeg

from modules.registry import ConfigError

CORRUPTIONS = (
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
SEVERITIES = (1, 2, 3, 4, 5)


def corruption_of(index: int, total: int) -> str:
    """The corruption of test image `index` of `total` (contiguous blocks, see the module doc)."""
    return CORRUPTIONS[index * len(CORRUPTIONS) // total]


def check(name: str, severity: int) -> None:
    if name not in CORRUPTIONS:
        raise ConfigError(f"unknown corruption {name!r}; valid choices: {', '.join(CORRUPTIONS)}")
    if isinstance(severity, bool) or severity not in SEVERITIES:
        raise ConfigError(f"corruption severity must be an integer 1-5, got {severity!r}")


# --- helpers ------------------------------------------------------------------------------------
def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=g))


def _gaussian_kernel1d(sigma: float, radius: int) -> torch.Tensor:
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    return k / k.sum()


def _filter(x: torch.Tensor, kernel: torch.Tensor, mode: str = "reflect") -> torch.Tensor:
    """Per-channel 2-D filtering of (C, H, W) with `kernel` (kh, kw) (cv2.filter2D: reflect-101)."""
    kh, kw = kernel.shape
    padded = F.pad(x.unsqueeze(0), (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2), mode=mode)
    weight = kernel.to(x).expand(x.shape[0], 1, kh, kw)
    return F.conv2d(padded, weight, groups=x.shape[0]).squeeze(0)


def _disk(radius: float, alias_blur: float) -> torch.Tensor:
    size = 8 if radius <= 8 else radius
    ksize = 3 if radius <= 8 else 5
    r = torch.arange(-size, size + 1, dtype=torch.float32)
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    disk = ((xx**2 + yy**2) <= radius**2).float()
    disk /= disk.sum()
    g = _gaussian_kernel1d(alias_blur, ksize // 2)
    return _filter(disk.unsqueeze(0), g[:, None] * g[None, :]).squeeze(0)


def _shift(x: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Shift (C, H, W) by (dx, dy) pixels, repeating the edge (the reference `shift`)."""
    h, w = x.shape[-2:]
    cols = (torch.arange(w, device=x.device) - dx).clamp(0, w - 1)
    rows = (torch.arange(h, device=x.device) - dy).clamp(0, h - 1)
    return x[..., rows, :][..., cols]


def _motion_blur(x: torch.Tensor, radius: int, sigma: float, angle: float) -> torch.Tensor:
    width = radius * 2 + 1
    kernel = torch.exp(-(torch.arange(width, dtype=torch.float32) ** 2) / (2 * sigma**2))
    kernel /= kernel.sum()
    point = (width * math.sin(math.radians(angle)), width * math.cos(math.radians(angle)))
    hypot = math.hypot(*point)
    out = torch.zeros_like(x)
    for i in range(width):
        dy = -math.ceil(i * point[0] / hypot - 0.5)
        dx = -math.ceil(i * point[1] / hypot - 0.5)
        if abs(dy) >= x.shape[-2] or abs(dx) >= x.shape[-1]:
            break
        out = out + float(kernel[i]) * _shift(x, dx, dy)
    return out


def _clipped_zoom(x: torch.Tensor, zoom: float) -> torch.Tensor:
    """Centre crop of 1/zoom, linearly upsampled by zoom, top-left crop to the original size."""
    h, w = x.shape[-2:]
    ch, cw = math.ceil(h / zoom), math.ceil(w / zoom)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = x[..., top : top + ch, left : left + cw]
    size = (max(round(ch * zoom), h), max(round(cw * zoom), w))
    return F.interpolate(crop.unsqueeze(0), size=size, mode="bilinear", align_corners=True)[0, ..., :h, :w]


def _grey(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).unsqueeze(0)


# --- the corruptions, one (C, H, W) image each -------------------------------------------------------
def shot_noise(x, s, g):
    c = [60, 25, 12, 5, 3][s - 1]
    return torch.poisson((x * c).cpu(), generator=g).to(x) / c


def impulse_noise(x, s, g):
    amount = [0.03, 0.06, 0.09, 0.17, 0.27][s - 1]
    hit = torch.rand(x.shape, generator=g).to(x.device) < amount
    salt = torch.rand(x.shape, generator=g).to(x.device) < 0.5
    return torch.where(hit, salt.to(x.dtype), x)


def defocus_blur(x, s, g):
    radius, alias = [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)][s - 1]
    kernel = _disk(radius, alias)
    mode = "reflect" if kernel.shape[0] // 2 < min(x.shape[-2:]) else "replicate"
    return _filter(x, kernel, mode)


def motion_blur(x, s, g):
    radius, sigma = [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)][s - 1]
    return _motion_blur(x, radius, sigma, _uniform(g, -45, 45))


def zoom_blur(x, s, g):
    zooms = [(1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.02), (1, 1.26, 0.02), (1, 1.31, 0.03)][s - 1]
    factors = torch.arange(*zooms, dtype=torch.float64).tolist()
    out = sum(_clipped_zoom(x, z) for z in factors)
    return (x + out) / (len(factors) + 1)


def snow(x, s, g):
    c = [
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ][s - 1]
    h, w = x.shape[-2:]
    layer = (c[0] + c[1] * torch.randn((1, h, w), generator=g)).to(x)
    layer = _clipped_zoom(layer, c[2])
    layer = torch.where(layer < c[3], torch.zeros_like(layer), layer).clamp(0, 1)
    layer = _motion_blur(layer, c[4], c[5], _uniform(g, -135, -45))
    layer = torch.round(layer * 255) / 255
    x = c[6] * x + (1 - c[6]) * torch.maximum(x, _grey(x) * 1.5 + 0.5)
    return x + layer + torch.rot90(layer, 2, dims=(-2, -1))


def brightness(x, s, g):
    c = [0.1, 0.2, 0.3, 0.4, 0.5][s - 1]
    v = x.amax(0, keepdim=True)  # HSV value; H and S fixed, so RGB scales with V
    v2 = (v + c).clamp(0, 1)
    return torch.where(v > 0, x * v2 / v.clamp(min=1e-12), v2.expand_as(x))


def contrast(x, s, g):
    c = [0.4, 0.3, 0.2, 0.1, 0.05][s - 1]
    means = x.mean(dim=(-2, -1), keepdim=True)
    return (x - means) * c + means


def elastic_transform(x, s, g):
    h, w = x.shape[-2:]
    alpha = [250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12][s - 1]
    sigma_y, sigma_x = h * 0.01, w * 0.01
    max_d = h * 0.005

    def field() -> torch.Tensor:
        noise = (torch.rand((1, h, w), generator=g) * 2 - 1) * max_d
        ky = _gaussian_kernel1d(sigma_y, max(int(3 * sigma_y + 0.5), 1))
        kx = _gaussian_kernel1d(sigma_x, max(int(3 * sigma_x + 0.5), 1))
        smooth = _filter(_filter(noise, ky[:, None], "replicate"), kx[None, :], "replicate")
        return (smooth * alpha).to(x)[0]

    dx, dy = field(), field()
    yy, xx = torch.meshgrid(
        torch.arange(h, device=x.device, dtype=x.dtype), torch.arange(w, device=x.device, dtype=x.dtype), indexing="ij"
    )
    grid = torch.stack(((xx + dx) / (w - 1) * 2 - 1, (yy + dy) / (h - 1) * 2 - 1), -1).unsqueeze(0)
    return F.grid_sample(x.unsqueeze(0), grid, mode="bilinear", padding_mode="reflection", align_corners=True)[0]


def pixelate(x, s, g):
    c = [0.6, 0.5, 0.4, 0.3, 0.25][s - 1]
    h, w = x.shape[-2:]
    small = F.interpolate(x.unsqueeze(0), size=(int(h * c), int(w * c)), mode="area")
    return F.interpolate(small, size=(h, w), mode="nearest-exact")[0]


def jpeg_compression(x, s, g):
    quality = [25, 18, 15, 10, 7][s - 1]
    image = (x.clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    return decode_jpeg(encode_jpeg(image, quality=quality)).to(x.device, x.dtype) / 255


FUNCTIONS = {name: globals()[name] for name in CORRUPTIONS}


def corrupt(image: torch.Tensor, name: str, severity: int = 3, seed: int = 0) -> torch.Tensor:
    """One [0, 1] image (3, H, W) under corruption `name`, deterministic in `seed`."""
    check(name, severity)
    generator = torch.Generator().manual_seed(int(seed))
    out = FUNCTIONS[name](image.float(), severity, generator)
    return (out.clamp(0, 1) * 255).floor().div(255).to(image.dtype)  # the reference returns uint8


def corrupt_batch(
    images: torch.Tensor,
    indices: torch.Tensor | list[int],
    total: int,
    severity: int = 3,
    seed: int = 0,
    name: str | None = None,
) -> tuple[torch.Tensor, list[str]]:
    """The study's corrupted test images: image with dataset index i gets `corruption_of(i, total)`
    (or every image `name`), with randomness seeded from (seed, i)."""
    indices = [int(i) for i in indices]
    names = [name or corruption_of(i, total) for i in indices]
    out = torch.stack(
        [corrupt(img, name, severity, seed * 1_000_003 + i) for img, name, i in zip(images, names, indices)]
    )
    return out, names
