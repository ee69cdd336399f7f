"""Batched augmentation on tensors (a per-image Python loop would cost more than the CNN on CPU).
One affine warp per face carries rotation, scale, shift and horizontal flip; then brightness and
contrast jitter and random erasing."""
import math

import torch
import torch.nn.functional as F


def augment(x, gen, rotate=15.0, scale=0.1, shift=0.1, flip=True, jitter=0.25, erase=0.5):
    """x: float [B,1,H,W] in 0..1. Returns a new tensor; gen is a torch.Generator for reproducibility,
    on the same device as x (all random numbers are drawn there, so a GPU batch never visits the CPU)."""
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
    return x
