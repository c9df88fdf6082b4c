"""NodeNet: the 2D CNN that scores one lymph node from one or more ultrasound views.

A shared encoder of MONAI residual units (stride 2 each: 64 px → 4 px) turns every view into a vector
(average- and max-pooled: max pooling keeps small bright foci such as microcalcifications that averaging
washes out); the node's size (box width and height in mm from the pixel spacing, else as a share of the
image) and whether the view has a Doppler image join that vector (us_regions.EXTRA); a small head scores the view, and the views present are averaged in feature space before the final logit, so
a node with one view and a node with two are scored by the same network.
"""

from __future__ import annotations

import torch
from monai.networks.blocks import ResidualUnit
from torch import nn


class NodeNet(nn.Module):
    def __init__(self, in_channels: int = 2, channels=(16, 32, 48, 64), extra: int = 6, hidden: int = 64,
                 dropout: float = 0.2, backbone: str = "residual"):
        super().__init__()
        if backbone == "densenet121":  # the benchmark's reference: MONAI's DenseNet121 trunk, same head
            from monai.networks.nets import DenseNet121

            trunk = DenseNet121(spatial_dims=2, in_channels=in_channels, out_channels=1)
            self.encoder = nn.Sequential(trunk.features, nn.ReLU())  # MONAI applies this ReLU in class_layers
            c_in = trunk.class_layers.out.in_features
        elif backbone == "residual":
            layers, c_in = [], in_channels
            for c_out in channels:
                layers.append(ResidualUnit(2, c_in, c_out, strides=2, subunits=2, norm="BATCH", act="PRELU"))
                c_in = c_out
            self.encoder = nn.Sequential(*layers)
        else:
            raise ValueError(f"backbone must be residual or densenet121, not {backbone!r}")
        self.view_head = nn.Sequential(nn.Linear(2 * c_in + extra, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.out = nn.Linear(hidden, 1)

    def embed(self, x: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images and (B, extra) numbers → (B, hidden) view features."""
        f = self.encoder(x)
        pooled = torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1)
        return self.view_head(torch.cat([pooled, extra], dim=1))

    def forward(self, x: torch.Tensor, extra: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """x (B, V, C, H, W), extra (B, V, E), present (B, V) bool → node logits (B,)."""
        b, v = x.shape[:2]
        if self.training:  # absent (blank) views stay in the batch: batch-norm statistics were learnt with them
            feats = self.embed(x.flatten(0, 1), extra.flatten(0, 1)).view(b, v, -1)
        else:  # in evaluation each view is scored alone, so only the views present need the encoder
            keep = present.flatten()
            inner = self.embed(x.flatten(0, 1)[keep], extra.flatten(0, 1)[keep])
            feats = inner.new_zeros(b * v, inner.shape[-1])
            feats[keep] = inner
            feats = feats.view(b, v, -1)
        w = present.unsqueeze(-1)
        pooled = torch.where(w, feats, 0.0).sum(1) / w.sum(1).clamp(min=1)  # absent views never leak, not even NaN
        return self.out(pooled).squeeze(-1)


class OneView(nn.Module):
    """One view of one node scored alone (for Grad-CAM, which calls a module with the image only)."""

    def __init__(self, net: NodeNet, extra: torch.Tensor):
        super().__init__()
        self.net, self.extra = net, extra

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.out(self.net.embed(x, self.extra.expand(x.shape[0], -1)))


def prepare(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 (…, 2, H, W) → float: B-mode standardised per image (removes the scanner's gain and dynamic
    range; the context margin keeps the node's brightness relative to its surroundings), Doppler 0..1."""
    x = pixels.float()
    bmode = x[..., 0:1, :, :]
    mean = bmode.mean(dim=(-1, -2), keepdim=True)
    std = bmode.std(dim=(-1, -2), keepdim=True).clamp(min=1.0)
    return torch.cat([(bmode - mean) / std, x[..., 1:2, :, :] / 255.0], dim=-3)
