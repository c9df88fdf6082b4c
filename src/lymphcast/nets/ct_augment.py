"""Augmentation of node-centred CT cubes during training, batched in torch (cheap on 2 cores).

What varies between scans of the same node and must not change the answer: the side it is on (left-right
mirror: the neck is near-symmetric, and a mirror keeps the cranio-caudal and antero-posterior axes), where
exactly the reader put its centre (shifts of up to 2 mm), small in-plane rotations of the neck (quarter turns
are not used: the anatomy around a node has a direction), contrast timing and calibration (+-15 HU on the
whole cube, CLINICAL_FACTS: timing shifts attenuation by 10-20 HU), and the iodine map's quantification
(+-5 %). Dual-energy cubes also train without their iodine map some of the time (`drop_iodine`), so the model
scores the nodes of single-energy centres with the same weights. On request (`reconstruction`), a centre's
reconstruction too: thicker slices and more noise (`_reconstruction`). Random numbers come from the caller's
generator, so a resumed training run replays them.
"""

from __future__ import annotations

import torch

import math

import torch
import torch.nn.functional as F

MAX_SHIFT = 2.0       # voxels (1 mm each)
MAX_ROTATION = 15.0   # degrees, about the cranio-caudal axis
HU_JITTER = 15.0
IODINE_JITTER = 0.05
SLAB_WIDTHS = (1, 3, 5)   # voxels (mm): the slice thickness a cube seems to have been reconstructed at
MAX_NOISE_HU = 12.0       # extra image noise, HU (iodine map: NOISE_IODINE_PER_HU mg/mL per HU)
NOISE_IODINE_PER_HU = 0.01


def _geometry(b: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """(B, 3, 4) affine in grid_sample's (x, y, z) order: mirror x, rotate in the axial plane, shift."""
    angle = (torch.rand(b, generator=gen) * 2 - 1) * math.radians(MAX_ROTATION)
    mirror = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    shift = (torch.rand(b, 3, generator=gen) * 2 - 1) * MAX_SHIFT * 2 / size
    c, s = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(b, 3, 4)
    theta[:, 0, 0], theta[:, 0, 1] = c * mirror, -s
    theta[:, 1, 0], theta[:, 1, 1] = s * mirror, c
    theta[:, 2, 2] = 1.0
    theta[:, :, 3] = shift
    return theta


def _reconstruction(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Another centre's reconstruction: each cube averaged over a slab of 1, 3 or 5 mm along z (what thicker slices
    do to a node's edges, its small calcifications and its noise) and given extra noise of 0..MAX_NOISE_HU."""
    b = x.shape[0]
    width = torch.tensor(SLAB_WIDTHS)[torch.randint(len(SLAB_WIDTHS), (b,), generator=gen)]
    out = x.clone()
    for w in SLAB_WIDTHS[1:]:
        rows = torch.nonzero(width == w).flatten()
        if len(rows):
            padded = F.pad(x[rows], (0, 0, 0, 0, w // 2, w // 2), mode="replicate")
            out[rows] = F.avg_pool3d(padded, (w, 1, 1), stride=1)
    sd = torch.rand(b, generator=gen).view(b, 1, 1, 1) * MAX_NOISE_HU
    out[:, 0] += torch.randn(out[:, 0].shape, generator=gen) * sd
    if out.shape[1] > 1:
        out[:, 1:] += torch.randn(out[:, 1:].shape, generator=gen) * sd.unsqueeze(1) * NOISE_IODINE_PER_HU
    return out


def augment(crops: torch.Tensor, present: torch.Tensor, gen: torch.Generator,
            drop_iodine: float = 0.3, reconstruction: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """crops (B, C, s, s, s) in axis order (z, y, x), HU / mg/mL; present (B, C) → augmented copies."""
    x, present = crops.float(), present.clone()
    b, size = x.shape[0], x.shape[-1]
    grid = F.affine_grid(_geometry(b, size, gen), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if reconstruction:
        x = _reconstruction(x, gen)
    x[:, 0] += (torch.rand(b, generator=gen) * 2 - 1).view(b, 1, 1, 1) * HU_JITTER
    if x.shape[1] > 1:
        x[:, 1:] *= 1 + (torch.rand(b, generator=gen) * 2 - 1).view(b, 1, 1, 1, 1) * IODINE_JITTER
        drop = (torch.rand(b, generator=gen) < drop_iodine) & present[:, 1]
        present[drop, 1:] = False
        x[drop, 1:] = 0.0
    return x, present
