"""Training the cytology MIL network in two stages.

1. The tile encoder learns without labels (contrastive, SimCLR: Chen et al., ICML 2020): two augmented views of
   each tile (stain jitter in the stains' own space, focus, orientation) are pulled together and away from the
   other tiles of the batch, so the encoder describes what a tile shows (the cells' shapes and arrangement) and
   not its stain or orientation. Every tile of the training patients can teach it, labels or not: on 2 CPU cores
   this gave better features than training on a few hundred patient labels (end-to-end on bags, or on tiles
   labelled with their patient's N1b), which fitted noise within a few epochs and transferred worse to the lab
   with the other stain (benchmarks/bench_cytology.py).
2. The encoder is frozen; every tile is embedded once, and the gated attention and the linear head learn from
   whole bags of embeddings on the patient labels (nets.training: class weights, early stopping on the
   validation patients, checkpoint/resume). The head starts from a linear probe (`probe_head`: a cross-validated
   ridge logistic regression on each training patient's mean tile embedding) and that start competes as epoch 0:
   from a random head, a fresh cohort (seed 67) never beat its first epoch on ~100 validation patients and kept a
   head that ranked patients at chance (AUC 0.44 on the other lab's centre; 0.59 from the probe's start).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cytology_bags import Bags

EVAL_CHUNK = 4  # patients per forward pass when scoring whole bags (a bag may hold 1,000 tiles)


@dataclass(frozen=True)
class StageSettings:
    ssl_epochs: int = 6
    ssl_steps: int = 150         # contrastive steps per epoch
    ssl_batch: int = 256         # tiles per contrastive step (two views each)
    temperature: float = 0.2
    bag_epochs: int = 150
    batch_size: int = 8          # patients per step in stage 2
    lr: float = 2e-3
    patience: int = 20
    seed: int = 0


def padded(tiles: np.ndarray, groups: list[np.ndarray]):
    """Tiles of several patients as one padded batch: (B, K, 3, s, s) optical density and a (B, K) mask."""
    import torch

    from ..nets.mil_net import prepare_tiles

    k = max(1, max((len(g) for g in groups), default=1))
    s = tiles.shape[1]
    batch = np.full((len(groups), k, s, s, 3), 255, np.uint8)
    mask = np.zeros((len(groups), k), bool)
    for i, rows in enumerate(groups):
        batch[i, :len(rows)] = tiles[rows]
        mask[i, :len(rows)] = True
    return prepare_tiles(torch.from_numpy(batch)), torch.from_numpy(mask)


def pretrain_encoder(net, tiles: np.ndarray, basis, settings: StageSettings, *, progress: bool = True) -> list[dict]:
    """Contrastive pretraining of net.encoder on `tiles` (uint8, N x s x s x 3); returns the loss per epoch."""
    import torch
    import torch.nn.functional as F
    from rich.progress import Progress

    from ..nets.mil_net import prepare_tiles
    from ..nets.stain_augment import augment_bags

    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    dim = net.tile_head_dim
    projector = torch.nn.Sequential(torch.nn.Linear(dim, dim), torch.nn.ReLU(), torch.nn.Linear(dim, dim // 2))
    params = list(net.encoder.parameters()) + list(projector.parameters())
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=1e-4)
    batch = min(settings.ssl_batch, len(tiles))
    target = torch.cat([torch.arange(batch, 2 * batch), torch.arange(0, batch)])  # each view's twin
    history = []
    net.encoder.train()
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("cytology: contrastive tile encoder", total=settings.ssl_epochs * settings.ssl_steps)
        for epoch in range(settings.ssl_epochs):
            total = 0.0
            for _ in range(settings.ssl_steps):
                rows = torch.randperm(len(tiles), generator=gen)[:batch].numpy()
                x = prepare_tiles(torch.from_numpy(tiles[np.sort(rows)]))[:, None]
                views = torch.cat([augment_bags(x, basis, gen)[:, 0], augment_bags(x, basis, gen)[:, 0]])
                z = F.normalize(projector(net.encoder(views)), dim=1)
                sim = (z @ z.T) / settings.temperature
                sim = sim.masked_fill(torch.eye(len(z), dtype=torch.bool), float("-inf"))  # not itself
                loss = F.cross_entropy(sim, target)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach())
                bar.advance(task)
            history.append({"epoch": epoch + 1, "contrastive_loss": total / settings.ssl_steps})
    return history


def embed_all(net, bags: Bags, batch: int = 512) -> np.ndarray:
    """(N, D) embeddings of every tile, with the network in evaluation mode."""
    import torch

    from ..nets.mil_net import prepare_tiles

    net.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(bags.tiles), batch):
            x = prepare_tiles(torch.from_numpy(bags.tiles[start:start + batch]))
            out.append(net.encoder(x).numpy())
    return np.concatenate(out) if out else np.zeros((0, net.tile_head_dim), np.float32)


def probe_head(net, embeddings: np.ndarray, members, y: np.ndarray, train_idx: np.ndarray, seed: int = 0) -> dict:
    """Start net's linear head from a ridge logistic regression of N1b on the training patients' mean tile
    embeddings (class-balanced like the training loss; penalty by 5-fold cross-validated log loss). Its weights
    go half to the attention-pooled and half to the mean part of the head: attention starts near uniform, so
    both parts start near the mean and the starting logit is the probe's, while attention still gets gradients."""
    import torch
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    means = np.stack([embeddings[members[i]].mean(0) for i in train_idx])
    labels = y[train_idx]
    centre, scale = means.mean(0), means.std(0) + 1e-6
    folds = StratifiedKFold(max(2, min(5, int(labels.sum()), int((1 - labels).sum()))), shuffle=True, random_state=seed)
    probe = LogisticRegressionCV(Cs=np.logspace(-4, 1, 11), l1_ratios=(0.0,), cv=folds, scoring="neg_log_loss",
                                 class_weight="balanced", max_iter=5000,
                                 use_legacy_attributes=False).fit((means - centre) / scale, labels)
    w = probe.coef_[0] / scale
    b = float(probe.intercept_[0] - np.sum(w * centre))
    dim = net.tile_head_dim
    linear = net.head[-1]
    with torch.no_grad():
        linear.weight[0, :dim] = torch.as_tensor(w / 2, dtype=linear.weight.dtype)
        linear.weight[0, dim:] = torch.as_tensor(w / 2, dtype=linear.weight.dtype)
        linear.bias.fill_(b)
    return {"C": float(np.ravel(probe.C_)[0])}


