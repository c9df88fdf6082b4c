"""MilNet: attention over the real tiles only, order and padding do not matter, and a planted tile is found."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from lymphcast.nets.mil_net import MilNet, prepare_tiles
from lymphcast.nets.training import TrainSettings, fit_binary


def _bags(n: int, k: int, rng: np.random.Generator, share: float = 0.2):
    """Pale tiles with small dark dots; a positive bag has `share` of its tiles with a dark bar instead."""
    tiles = np.full((n, k, 16, 16, 3), 235, np.uint8)
    y = np.arange(n) % 2
    for i in range(n):
        for j in range(k):
            r, c = rng.integers(2, 12, 2)
            tiles[i, j, r:r + 2, c:c + 2] = (90, 60, 140)
        if y[i]:
            for j in rng.choice(k, max(1, int(share * k)), replace=False):
                r = rng.integers(1, 10)
                tiles[i, j, r:r + 5, 3:13] = (70, 40, 120)
    return tiles, y


def test_attention_ignores_padding_and_sums_to_one():
    torch.manual_seed(0)
    net = MilNet(channels=(8, 16), dim=16).eval()
    x = prepare_tiles(torch.randint(0, 255, (2, 6, 16, 16, 3), dtype=torch.uint8))
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 4:] = False
    logits, att = net.attend(x, mask)
    assert torch.allclose(att.sum(1), torch.ones(2))
    assert torch.all(att[1, 4:] == 0)
    alone, _ = net.attend(x[1:, :4], torch.ones(1, 4, dtype=torch.bool))  # the same bag without its padding
    assert torch.allclose(logits[1], alone[0], atol=1e-5)


def test_bag_logit_does_not_depend_on_tile_order():
    torch.manual_seed(1)
    net = MilNet(channels=(8, 16), dim=16).eval()
    x = prepare_tiles(torch.randint(0, 255, (1, 7, 16, 16, 3), dtype=torch.uint8))
    mask = torch.ones(1, 7, dtype=torch.bool)
    shuffled = x[:, torch.randperm(7)]
    assert torch.allclose(net(x, mask), net(shuffled, mask), atol=1e-5)


def test_optical_density_of_white_is_zero():
    white = torch.full((1, 4, 4, 3), 255, dtype=torch.uint8)
    assert float(prepare_tiles(white).abs().max()) == 0.0
    assert prepare_tiles(white).shape == (1, 3, 4, 4)


def test_learns_a_planted_tile_kind():
    rng = np.random.default_rng(0)
    tiles, y = _bags(64, 12, rng)
    x_all = prepare_tiles(torch.from_numpy(tiles))
    mask = torch.ones(len(y), 12, dtype=torch.bool)
    net = MilNet(channels=(8, 16), dim=16, hidden=8)

    def forward(model, idx, train, gen):
        return model(x_all[idx], mask[idx])

    train, test = np.arange(40), np.arange(40, 64)
    fit_binary(net, forward, y, train, test, TrainSettings(epochs=25, batch_size=8, lr=3e-3, patience=25),
               progress=False)
    with torch.no_grad():
        scores = net(x_all[test], mask[test]).numpy()
    assert roc_auc_score(y[test], scores) > 0.9
