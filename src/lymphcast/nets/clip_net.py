"""ClipNet: scores one lymph node from a cine sweep, at two scales, reading the frames in both directions.

- a shared 2D encoder of MONAI residual units (as NodeNet) turns every frame at every scale (node region,
  wider context) into a vector (average- and max-pooled: max keeps small bright foci); the scales of a frame
  are concatenated and projected to `hidden`;
- a bidirectional GRU runs over the frames (a sign seen in frame t informs the frames around it, both ways);
- attention pooling: a softmax over frames of a learned score per frame gives weights that sum to 1 (returned,
  so the key frames can be named), and the weighted mean of the GRU states is the clip's vector;
- the node's size numbers (us_regions.EXTRA) join that vector; a small head gives one node logit;
- the same numbers, standardised with the training nodes' mean and spread (`set_extra_scale`), also reach the
  logit through one linear term. Size alone ranks nodes well (short axis ≈ 0.75 node AUC on the synthetic
  cohorts), but as raw log-millimetres with a spread of ~0.3 the deep head learned it too slowly for early
  stopping: a size-only logistic regression outranked the whole network (0.74 vs 0.70–0.72 node AUC).

Streaming (later): `frame_features` and `aggregate` are separate so a stream can encode each frame once as it
arrives and rerun only the GRU and attention over the frames seen so far (or a short sliding window).
"""

from __future__ import annotations

import torch
from monai.networks.blocks import ResidualUnit
from torch import nn


class ClipNet(nn.Module):
    def __init__(self, scales: int = 2, channels=(16, 32, 48), extra: int = 6, hidden: int = 48,
                 dropout: float = 0.2):
        super().__init__()
        layers, c_in = [], 1
        for c_out in channels:
            layers.append(ResidualUnit(2, c_in, c_out, strides=2, subunits=2, norm="BATCH", act="PRELU"))
            c_in = c_out
        self.encoder = nn.Sequential(*layers)
        self.frame_proj = nn.Sequential(nn.Linear(scales * 2 * c_in, hidden), nn.ReLU())
        self.gru = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.attention = nn.Linear(2 * hidden, 1)
        self.head = nn.Sequential(nn.Linear(2 * hidden + extra, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.out = nn.Linear(hidden, 1)
        self.size_logit = nn.Linear(extra, 1)  # wide part: the standardised numbers straight to the logit
        self.register_buffer("extra_mean", torch.zeros(extra))
        self.register_buffer("extra_scale", torch.ones(extra))

    def set_extra_scale(self, extra) -> None:
        """Standardise the numbers with these rows' mean and spread (the training nodes'); a constant column
        (e.g. the single-frame model's zero duration) is only centred."""
        x = torch.as_tensor(extra, dtype=torch.float32)
        std = x.std(dim=0) if len(x) > 1 else torch.ones(x.shape[1])
        self.extra_mean.copy_(x.mean(dim=0) if len(x) else torch.zeros(x.shape[1]))
        self.extra_scale.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, scales, H, W) prepared frames → (B, T, hidden) per-frame features (no temporal mixing)."""
        b, t, s = x.shape[:3]
        f = self.encoder(x.reshape(b * t * s, 1, *x.shape[-2:]))
        pooled = torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1)
        return self.frame_proj(pooled.view(b, t, -1))

    def aggregate(self, feats: torch.Tensor, extra: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, hidden) frame features and (B, E) numbers → logits (B,) and attention (B, T)."""
        states, _ = self.gru(feats)
        attention = torch.softmax(self.attention(states).squeeze(-1), dim=1)
        pooled = (attention.unsqueeze(-1) * states).sum(1)
        e = (extra - self.extra_mean) / self.extra_scale
        logit = (self.out(self.head(torch.cat([pooled, e], dim=1))) + self.size_logit(e)).squeeze(-1)
        return logit, attention

    def forward(self, x: torch.Tensor, extra: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, scales, H, W) prepared frames, extra (B, E) → (logits (B,), attention (B, T))."""
        return self.aggregate(self.frame_features(x), extra)


def prepare(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 (…, H, W) → float standardised per frame and scale (removes the scanner's gain; the context
    window keeps the node's brightness relative to its surroundings)."""
    x = pixels.float()
    mean = x.mean(dim=(-1, -2), keepdim=True)
    std = x.std(dim=(-1, -2), keepdim=True).clamp(min=1.0)
    return (x - mean) / std
