"""The one training loop the image modalities share: binary logits, class-weighted loss, early stopping on a
validation set, checkpoint and resume, fixed seeds, a progress bar.

Written here rather than with PyTorch Lightning: the loop is ~100 lines, Lightning would be a large extra
dependency for the same few features, and its checkpoints unpickle arbitrary objects, while ours hold tensors
and numbers only (torch.load with weights_only=True).

The caller provides `forward(net, idx, train, gen) -> logits` for the samples `idx` (it owns the data and the
augmentation) and the labels; everything random draws from one torch.Generator whose state is checkpointed,
so a resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 6        # epochs without a better validation loss before stopping
    seed: int = 0
    score_start: bool = False  # the starting weights compete as "epoch 0" (for a head started from a fitted probe)

    def digest(self, extra: dict | None = None) -> str:
        fields = asdict(self)
        if not self.score_start:  # settings written before this field existed keep their digest (and checkpoints)
            fields.pop("score_start")
        blob = json.dumps({**fields, **(extra or {})}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class TrainResult:
    best_epoch: int
    best_val_loss: float
    epochs_run: int
    history: list[dict] = field(default_factory=list)
    resumed_from: int = 0


Forward = Callable[[torch.nn.Module, np.ndarray, bool, torch.Generator], torch.Tensor]


def _weighted_loss(logits: torch.Tensor, y: torch.Tensor, pos_weight: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, y, pos_weight=torch.tensor(pos_weight))


def _evaluate(net, forward, idx, y, pos_weight, batch, gen) -> float:
    net.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(idx), batch * 4):
            part = idx[start:start + batch * 4]
            total += float(_weighted_loss(forward(net, part, False, gen), y[part], pos_weight)) * len(part)
    return total / max(len(idx), 1)


def _save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a kill mid-save leaves the previous checkpoint intact


def fit_binary(net: torch.nn.Module, forward: Forward, labels: np.ndarray, train_idx: np.ndarray,
               val_idx: np.ndarray, settings: TrainSettings, *, checkpoint: Path | None = None,
               config: dict | None = None, progress: bool = True, describe: str = "training") -> TrainResult:
    """Train `net` in place; on return it holds the weights of the epoch with the lowest validation loss.

    Class imbalance: positives are weighted by negatives/positives in the loss (the caller recalibrates the
    logits afterwards). `checkpoint`: a file written after every epoch; when it exists and was written with
    the same settings and `config`, training resumes from it. `settings.score_start`: the weights `net` starts with
    are scored on the validation set first and kept (best epoch 0) unless an epoch beats them.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    y = torch.as_tensor(labels, dtype=torch.float32)
    n_pos = float(y[train_idx].sum())
    pos_weight = (len(train_idx) - n_pos) / max(n_pos, 1.0)
    opt = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=settings.epochs)
    digest = settings.digest(config)
    result = TrainResult(best_epoch=0, best_val_loss=float("inf"), epochs_run=0)
    best_state = copy.deepcopy(net.state_dict())
    if checkpoint is not None and Path(checkpoint).is_file():
        saved = torch.load(checkpoint, weights_only=True)
        if saved.get("digest") == digest:
            net.load_state_dict(saved["net"])
            opt.load_state_dict(saved["opt"])
            sched.load_state_dict(saved["sched"])
            gen.set_state(saved["gen"])
            if "torch_rng" in saved:  # dropout draws from torch's global generator
                torch.set_rng_state(saved["torch_rng"])
            best_state = saved["best_state"]
            result = TrainResult(saved["best_epoch"], saved["best_val_loss"], saved["epoch"],
                                 list(saved["history"]), resumed_from=saved["epoch"])
    if settings.score_start and result.epochs_run == 0:
        result.best_val_loss = _evaluate(net, forward, val_idx, y, pos_weight, settings.batch_size, gen)
        best_state = copy.deepcopy(net.state_dict())
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} epochs"),
               TextColumn("{task.fields[status]}"), TimeRemainingColumn()]
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task(describe, total=settings.epochs, completed=result.epochs_run, status="")
        for epoch in range(result.epochs_run + 1, settings.epochs + 1):
            if epoch - result.best_epoch > settings.patience and (result.best_epoch > 0 or settings.score_start):
                break
            net.train()
            order = train_idx[torch.randperm(len(train_idx), generator=gen).numpy()]
            train_loss = 0.0
            for start in range(0, len(order), settings.batch_size):
                part = order[start:start + settings.batch_size]
                if len(part) < 2:  # batch norm needs two samples
                    continue
                loss = _weighted_loss(forward(net, part, True, gen), y[part], pos_weight)
                opt.zero_grad()
                loss.backward()
                opt.step()
                train_loss += float(loss.detach()) * len(part)
            sched.step()
            val_loss = _evaluate(net, forward, val_idx, y, pos_weight, settings.batch_size, gen)
            result.history.append({"epoch": epoch, "train_loss": train_loss / len(order), "val_loss": val_loss})
            if val_loss < result.best_val_loss:
                result.best_val_loss, result.best_epoch = val_loss, epoch
                best_state = copy.deepcopy(net.state_dict())
            result.epochs_run = epoch
            bar.update(task, completed=epoch, status=f"val loss {val_loss:.3f} (best {result.best_val_loss:.3f})")
            if checkpoint is not None:
                _save(Path(checkpoint), {"digest": digest, "epoch": epoch, "net": net.state_dict(),
                                         "opt": opt.state_dict(), "sched": sched.state_dict(),
                                         "gen": gen.get_state(), "torch_rng": torch.get_rng_state(),
                                         "best_state": best_state,
                                         "best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
                                         "history": result.history})
    net.load_state_dict(best_state)
    net.eval()
    return result
