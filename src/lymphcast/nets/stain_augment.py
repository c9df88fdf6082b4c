"""Training-time augmentation of cytology tile bags: stain jitter in the stains' own space, focus, orientation.

Stain jitter follows the idea of HED augmentation (Tellez et al., Medical Image Analysis 2019): each pixel's
optical density is split into stain amounts through the stain matrix, every amount is scaled and shifted by a
random factor, and the pixel is rebuilt; here the matrix is the one the slides were normalised to (Macenko's
reference, plus a third "residual" direction), so the jitter moves along the stains the tiles actually hold,
whatever the laboratory's stain. The draw is one per bag (a slide is stained in one go) with a smaller one per
tile (uneven thickness). Orientation carries no meaning in a smear, so every tile is flipped and turned at random.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def stain_basis(he: np.ndarray) -> torch.Tensor:
    """(3, 2) stain vectors in optical density → (3, 3) basis with a unit residual direction orthogonal to both."""
    he = np.asarray(he, float)
    he = he / np.linalg.norm(he, axis=0, keepdims=True)
    residual = np.cross(he[:, 0], he[:, 1])
    residual = residual / max(np.linalg.norm(residual), 1e-6)
    return torch.tensor(np.column_stack([he, residual]), dtype=torch.float32)


def _uniform(shape, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=gen)


def stain_jitter(od: torch.Tensor, basis: torch.Tensor, gen: torch.Generator, *, scale: float = 0.25,
                 shift: float = 0.05, tile_scale: float = 0.05) -> torch.Tensor:
    """od (B, K, 3, H, W) optical density → jittered; amounts scaled by U(1±scale) per bag and stain (×U(1±
    tile_scale) per tile) and shifted by U(±shift) where there is stain (background stays clear)."""
    b, k = od.shape[:2]
    inv = torch.linalg.inv(basis)
    alpha = _uniform((b, 1, 3), 1 - scale, 1 + scale, gen) * _uniform((b, k, 3), 1 - tile_scale, 1 + tile_scale, gen)
    beta = _uniform((b, 1, 3), -shift, shift, gen).expand(b, k, 3)
    amounts = torch.einsum("sc,bkchw->bkshw", inv, od)
    tissue = (od.sum(dim=2, keepdim=True) > 0.15).float()  # only stained pixels get the shift
    amounts = amounts * alpha[..., None, None] + beta[..., None, None] * tissue
    return torch.einsum("cs,bkshw->bkchw", basis, amounts).clamp(min=0.0)


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Gaussian blur of (N, 3, H, W) with one sigma (px) per image; sigma 0 leaves the image as it is."""
    radius = 2
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t[None, :] / sigma.clamp(min=1e-3)[:, None]) ** 2)
    k = torch.where(sigma[:, None] > 0, k / k.sum(1, keepdim=True), (t[None, :] == 0).to(x.dtype))
    n, c, h, w = x.shape
    flat = x.reshape(1, n * c, h, w)
    kx = k.repeat_interleave(c, 0)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"), kx[:, None, None, :], groups=n * c)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="replicate"), kx[:, None, :, None], groups=n * c)
    return flat.reshape(n, c, h, w)


def augment_bags(od: torch.Tensor, basis: torch.Tensor, gen: torch.Generator, *, blur_p: float = 0.3,
                 max_blur: float = 1.0) -> torch.Tensor:
    """Stain jitter, focus (a blurred slide with probability blur_p), and a random flip/quarter turn per tile."""
    b, k = od.shape[:2]
    od = stain_jitter(od, basis, gen)
    sigma = torch.where(torch.rand(b, generator=gen) < blur_p, _uniform((b,), 0.3, max_blur, gen), torch.zeros(b))
    flat = _blur(od.flatten(0, 1), sigma.repeat_interleave(k))
    turns = torch.randint(0, 4, (b * k,), generator=gen)
    flips = torch.rand(b * k, generator=gen) < 0.5
    out = torch.empty_like(flat)
    for t in range(4):
        for f in (False, True):
            sel = (turns == t) & (flips == f)
            if sel.any():
                part = torch.rot90(flat[sel], t, dims=(2, 3))
                out[sel] = torch.flip(part, dims=(3,)) if f else part
    return out.view_as(od)