def _bag_forward(embeddings: np.ndarray, members):
    import torch

    def forward(net, idx, train, gen):
        groups = [members[i] for i in idx]
        k = max(len(g) for g in groups)
        h = np.zeros((len(groups), k, embeddings.shape[1]), np.float32)
        mask = np.zeros((len(groups), k), bool)
        for i, rows in enumerate(groups):
            h[i, :len(rows)], mask[i, :len(rows)] = embeddings[rows], True
        return net.bag_logits(torch.from_numpy(h), torch.from_numpy(mask))

    return forward


def train_two_stage(net, bags: Bags, y: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray, basis,
                    settings: StageSettings, *, checkpoint=None, config: dict | None = None,
                    progress: bool = True) -> dict:
    """Train `net` (MilNet) in place on the patients `train_idx` (rows of bags.patient_ids, labels `y`), the
    attention stage stopping early on `val_idx`. Only the training patients' tiles teach the encoder.
    `checkpoint`: a file the attention stage is checkpointed to and resumed from."""
    from ..nets.training import TrainSettings, fit_binary

    members = bags.members()
    rows = np.concatenate([members[i] for i in train_idx])
    ssl = pretrain_encoder(net, bags.tiles[rows], basis, settings, progress=progress)
    for p in net.encoder.parameters():
        p.requires_grad_(False)
    embeddings = embed_all(net, bags)
    probe = probe_head(net, embeddings, members, y, train_idx, settings.seed)
    stage2 = fit_binary(net, _bag_forward(embeddings, members), y, train_idx, val_idx,
                        TrainSettings(epochs=settings.bag_epochs, batch_size=settings.batch_size, lr=settings.lr,
                                      patience=settings.patience, seed=settings.seed, score_start=True),
                        checkpoint=checkpoint, config=config, progress=progress,
                        describe="cytology: attention pooling")
    for p in net.encoder.parameters():
        p.requires_grad_(True)
    return {"ssl_history": ssl, "probe": probe, "history": stage2.history, "best_epoch": stage2.best_epoch,
            "epochs_run": stage2.epochs_run, "resumed_from": stage2.resumed_from}
