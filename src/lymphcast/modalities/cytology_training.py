"""Training the cytology MIL network in two stages (nets.training's loop for both).

1. The tile encoder learns alone: every tile carries its patient's label and a linear tile head scores it.
   Each epoch draws `tiles_per_patient` fresh tiles of every training patient, augmented (stain jitter in the
   stains' own space, focus, orientation). Hundreds of thousands of noisily labelled tiles teach which cell
   pictures are commoner in patients with N1b (hobnail, tall, dispersed, micropapillary) far more steadily than
   a few hundred bags do: end-to-end training on bags alone overfitted within a few epochs on 2 CPU cores.
2. The encoder is frozen; every tile is embedded once, and the attention pooling and head learn from whole bags
   of embeddings (cheap: no image passes through the encoder again).
Early stopping in both stages on the validation patients (stage 1: their tiles' loss on a fixed subset).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cytology_bags import Bags

EVAL_CHUNK = 4  # patients per forward pass when scoring whole bags (a bag may hold 1,000 tiles)


@dataclass(frozen=True)
class StageSettings:
    tile_epochs: int = 15
    tiles_per_patient: int = 64
    bag_epochs: int = 100
    batch_size: int = 8          # patients per step in stage 2
    tile_batch: int = 128        # tiles per step in stage 1
    lr: float = 2e-3
    patience: int = 6
    bag_patience: int = 15
    eval_tiles: int = 64         # per validation patient, fixed, in stage 1
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


def _tile_forward(bags: Bags, members, basis, n_train: int, per_patient: int, val_tiles: list[np.ndarray]):
    """Stage 1 forward over samples: sample i < n_train * per_patient is a random tile of training patient
    i // per_patient (drawn afresh each call); the validation samples are fixed tiles (val_tiles)."""
    import torch

    from ..nets.mil_net import prepare_tiles
    from ..nets.stain_augment import augment_bags

    def forward(net, idx, train, gen):
        rows = np.empty(len(idx), int)
        for j, i in enumerate(idx):
            if i < n_train * per_patient:
                mine = members[i // per_patient]
                rows[j] = mine[int(torch.randint(0, len(mine), (1,), generator=gen))]
            else:
                rows[j] = val_tiles[i - n_train * per_patient]
        x = prepare_tiles(torch.from_numpy(bags.tiles[rows]))[:, None]
        if train:
            x = augment_bags(x, basis, gen)
        return net.tile_head(net.encoder(x[:, 0])).squeeze(-1)

    return forward


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
    return np.concatenate(out) if out else np.zeros((0, net.tile_head.in_features), np.float32)


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
    """Train `net` (MilNet) in place on the patients `train_idx` (rows of bags.patient_ids, labels `y`),
    stopping early on `val_idx`. Returns both stages' histories and best epochs. `checkpoint`: a file that
    stage 1 (the long one) is checkpointed to and resumed from."""
    from ..nets.training import TrainSettings, fit_binary

    members = bags.members()
    rng = np.random.default_rng(settings.seed)
    per = settings.tiles_per_patient
    val_tiles = [np.sort(rng.choice(members[i], min(settings.eval_tiles, len(members[i])), replace=False))
                 for i in val_idx]
    val_rows = np.concatenate(val_tiles) if val_tiles else np.zeros(0, int)
    n_train = len(train_idx)
    tile_labels = np.concatenate([np.repeat(y[train_idx], per), np.concatenate(
        [np.full(len(t), y[i]) for t, i in zip(val_tiles, val_idx)]) if val_tiles else np.zeros(0)]).astype(int)
    train_members = [members[i] for i in train_idx]
    stage1 = fit_binary(net, _tile_forward(bags, train_members, basis, n_train, per, val_rows), tile_labels,
                        np.arange(n_train * per), np.arange(n_train * per, len(tile_labels)),
                        TrainSettings(epochs=settings.tile_epochs, batch_size=settings.tile_batch, lr=settings.lr,
                                      patience=settings.patience, seed=settings.seed),
                        checkpoint=checkpoint, config=config, progress=progress, describe="cytology: tile encoder")
    for p in net.encoder.parameters():
        p.requires_grad_(False)
    embeddings = embed_all(net, bags)
    encoder_state = {k: v.clone() for k, v in net.encoder.state_dict().items()}
    stage2 = fit_binary(net, _bag_forward(embeddings, members), y, train_idx, val_idx,
                        TrainSettings(epochs=settings.bag_epochs, batch_size=settings.batch_size, lr=settings.lr,
                                      patience=settings.bag_patience, seed=settings.seed),
                        progress=progress, describe="cytology: attention pooling")
    net.encoder.load_state_dict(encoder_state)  # batch-norm statistics stay those of stage 1
    for p in net.encoder.parameters():
        p.requires_grad_(True)
    return {"tile_history": stage1.history, "tile_best_epoch": stage1.best_epoch,
            "history": stage2.history, "best_epoch": stage2.best_epoch, "epochs_run": stage2.epochs_run}
