"""MilNet: attention-based multiple-instance learning over a patient's bag of cytology tiles.

Each tile (a few cells at ~1 µm per pixel) goes through a small encoder of MONAI residual units (average- and
max-pooled: a single hobnail nucleus or a psammoma body is small) to an embedding; gated attention (Ilse,
Tomczak and Welling, ICML 2018) weighs the tiles of a bag and pools them into one patient vector, which a linear
head turns into the N1b logit. A bag is padded to a common length with a mask, so patients with few and with many
tiles share a batch and padding never receives attention. Written here because MONAI's MILModel is built around
a torchvision ResNet, which this project cannot import, and is far larger than 2 CPU cores can train.

Beside the attention-weighted mean, the head sees the plain mean of the tile embeddings: the aggressive features
are shares of cells (how many hobnail or tall cells among all), which a mean over every tile estimates directly,
while attention finds the rarer clusters (micropapillae) that a mean would dilute.
"""

from __future__ import annotations

import torch
from monai.networks.blocks import ResidualUnit
from torch import nn


class TileEncoder(nn.Module):
    def __init__(self, in_channels: int = 3, channels=(16, 32, 64), dim: int = 64, dropout: float = 0.1):
        super().__init__()
        layers, c_in = [], in_channels
        for c_out in channels:
            layers.append(ResidualUnit(2, c_in, c_out, strides=2, subunits=2, norm="BATCH", act="PRELU"))
            c_in = c_out
        self.trunk = nn.Sequential(*layers)
        self.project = nn.Sequential(nn.Linear(2 * c_in, dim), nn.ReLU(), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) tiles → (N, dim) embeddings."""
        f = self.trunk(x)
        return self.project(torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1))


class GatedAttention(nn.Module):
    """a_k ∝ exp(w · (tanh(V h_k) ⊙ sigmoid(U h_k))), over the unmasked tiles of each bag."""

    def __init__(self, dim: int, hidden: int = 32):
        super().__init__()
        self.v = nn.Linear(dim, hidden)
        self.u = nn.Linear(dim, hidden)
        self.w = nn.Linear(hidden, 1)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """h (B, K, D), mask (B, K) bool → attention weights (B, K), zero on padding, summing to one per bag."""
        score = self.w(torch.tanh(self.v(h)) * torch.sigmoid(self.u(h))).squeeze(-1)
        score = score.masked_fill(~mask, float("-inf"))
        return torch.softmax(score, dim=1).nan_to_num(0.0)  # an empty bag (all padding) gets no weight at all


class MilNet(nn.Module):
    def __init__(self, channels=(16, 32, 64), dim: int = 64, hidden: int = 32, dropout: float = 0.1):
        super().__init__()
        self.encoder = TileEncoder(3, channels, dim, dropout)
        self.attention = GatedAttention(dim, hidden)
        # linear: with the encoder frozen after contrastive pretraining, a hidden layer fitted a few hundred
        # patients' noise (benchmarks/bench_cytology.py)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * dim, 1))
        self.tile_head_dim = dim

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, K, 3, H, W) tiles → (B, K, D) embeddings."""
        b, k = x.shape[:2]
        return self.encoder(x.flatten(0, 1)).view(b, k, -1)

    def pool(self, h: torch.Tensor, mask: torch.Tensor):
        """Embeddings (B, K, D) and mask → (patient vectors (B, 2D), attention (B, K))."""
        att = self.attention(h, mask)
        w = mask.unsqueeze(-1).float()
        mean = (h * w).sum(1) / w.sum(1).clamp(min=1.0)
        return torch.cat([(att.unsqueeze(-1) * h).sum(1), mean], dim=1), att

    def bag_logits(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Bag logits (B,) from tile embeddings: the attention stage trains this on frozen embeddings."""
        return self.head(self.pool(h, mask)[0]).squeeze(-1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """→ bag logits (B,)."""
        return self.bag_logits(self.embed(x), mask)

    def attend(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B,), attention (B, K)) in one pass, for explanations."""
        pooled, att = self.pool(self.embed(x), mask)
        return self.head(pooled).squeeze(-1), att


def prepare_tiles(tiles: torch.Tensor) -> torch.Tensor:
    """uint8 (…, H, W, 3) → float (…, 3, H, W) optical density, ~0..1.5: stains add up in optical density
    (Beer-Lambert), so an empty background is 0 whatever the light and stain intensity act as one scale."""
    x = tiles.float().clamp(min=1.0)
    od = -torch.log(x / 255.0)
    return od.movedim(-1, -3)
