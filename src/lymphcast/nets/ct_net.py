"""CtNet: the 3D CNN that scores one lymph node from a node-centred CT cube (32^3 voxels of 1 mm).

Three MONAI residual units (stride 2 each: 32 → 4 voxels) encode the cube; average and max pooling both feed
the head (max keeps a small calcification or a rim of enhancement that averaging washes out), and so does a
flag per optional input channel saying whether the study had it (the iodine map exists only on dual-energy
CT: an absent channel is zeros, and the flag tells the head not to read those zeros as "no iodine").

The head also reads each input channel's mean around the cube's centre, Gaussian-weighted at three radii
(1, 2 and 4 voxels): the node sits at the centre by construction, and its mean attenuation and iodine
concentration (what a radiologist's ROI measures) are hard for a few strided convolutions to isolate from the
vessels and thyroid nearby, which are far brighter.

Input scaling (`prepare`): the conventional series twice — a soft-tissue window where node enhancement lives
(-100..300 HU: the published arterial cut-off of ~109 HU sits mid-range) and a wide one that keeps air,
calcification and bone apart — and the iodine map in mg/mL / 2.
"""

from __future__ import annotations

import torch
from monai.networks.blocks import ResidualUnit
from torch import nn

SOFT_WINDOW = (-100.0, 300.0)  # HU
WIDE_SCALE = 500.0             # HU per unit in the wide window
IODINE_SCALE = 2.0             # mg/mL per unit
CENTRE_RADII = (1.0, 2.0, 4.0)  # voxels: Gaussian sigma of the centre means


def in_channels(n_inputs: int) -> int:
    """Network channels for `n_inputs` crop channels: the conventional one becomes two windows."""
    return n_inputs + 1


class CtNet(nn.Module):
    def __init__(self, n_inputs: int = 2, channels=(16, 32, 64), hidden: int = 64, dropout: float = 0.2):
        super().__init__()
        layers, c_in = [], in_channels(n_inputs)
        for c_out in channels:
            layers.append(ResidualUnit(3, c_in, c_out, strides=2, subunits=2, norm="BATCH", act="PRELU"))
            c_in = c_out
        self.encoder = nn.Sequential(*layers)
        self.n_inputs = n_inputs
        centre = len(CENTRE_RADII) * in_channels(n_inputs)
        self.head = nn.Sequential(nn.Linear(2 * c_in + centre + n_inputs - 1, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.out = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """x (B, in_channels, s, s, s) from `prepare`, present (B, n_inputs) → node logits (B,)."""
        f = self.encoder(x)
        pooled = torch.cat([f.mean(dim=(2, 3, 4)), f.amax(dim=(2, 3, 4)), centre_means(x),
                            present[:, 1:].float()], dim=1)
        return self.out(self.head(pooled)).squeeze(-1)


def centre_means(x: torch.Tensor) -> torch.Tensor:
    """(B, C, s, s, s) → (B, C * len(CENTRE_RADII)): Gaussian-weighted means around the cube's centre."""
    s = x.shape[-1]
    r2 = sum(g ** 2 for g in torch.meshgrid(*[torch.arange(s, dtype=x.dtype) - (s // 2)] * 3, indexing="ij"))
    out = []
    for sigma in CENTRE_RADII:
        w = torch.exp(-r2 / (2 * sigma ** 2))
        out.append((x * (w / w.sum())).sum(dim=(2, 3, 4)))
    return torch.cat(out, dim=1)


class CubeOnly(nn.Module):
    """The network with its channel flags fixed, called with the cube only (for Grad-CAM)."""

    def __init__(self, net: CtNet, present: torch.Tensor):
        super().__init__()
        self.net, self.present = net, present

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.present.expand(x.shape[0], -1)).unsqueeze(-1)


def prepare(crops: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """(B, n_inputs, s, s, s) HU / mg/mL crops and their (B, n_inputs) flags → network input."""
    hu = crops[:, :1].float()
    lo, hi = SOFT_WINDOW
    soft = (hu.clamp(lo, hi) - (lo + hi) / 2) / ((hi - lo) / 2)
    wide = hu.clamp(-1000.0, 2000.0) / WIDE_SCALE
    rest = crops[:, 1:].float() / IODINE_SCALE * present[:, 1:, None, None, None].float()
    return torch.cat([soft, wide, rest], dim=1)
