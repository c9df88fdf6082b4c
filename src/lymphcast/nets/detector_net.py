"""A small segmentation network for "inside a node" probability maps, and the loop that trains it.

The network is MONAI's UNet with few channels but six levels (a receptive field wider than the largest
node): at 128 x 128 it trains at ~4.5 ms per frame on a 2-core CPU, ~6 s per epoch for 1,200 frames. The loop is generic: the caller supplies the batches (and so the
augmentation), the loop owns the optimiser, the loss (BCE + soft Dice, since nodes cover a small part of a
frame), early stopping on the validation loss, and keeps the best epoch's weights.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

# images (b, 1, h, w) float, targets (b, 1, h, w) in [0, 1], optional per-pixel loss weights (b, 1, h, w)
Batch = tuple[torch.Tensor, ...]


def detector_net(channels: Sequence[int] = (8, 16, 32, 64, 128, 256), *, res_units: int = 2) -> nn.Module:
    """A 2-D UNet, one grey input channel, one logit output channel; len(channels) - 1 stride-2 levels."""
    from monai.networks.nets import UNet

    channels = tuple(int(c) for c in channels)
    if len(channels) < 2:
        raise ValueError("channels needs at least two levels, e.g. (8, 16, 32, 64)")
    # ReLU rather than MONAI's default PReLU, and channels-last memory: together ~35% faster on CPU
    net = UNet(spatial_dims=2, in_channels=1, out_channels=1, channels=channels,
               strides=(2,) * (len(channels) - 1), num_res_units=res_units, norm="batch", act="relu")
    return net.to(memory_format=torch.channels_last)


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """`x` (b, c, h, w) in the memory layout detector_net runs fastest on."""
    return x.contiguous(memory_format=torch.channels_last)


def seg_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy (per-pixel `weight`ed, mean over pixels) plus soft Dice over the whole batch
    (Dice keeps the rare foreground from being ignored)."""
    bce = nn.functional.binary_cross_entropy_with_logits(logits, target, weight=weight)
    prob = torch.sigmoid(logits)
    dice = 1 - (2 * (prob * target).sum() + 1) / (prob.sum() + target.sum() + 1)
    return bce + dice


@dataclass
class TrainResult:
    state: dict                       # the best epoch's state_dict (CPU tensors)
    best_epoch: int                   # 1-based
    history: list[dict] = field(default_factory=list)  # per epoch: epoch, train_loss, val_loss, seconds
    seconds: float = 0.0


def train_segmenter(net: nn.Module, train_batches: Callable[[np.random.Generator], Iterable[Batch]],
                    val_batches: Sequence[Batch], *, epochs: int, lr: float = 3e-3, seed: int = 0,
                    patience: int = 4, progress: bool = True, description: str = "training") -> TrainResult:
    """Train `net` in place for up to `epochs` epochs; `train_batches(rng)` yields one epoch of batches.

    Early stopping: stops after `patience` epochs without a lower validation loss, and loads the best
    epoch's weights back into `net` (with no validation batches, the last epoch is kept).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    # cosine decay to the planned end: early epochs move fast, late epochs refine
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1), eta_min=lr * 0.05)
    best, best_epoch, best_state, history = np.inf, 0, None, []
    start = time.perf_counter()
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn())
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task(description, total=epochs, info="")
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            net.train()
            losses = []
            for x, *y in train_batches(rng):
                opt.zero_grad(set_to_none=True)
                loss = seg_loss(net(channels_last(x)), *y)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
            sched.step()
            val = evaluate_loss(net, val_batches) if len(val_batches) else float(np.mean(losses))
            history.append({"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else float("nan"),
                            "val_loss": val, "seconds": time.perf_counter() - t0})
            if val < best:
                best, best_epoch, best_state = val, epoch, copy.deepcopy(net.state_dict())
            bar.update(task, advance=1, info=f"val loss {val:.3f} (best {best:.3f} @ {best_epoch})")
            if epoch - best_epoch >= patience:
                break
    if best_state is None:  # no epoch ran (epochs=0 or no batches): keep the initial weights
        best_state = copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    net.eval()
    state = {k: v.detach().cpu().clone() for k, v in best_state.items()}
    return TrainResult(state, best_epoch, history, time.perf_counter() - start)


@torch.no_grad()
def evaluate_loss(net: nn.Module, batches: Sequence[Batch]) -> float:
    net.eval()
    total, count = 0.0, 0
    for x, *y in batches:
        total += float(seg_loss(net(channels_last(x)), *y)) * len(x)
        count += len(x)
    return total / max(count, 1)
