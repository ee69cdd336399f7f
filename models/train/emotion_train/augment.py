"""Batched augmentation on tensors (a per-image Python loop would cost more than the CNN on CPU).
One affine warp per face carries rotation, scale, shift and horizontal flip; then brightness and
contrast jitter and random erasing; then, optionally, what a camera does to a face that FER2013's
web photos rarely show (``camera``): uneven light, defocus, sensor noise and JPEG compression."""
import math

import torch
import torch.nn.functional as F


# The IJG's luminance quantisation table (JPEG standard, ITU-T T.81 Annex K, table K.1), which
# libjpeg scales by the quality setting; libjpeg-turbo and OpenCV's imwrite use the same.
JPEG_LUMA = torch.tensor([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], dtype=torch.float32)


def _dct_matrix(n=8):
    """Orthonormal DCT-II: coefficients = D @ block @ D.T, block = D.T @ coefficients @ D."""
    k = torch.arange(n, dtype=torch.float32).view(n, 1)
    i = torch.arange(n, dtype=torch.float32).view(1, n)
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    d[0] /= math.sqrt(2)
    return d


def jpeg(x, quality):
    """What baseline JPEG does to the grey levels of x [B,1,H,W] in 0..1 at a per-face quality
    [B] (1..100, libjpeg's scale): 8x8 block DCT, rounding to the scaled quantisation table, and
    back. The entropy coding JPEG adds is lossless, so this is the whole of its loss for grey faces.
    H and W must be multiples of 8 (48 is)."""
    b, _, h, w = x.shape
    dev = x.device
    q = quality.clamp(1, 100).float()
    scale = torch.where(q < 50, 5000 / q, 200 - 2 * q).view(b, 1, 1, 1, 1)
    table = ((JPEG_LUMA.to(dev) * scale + 50) / 100).floor().clamp(1, 255)
    d = _dct_matrix().to(dev)
    blocks = (x * 255 - 128).view(b, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)
    coef = d @ blocks @ d.T
    coef = torch.round(coef / table) * table
    out = (d.T @ coef @ d).permute(0, 1, 3, 2, 4).reshape(b, 1, h, w)
    return ((out + 128).round() / 255).clamp(0, 1)


def blur(x, sigma):
    """Gaussian blur of each face with its own sigma [B] in pixels (defocus, motion aside)."""
    b, _, h, w = x.shape
    radius = 3
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype).view(1, -1)
    k1 = torch.exp(-t ** 2 / (2 * sigma.view(b, 1).clamp(min=1e-3) ** 2))
    k1 = k1 / k1.sum(1, keepdim=True)
    k2 = (k1.view(b, -1, 1) * k1.view(b, 1, -1)).unsqueeze(1)  # [B,1,k,k]
    padded = F.pad(x.view(1, b, h, w), (radius,) * 4, mode="replicate")
    return F.conv2d(padded, k2, groups=b).view(b, 1, h, w)


def camera_degrade(x, gen, p):
    """Each face, with probability p, goes through a camera's faults, each with probability 1/2:
    a gamma curve (0.6-1.6, under- or over-exposed light), a light gradient from one side (±35 %),
    defocus blur (sigma 0.3-1.1 px), sensor noise (sigma up to 3 % of full scale) and JPEG at
    quality 15-60, in that order (light, lens, sensor, encoder)."""
    b, dev = x.shape[0], x.device
    rand = lambda *shape: torch.rand(*shape, generator=gen, device=dev)
    u = lambda lo, hi: rand(b) * (hi - lo) + lo
    chosen = rand(b) < p
    part = lambda: (chosen & (rand(b) < 0.5)).view(b, 1, 1, 1)
    h, w = x.shape[2], x.shape[3]

    gamma = torch.exp(u(math.log(0.6), math.log(1.6))).view(b, 1, 1, 1)
    x = torch.where(part(), x.clamp(min=1e-6) ** gamma, x)

    direction = u(0, 2 * math.pi)
    ys = torch.linspace(-1, 1, h, device=dev).view(1, 1, h, 1)
    xs = torch.linspace(-1, 1, w, device=dev).view(1, 1, 1, w)
    ramp = xs * torch.cos(direction).view(b, 1, 1, 1) + ys * torch.sin(direction).view(b, 1, 1, 1)
    lit = (x * (1 + u(0, 0.35).view(b, 1, 1, 1) * ramp)).clamp(0, 1)
    x = torch.where(part(), lit, x)

    x = torch.where(part(), blur(x, u(0.3, 1.1)), x)

    noisy = (x + torch.randn(x.shape, generator=gen, device=dev) * u(0, 0.03).view(b, 1, 1, 1)).clamp(0, 1)
    x = torch.where(part(), noisy, x)

    return torch.where(part(), jpeg(x, u(15, 60)), x)


def augment(x, gen, rotate=15.0, scale=0.1, shift=0.1, flip=True, jitter=0.25, erase=0.5, camera=0.0):
    """x: float [B,1,H,W] in 0..1. Returns a new tensor; gen is a torch.Generator for reproducibility,
    on the same device as x (all random numbers are drawn there, so a GPU batch never visits the CPU).
    camera: the probability of camera_degrade for each face; 0 draws no random number for it, so
    runs without it are the same as before it existed."""
    b, dev = x.shape[0], x.device
    rand = lambda *shape: torch.rand(*shape, generator=gen, device=dev)
    u = lambda lo, hi: rand(b) * (hi - lo) + lo
    angle = u(-rotate, rotate) * math.pi / 180
    s = 1.0 / u(1 - scale, 1 + scale)
    fx = torch.where(rand(b) < 0.5, -1.0, 1.0) if flip else torch.ones(b, device=dev)
    cos, sin = torch.cos(angle) * s, torch.sin(angle) * s
    theta = torch.stack([
        torch.stack([cos * fx, -sin, u(-shift, shift) * 2], 1),
        torch.stack([sin * fx, cos, u(-shift, shift) * 2], 1)], 1)
    grid = F.affine_grid(theta, x.shape, align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if jitter:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        c = u(1 - jitter, 1 + jitter).view(b, 1, 1, 1)
        d = u(-jitter / 2, jitter / 2).view(b, 1, 1, 1)
        x = ((x - mean) * c + mean + d).clamp(0, 1)
    if erase:
        h, w = x.shape[2], x.shape[3]
        area = u(0.02, 0.2) * h * w
        ratio = torch.exp(u(math.log(0.3), math.log(3.3)))
        eh = (area * ratio).sqrt().clamp(1, h).long()
        ew = (area / ratio).sqrt().clamp(1, w).long()
        y0 = (rand(b) * (h - eh + 1).float()).long()
        x0 = (rand(b) * (w - ew + 1).float()).long()
        ys = torch.arange(h, device=dev).view(1, h, 1)
        xs = torch.arange(w, device=dev).view(1, 1, w)
        mask = ((ys >= y0.view(b, 1, 1)) & (ys < (y0 + eh).view(b, 1, 1)) &
                (xs >= x0.view(b, 1, 1)) & (xs < (x0 + ew).view(b, 1, 1)))
        mask &= (rand(b) < erase).view(b, 1, 1)
        noise = rand(x.shape)
        x = torch.where(mask.unsqueeze(1), noise, x)
    if camera:
        x = camera_degrade(x, gen, camera)
    return x
