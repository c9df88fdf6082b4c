"""The clip model's two training stages, its timing input and the single-frame (key frame) comparison."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lymphcast.cohort import LymphCastError, read_cohort
from lymphcast.modalities.us_video import UsVideoModel
from lymphcast.modalities.us_video_clips import CLIP_EXTRA, clip_extra, frame_interval, node_clips
from lymphcast.modalities.us_video_training import (encode_frames, subclip_positions, temporal_forward,
                                                    temporal_part, train_clip_net)
from lymphcast.nets.clip_net import ClipNet
from lymphcast.nets.training import TrainSettings, fit_binary


@pytest.fixture(scope="module")
def cohort(synth_video_cohort_dir):
    return read_cohort(synth_video_cohort_dir)


@pytest.fixture(scope="module")
def clips(cohort):
    return node_clips(cohort, frames=6, size=24, progress=False)


def test_subclips_are_ordered_distinct_and_vary():
    gen = torch.Generator().manual_seed(0)
    pos = subclip_positions(50, 16, 6, gen)
    assert pos.shape == (50, 6)
    assert (pos.diff(dim=1) > 0).all() and pos.min() >= 0 and pos.max() < 16
    assert len({tuple(p.tolist()) for p in pos}) > 40
    assert subclip_positions(3, 4, 6, gen).tolist() == [[0, 1, 2, 3]] * 3  # fewer frames than asked: all of them


def test_duration_is_an_input_and_timing_falls_back_to_the_frame_rate(clips, cohort):
    assert clips.extra.shape[1] == CLIP_EXTRA
    rows = cohort.nodes.set_index("node_id").loc[clips.node_ids]
    seconds = rows["us_video_frames"] / rows["us_video_fps"]
    np.testing.assert_allclose(np.exp(clips.extra[:, -1]), seconds, rtol=0.02)
    assert frame_interval([0.0, 0.04, 0.08, np.nan], None) == pytest.approx(0.04)
    assert frame_interval([np.nan, np.nan], 20) == pytest.approx(0.05)
    assert frame_interval([], None) == pytest.approx(1 / 25)
    extra = clip_extra((10, 10, 30, 20), 0.1, (128, 128), 50, 0.04)
    np.testing.assert_allclose(extra[[0, 1, 6]], np.log([2.0, 1.0, 2.0]), rtol=1e-6)


def test_key_sampling_repeats_the_key_frame_without_timing(cohort):
    key = node_clips(cohort, frames=2, size=24, sampling="key", progress=False)
    rows = cohort.nodes.set_index("node_id").loc[key.node_ids]
    assert (key.frames[:, 0] == rows["us_video_key_frame"].to_numpy()).all()
    assert (key.pixels[:, 0] == key.pixels[:, 1]).all() and (key.extra[:, -1] == 0).all()
    with pytest.raises(LymphCastError, match="sampling must be one of sweep, key"):
        node_clips(cohort, sampling="middle", progress=False)


def test_second_stage_trains_only_the_temporal_layers(clips):
    torch.manual_seed(0)
    net = ClipNet(channels=(4, 8), hidden=8, extra=CLIP_EXTRA)
    part = temporal_part(net)
    assert {id(p) for p in part.parameters()} < {id(p) for p in net.parameters()}
    assert not any(name.startswith(("encoder", "frame_proj")) for name, _ in part.named_parameters())
    y = (np.arange(len(clips)) % 2).astype(float)
    idx = np.arange(len(clips))
    train, val = idx[: len(idx) * 3 // 4], idx[len(idx) * 3 // 4:]
    feats = encode_frames(net, clips)
    assert feats.shape == (len(clips), clips.pixels.shape[1], 8)
    assert not np.allclose(feats, encode_frames(net, clips, mirror=True))
    frozen = {k: v.clone() for k, v in net.state_dict().items() if k.startswith(("encoder", "frame_proj"))}
    gru = net.gru.weight_ih_l0.detach().clone()
    forward = temporal_forward(net, feats, encode_frames(net, clips, mirror=True), clips.extra)
    fit_binary(part, forward, y, train, val, TrainSettings(epochs=3, batch_size=16, patience=3), progress=False)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in frozen.items())
    assert not torch.equal(gru, net.gru.weight_ih_l0)


def test_both_stages_run_and_report(clips):
    torch.manual_seed(0)
    net = ClipNet(channels=(4, 8), hidden=8, extra=CLIP_EXTRA)
    y = (np.arange(len(clips)) % 2).astype(float)
    idx = np.arange(len(clips))
    first, second = train_clip_net(net, clips, y, idx[:40], idx[40:], TrainSettings(epochs=1, batch_size=16),
                                   train_frames=3, head_epochs=2, checkpoint=None, config={}, progress=False)
    assert first.epochs_run == 1 and 1 <= second.epochs_run <= 2 and not net.training


def test_single_frame_model_fits_and_scores(cohort):
    model = UsVideoModel(seed=1, epochs=1, head_epochs=1, frames=1, train_frames=1, size=24, channels=(4, 8),
                         sampling="key", progress=False).fit(cohort.in_centres(["A", "B", "C"]))
    p = model.predict_proba(cohort.in_centres(["D"]))
    assert p.notna().all() and p.between(0, 1).all()


def test_size_numbers_are_standardised_and_reach_the_logit_directly():
    """The numbers are standardised with the training rows' statistics (kept in the weights), and a network whose
    frames say nothing learns a label that only the node's size carries within two epochs at the model's learning
    rate (fed as raw log-millimetres to the deep head alone, the same network reached 0.73)."""
    gen = np.random.default_rng(0)
    n, t = 240, 3
    extra = np.zeros((n, CLIP_EXTRA), np.float32)
    extra[:, 0] = gen.normal(2.0, 0.25, n)  # log width in mm: a narrow spread, as in real nodes
    extra[:, 1] = extra[:, 0] + gen.normal(-0.3, 0.1, n)
    extra[:, 2] = 1.0  # a constant column is only centred
    y = (extra[:, 0] + gen.normal(0, 0.08, n) > 2.15).astype(float)
    frames = torch.from_numpy(gen.normal(0, 1, (n, t, 2, 16, 16)).astype(np.float32))
    torch.manual_seed(0)
    net = ClipNet(channels=(4, 8), hidden=8, extra=CLIP_EXTRA)
    net.set_extra_scale(extra[:160])
    assert torch.allclose(net.extra_mean[0], torch.tensor(float(extra[:160, 0].mean())))
    assert net.extra_scale[2] == 1.0 and net.extra_scale[0] == pytest.approx(float(extra[:160, 0].std(ddof=1)), 1e-4)
    again = ClipNet(channels=(4, 8), hidden=8, extra=CLIP_EXTRA)
    again.load_state_dict(net.state_dict())
    assert torch.equal(again.extra_mean, net.extra_mean)  # the statistics travel with the weights
    ex = torch.from_numpy(extra)

    def forward(model, idx, train, g):
        return model(frames[idx], ex[idx])[0]

    idx = np.arange(n)
    fit_binary(net, forward, y, idx[:160], idx[160:200], TrainSettings(epochs=2, batch_size=32, lr=1e-3, patience=2),
               progress=False)
    net.eval()
    with torch.no_grad():
        scores = forward(net, idx[200:], False, None).numpy()
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y[200:], scores) > 0.9


def test_weights_from_another_network_version_give_a_clear_error():
    model = UsVideoModel(frames=2, size=16, channels=(4, 8), progress=False)
    weights = model._new_net().state_dict()
    model.state_dict_ = {k: v for k, v in weights.items() if not k.startswith(("size_logit", "extra_"))}
    model.calibration_ = object()
    with pytest.raises(LymphCastError, match="us_video weights do not fit this version's network .*size_logit"):
        model.network()
    model._net = None
    model.state_dict_ = {**weights, "out.weight": torch.zeros(1, 3)}
    with pytest.raises(LymphCastError, match="layer shapes differ"):
        model.network()
