"""How the clip network learns, in two stages (both through nets.training.fit_binary).

1. Whole network on short random sub-clips: each training clip contributes `train_frames` of its sampled frames
   (a random ordered subset, so the spacing between frames varies as it does in a stream that has seen part of a
   sweep), augmented (augment_clips). Encoding every frame at two scales is what costs; a sub-clip of 6 of 16
   frames makes an epoch ~2.5x cheaper and is itself an augmentation, so more epochs fit and overfit less.
   Validation uses a fixed evenly spaced subset of the same length, so its loss is comparable between epochs.
2. Temporal part only (GRU, attention, head) on the whole clips: the frame encoder is frozen, every sampled
   frame of every clip is encoded once (and once more mirrored left-right), and the temporal part is retrained
   on those features with the full frame count it meets at prediction time. Cheap: no convolution per step.

Augmentation, per clip: the sweep played backwards (a probe sweeps either way), a random offset of up to one
frame (edge frames repeated), a left-right flip of every frame, a gamma change. Never up-down: depth has a
direction.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from .us_video_clips import Clips, sample_indices

GAMMA = (0.7, 1.45)


def augment_clips(x, gen):
    """x float (B, T, S, H, W) on the 0..255 scale → augmented copy (see the module docstring)."""
    import torch

    b, t = x.shape[:2]
    u = lambda *s: torch.rand(*s, generator=gen)  # noqa: E731
    reverse = u(b) < 0.5
    x = torch.where(reverse[:, None, None, None, None], x.flip(1), x)
    shift = torch.randint(-1, 2, (b,), generator=gen)
    pos = (torch.arange(t)[None] + shift[:, None]).clamp(0, t - 1)
    x = x[torch.arange(b)[:, None], pos]
    flip = u(b) < 0.5
    x = torch.where(flip[:, None, None, None, None], x.flip(-1), x)
    gamma = torch.exp(np.log(GAMMA[0]) + u(b) * (np.log(GAMMA[1]) - np.log(GAMMA[0])))
    return (x / 255.0).clamp(0, 1) ** gamma[:, None, None, None, None] * 255.0


def subclip_positions(b: int, t: int, keep: int, gen):
    """(b, keep) sorted random frame positions out of t for each clip (all of them when keep >= t)."""
    import torch

    if keep >= t:
        return torch.arange(t).expand(b, t)
    return torch.rand(b, t, generator=gen).argsort(dim=1)[:, :keep].sort(dim=1).values


def whole_network_forward(clips: Clips, train_frames: int):
    """Stage 1: fit_binary's forward over sub-clips (see the module docstring)."""
    import torch

    from ..nets.clip_net import prepare

    pixels, extra = torch.from_numpy(clips.pixels), torch.from_numpy(clips.extra)
    t = pixels.shape[1]
    fixed = torch.as_tensor(np.unique(sample_indices(t, min(train_frames, t))))

    def forward(net, idx, train, gen):
        x = pixels[idx]
        if train:
            pos = subclip_positions(len(idx), t, train_frames, gen)
            x = augment_clips(x[torch.arange(len(idx))[:, None], pos].float(), gen)
        else:
            x = x[:, fixed].float()
        return net(prepare(x), extra[idx])[0]

    return forward


def encode_frames(net, clips: Clips, mirror: bool = False, batch: int = 64) -> np.ndarray:
    """(n, T, hidden) frame features of every sampled frame, the encoder in eval mode (mirrored left-right when
    asked: a flipped view of the same node, the stage-2 counterpart of the flip augmentation)."""
    import torch

    from ..nets.clip_net import prepare

    net.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(clips), batch):
            x = torch.from_numpy(clips.pixels[start:start + batch])
            if mirror:
                x = x.flip(-1)
            out.append(net.frame_features(prepare(x)).numpy())
    return np.concatenate(out) if out else np.zeros((0, clips.pixels.shape[1], 1), np.float32)


def temporal_part(net):
    """A module holding only the temporal layers of `net` (shared, not copied): what stage 2 trains."""
    from torch import nn

    part = nn.Module()
    for name in ("gru", "attention", "head", "out", "size_logit"):
        part.add_module(name, getattr(net, name))
    return part


def temporal_forward(net, features: np.ndarray, mirrored: np.ndarray, extra: np.ndarray):
    """Stage 2: fit_binary's forward over cached frame features (reversal and the mirrored copy as augmentation)."""
    import torch

    feats, flipped, ex = torch.from_numpy(features), torch.from_numpy(mirrored), torch.from_numpy(extra)

    def forward(part, idx, train, gen):
        f = feats[idx]
        if train:
            b = len(idx)
            f = torch.where((torch.rand(b, generator=gen) < 0.5)[:, None, None], flipped[idx], f)
            f = torch.where((torch.rand(b, generator=gen) < 0.5)[:, None, None], f.flip(1), f)
        return net.aggregate(f, ex[idx])[0]

    return forward


def train_clip_net(net, clips: Clips, y: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray, settings, *,
                   train_frames: int, head_epochs: int, checkpoint: str | None, config: dict, progress: bool):
    """Both stages in place on `net`; returns the two TrainResults (stage 2 None when head_epochs is 0)."""
    from ..nets.training import fit_binary

    ckpt = Path(checkpoint) if checkpoint else None
    first = fit_binary(net, whole_network_forward(clips, train_frames), y, train_idx, val_idx, settings,
                       checkpoint=ckpt, config=config, progress=progress, describe="training the clip network")
    if head_epochs <= 0:
        return first, None
    features, mirrored = encode_frames(net, clips), encode_frames(net, clips, mirror=True)
    stage2 = replace(settings, epochs=head_epochs, batch_size=64, lr=settings.lr / 2,
                     patience=max(settings.patience, 10))
    part = temporal_part(net)
    second = fit_binary(part, temporal_forward(net, features, mirrored, clips.extra), y, train_idx, val_idx, stage2,
                        checkpoint=ckpt.with_name(ckpt.name + ".temporal") if ckpt else None,
                        config={**config, "stage": 2}, progress=progress, describe="training the temporal part")
    net.eval()
    return first, second
