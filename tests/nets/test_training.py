"""fit_binary: learns a tiny separable image problem, is reproducible, stops early, weighs classes, restores the
best epoch, writes its checkpoint atomically, and resumes exactly where an interrupted run stopped — but only
from a checkpoint written with the same settings and config."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import nn

from lymphcast.modalities.us_regions import EXTRA
from lymphcast.nets.node_cnn import NodeNet, prepare
from lymphcast.nets.training import TrainResult, TrainSettings, fit_binary

N_TRAIN, N_VAL = 64, 32
SETTINGS = TrainSettings(epochs=6, batch_size=16, lr=1e-2, patience=10, seed=1)
TRAIN, VAL = np.arange(N_TRAIN), np.arange(N_TRAIN, N_TRAIN + N_VAL)


@pytest.fixture(scope="module")
def data():
    """32x32 speckle; positives carry a bright 6x6 blob somewhere; one view per node, no Doppler."""
    rng = np.random.default_rng(0)
    n = N_TRAIN + N_VAL
    y = (np.arange(n) % 2).astype(float)
    img = rng.integers(0, 90, (n, 1, 2, 32, 32)).astype(np.uint8)
    img[:, :, 1] = 0
    for i in np.flatnonzero(y == 1):
        cy, cx = rng.integers(6, 26, 2)
        img[i, 0, 0, cy - 3:cy + 3, cx - 3:cx + 3] = 250
    x = prepare(torch.as_tensor(img))
    return x, torch.zeros(n, 1, EXTRA), torch.ones(n, 1, dtype=torch.bool), y


def _forward(data, log: list | None = None):
    x, extra, present, _ = data

    def forward(net, idx, train, gen):
        if log is not None:
            log.append((bool(train), len(idx)))
        idx = torch.as_tensor(idx)
        return net(x[idx], extra[idx], present[idx])

    return forward


def _new_net(seed=0) -> NodeNet:
    torch.manual_seed(seed)
    return NodeNet(channels=(4, 8), hidden=16)  # default dropout: exercises torch's global generator


def replace_epochs(epochs: int) -> TrainSettings:
    return TrainSettings(**{**SETTINGS.__dict__, "epochs": epochs})


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def reference(data):
    """One uninterrupted run without a checkpoint, shared by the tests that compare against it."""
    net = _new_net()
    result = fit_binary(net, _forward(data), data[3], TRAIN, VAL, SETTINGS, progress=False)
    return net, result


def test_learns_a_separable_problem_and_returns_the_best_epoch(data, reference):
    net, result = reference
    x, extra, present, y = data
    assert isinstance(result, TrainResult) and result.resumed_from == 0
    assert result.epochs_run == SETTINGS.epochs == len(result.history)
    assert [h["epoch"] for h in result.history] == list(range(1, SETTINGS.epochs + 1))
    val_losses = [h["val_loss"] for h in result.history]
    assert result.best_val_loss == min(val_losses) and result.best_epoch == 1 + int(np.argmin(val_losses))
    assert val_losses[result.best_epoch - 1] < 0.5 * val_losses[0]
    assert not net.training  # handed back in eval mode
    with torch.no_grad():
        logits = net(x[VAL], extra[VAL], present[VAL])
    assert roc_auc_score(y[VAL], logits.numpy()) > 0.95
    # the weights handed back are those of the best epoch: their validation loss is the recorded best
    # (balanced training labels, so the class weight is 1 and the loss is plain cross-entropy)
    loss = F.binary_cross_entropy_with_logits(logits, torch.as_tensor(y[VAL], dtype=torch.float32))
    assert float(loss) == pytest.approx(result.best_val_loss, rel=1e-5)


def test_same_seed_same_run_and_another_seed_differs(data, reference):
    net, result = reference
    again = _new_net()
    r2 = fit_binary(again, _forward(data), data[3], TRAIN, VAL, SETTINGS, progress=False)
    assert r2.history == result.history and _same_weights(again, net)
    other = _new_net()
    r3 = fit_binary(other, _forward(data), data[3], TRAIN, VAL, TrainSettings(**{**SETTINGS.__dict__, "seed": 2}),
                    progress=False)
    assert r3.history != result.history


def test_checkpoint_is_written_atomically(data, tmp_path):
    ckpt = tmp_path / "run" / "node.pt"
    ckpt.parent.mkdir()
    fit_binary(_new_net(), _forward(data), data[3], TRAIN, VAL, replace_epochs(2), checkpoint=ckpt, progress=False)
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["node.pt"]  # no temporary file left behind
    saved = torch.load(ckpt, weights_only=True)  # tensors and numbers only
    assert saved["epoch"] == 2 and len(saved["history"]) == 2


def test_a_crash_while_saving_keeps_the_previous_checkpoint(data, tmp_path, monkeypatch):
    ckpt = tmp_path / "node.pt"
    real_save, calls = torch.save, []

    def dying_save(obj, path, *a, **kw):
        calls.append(path)
        if len(calls) == 3:  # third epoch: half a file, then the process "dies"
            Path(path).write_bytes(b"\x80\x02partial")
            raise KeyboardInterrupt
        return real_save(obj, path, *a, **kw)

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        fit_binary(_new_net(), _forward(data), data[3], TRAIN, VAL, SETTINGS, checkpoint=ckpt, progress=False)
    assert Path(calls[-1]) != ckpt  # the partial write went to a temporary file, not over the checkpoint
    assert torch.load(ckpt, weights_only=True)["epoch"] == 2
    monkeypatch.setattr(torch, "save", real_save)
    result = fit_binary(_new_net(), _forward(data), data[3], TRAIN, VAL, SETTINGS, checkpoint=ckpt, progress=False)
    assert result.resumed_from == 2 and result.epochs_run == SETTINGS.epochs


def test_an_interrupted_run_resumes_exactly_as_if_never_stopped(data, reference, tmp_path):
    ref_net, ref = reference
    ckpt, log = tmp_path / "node.pt", []
    train_batches = math.ceil(N_TRAIN / SETTINGS.batch_size)
    forward = _forward(data, log)

    def interrupted(net, idx, train, gen):
        if train and sum(t for t, _ in log) == 3 * train_batches:  # the 4th epoch starts: Ctrl-C
            raise KeyboardInterrupt
        return forward(net, idx, train, gen)

    with pytest.raises(KeyboardInterrupt):
        fit_binary(_new_net(), interrupted, data[3], TRAIN, VAL, SETTINGS, checkpoint=ckpt, config={"size": 32},
                   progress=False)
    log.clear()
    net = _new_net(seed=123)  # whatever it starts from, the checkpoint's weights replace it
    result = fit_binary(net, forward, data[3], TRAIN, VAL, SETTINGS, checkpoint=ckpt, config={"size": 32},
                        progress=False)
    assert result.resumed_from == 3 and result.epochs_run == SETTINGS.epochs
    assert sum(t for t, _ in log) == (SETTINGS.epochs - 3) * train_batches  # only the missing epochs were trained
    assert result.history == ref.history and result.best_epoch == ref.best_epoch
    assert _same_weights(net, ref_net)  # data order, dropout and optimiser state all continued exactly

    # a finished run found again is not retrained
    log.clear()
    again = _new_net(seed=7)
    done = fit_binary(again, forward, data[3], TRAIN, VAL, SETTINGS, checkpoint=ckpt, config={"size": 32},
                      progress=False)
    assert done.resumed_from == SETTINGS.epochs and not any(t for t, _ in log)
    assert done.history == ref.history and _same_weights(again, ref_net)


@pytest.mark.parametrize("change", [{"config": {"size": 64}}, {"config": None}, {"settings": {"lr": 5e-3}},
                                    {"settings": {"epochs": 8}}])
def test_a_checkpoint_of_other_settings_or_config_is_ignored(data, tmp_path, change):
    """The digest covers every setting (epochs too: the cosine schedule depends on it) and the config."""
    ckpt, log = tmp_path / "node.pt", []
    short = replace_epochs(2)
    fit_binary(_new_net(), _forward(data), data[3], TRAIN, VAL, short, checkpoint=ckpt, config={"size": 32},
               progress=False)
    settings = TrainSettings(**{**short.__dict__, **change.get("settings", {})})
    config = change.get("config", {"size": 32})
    result = fit_binary(_new_net(), _forward(data, log), data[3], TRAIN, VAL, settings, checkpoint=ckpt,
                        config=config, progress=False)
    assert result.resumed_from == 0 and result.epochs_run == settings.epochs
    assert sum(t for t, _ in log) == settings.epochs * math.ceil(N_TRAIN / settings.batch_size)
    # the checkpoint now belongs to the new run: the same call finds it and resumes at its end
    log.clear()
    back = fit_binary(_new_net(), _forward(data, log), data[3], TRAIN, VAL, settings, checkpoint=ckpt,
                      config=config, progress=False)
    assert back.resumed_from == settings.epochs and not any(t for t, _ in log)


# --- early stopping, class weights, tiny batches: a scripted validation loss ------------------------------

class _Scripted:
    """A one-weight model whose validation logits follow a script, one value per epoch."""

    def __init__(self, val_logits):
        self.val_logits, self.epoch = list(val_logits), 0
        self.weights_at_eval: list[torch.Tensor] = []
        self.train_sizes: list[int] = []

    def __call__(self, net, idx, train, gen):
        if train:
            self.train_sizes.append(len(idx))
            return net(torch.ones(len(idx), 1)).squeeze(-1)
        self.weights_at_eval.append(net.weight.detach().clone())
        value = self.val_logits[self.epoch]
        self.epoch += 1
        return torch.full((len(idx),), float(value))


def _linear():
    torch.manual_seed(0)
    return nn.Linear(1, 1)


def test_early_stopping_after_patience_epochs_without_improvement():
    labels = np.r_[np.ones(3), np.zeros(14), np.ones(4)]  # train: 3 positives, 14 negatives; val: 4 positives
    train, val = np.arange(17), np.arange(17, 21)
    # all validation labels are 1, so the loss falls as the logit rises: best at epoch 3, worse afterwards
    script = _Scripted([0.0, 1.0, 2.0, 1.5, 1.0, 0.5, 0.0, -1.0] + [-2.0] * 20)
    net = _linear()
    settings = TrainSettings(epochs=30, batch_size=8, lr=0.1, patience=3, seed=0)
    result = fit_binary(net, script, labels, train, val, settings, progress=False)
    assert result.best_epoch == 3 and result.epochs_run == 3 + 3 < settings.epochs
    assert len(result.history) == result.epochs_run
    losses = [h["val_loss"] for h in result.history]
    assert losses[2] == min(losses) and all(a > b for a, b in zip(losses[3:], losses[2:]))
    # positives weigh negatives / positives = 14 / 3 in the loss
    assert result.best_val_loss == pytest.approx(14 / 3 * math.log1p(math.exp(-2.0)), rel=1e-5)
    # the model handed back is the one validated at epoch 3, not the last one
    assert torch.equal(net.weight.detach(), script.weights_at_eval[2])
    assert not torch.equal(script.weights_at_eval[2], script.weights_at_eval[-1])
    # 17 samples in batches of 8: the single left-over sample is skipped (batch norm needs two)
    assert set(script.train_sizes) == {8} and len(script.train_sizes) == 2 * result.epochs_run


def test_a_flat_validation_loss_is_not_an_improvement():
    labels = np.r_[np.ones(4), np.zeros(4), np.ones(2)]
    script = _Scripted([0.5] * 30)
    result = fit_binary(_linear(), script, labels, np.arange(8), np.arange(8, 10),
                        TrainSettings(epochs=30, batch_size=4, patience=2, seed=0), progress=False)
    assert result.best_epoch == 1 and result.epochs_run == 3


def test_a_scored_start_is_kept_when_no_epoch_beats_it():
    labels = np.r_[np.ones(4), np.zeros(4), np.ones(2)]
    # validation labels are 1: the start (logit 3) is better than every trained epoch (logits 2, 1, 0, ...)
    script = _Scripted([3.0, 2.0, 1.0, 0.0, -1.0] + [-2.0] * 30)
    net = _linear()
    start = net.weight.detach().clone()
    settings = TrainSettings(epochs=30, batch_size=4, patience=2, seed=0, score_start=True)
    result = fit_binary(net, script, labels, np.arange(8), np.arange(8, 10), settings, progress=False)
    assert result.best_epoch == 0 and result.epochs_run == 2  # patience counts from the start
    assert torch.equal(net.weight.detach(), start)
    assert result.best_val_loss == pytest.approx(math.log1p(math.exp(-3.0)), rel=1e-5)
    # without it the same run keeps its first epoch, and the setting leaves older digests unchanged
    plain = fit_binary(_linear(), _Scripted([3.0, 2.0, 1.0, 0.0, -1.0] + [-2.0] * 30), labels, np.arange(8),
                       np.arange(8, 10), TrainSettings(epochs=30, batch_size=4, patience=2, seed=0), progress=False)
    assert plain.best_epoch == 1
    old = {k: v for k, v in TrainSettings(seed=0).__dict__.items() if k != "score_start"}
    blob = json.dumps(old, sort_keys=True, default=str)
    assert TrainSettings(seed=0).digest() == hashlib.sha256(blob.encode()).hexdigest()[:16]
    assert TrainSettings(seed=0).digest() != TrainSettings(seed=0, score_start=True).digest()
