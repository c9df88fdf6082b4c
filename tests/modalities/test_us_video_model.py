"""UsVideoModel and ClipNet on a small synthetic cohort with cine clips: outputs, attention over frames, reversed
sweeps, unreadable clips, pickling."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from lymphcast.cohort import LymphCastError, read_cohort
from lymphcast.modalities.us_video import UsVideoModel
from lymphcast.modalities.us_video_training import augment_clips
from lymphcast.modalities.us_video_clips import node_clips, sample_indices
from lymphcast.nets.clip_net import ClipNet, prepare

TINY = {"epochs": 1, "frames": 6, "size": 24, "channels": (4, 8), "progress": False}


@pytest.fixture(scope="module")
def cohort(synth_video_cohort_dir):
    return read_cohort(synth_video_cohort_dir)


@pytest.fixture(scope="module")
def fitted(cohort):
    return UsVideoModel(seed=3, **TINY).fit(cohort.in_centres(["A", "B", "C"]))


def test_clip_net_shapes_and_attention():
    torch.manual_seed(0)
    net = ClipNet(channels=(4, 8), hidden=8).eval()
    x = prepare(torch.randint(0, 255, (3, 5, 2, 24, 24), dtype=torch.uint8))
    logit, att = net(x, torch.zeros(3, 6))  # ClipNet default extra width
    assert logit.shape == (3,) and att.shape == (3, 5)
    torch.testing.assert_close(att.sum(1), torch.ones(3))
    assert (att > 0).all()


def test_outputs_agree_and_attention_names_key_frames(fitted, cohort):
    test = cohort.in_centres(["D"])
    nodes = fitted.predict_nodes(test)
    assert set(nodes.index) == set(test.nodes.loc[test.nodes["us_video_file"].notna(), "node_id"])
    assert nodes.between(0, 1).all()
    sides = fitted.predict_sides(test)
    assert len(sides) == 2 * len(test.patients) and sides.between(0, 1).all()
    patients = fitted.predict_proba(test)
    assert patients.notna().all() and patients.between(0, 1).all()
    keys = fitted.key_frames(test, nodes.index[:3])
    assert list(keys["node_id"].unique()) == list(nodes.index[:3]) and len(keys) == 3 * TINY["frames"]
    np.testing.assert_allclose(keys.groupby("node_id")["attention"].sum(), 1.0, rtol=1e-5)
    counts = test.nodes.set_index("node_id")["us_video_frames"]
    for node, group in keys.groupby("node_id"):
        assert group["frame"].is_monotonic_increasing and group["frame"].iloc[0] == 0
        assert group["frame"].iloc[-1] == int(counts[node]) - 1


def test_reversed_sweep_is_scored_as_well(fitted, cohort):
    clips = node_clips(cohort.in_centres(["D"]), frames=TINY["frames"], size=TINY["size"], progress=False)
    net = fitted.network()
    with torch.no_grad():
        x, e = prepare(torch.from_numpy(clips.pixels)), torch.from_numpy(clips.extra)
        fwd, att = net(x, e)
        back, att_back = net(x.flip(1), e)
    assert torch.isfinite(back).all() and back.shape == fwd.shape
    torch.testing.assert_close(att_back.sum(1), torch.ones(len(clips)))
    gen = torch.Generator().manual_seed(0)
    aug = augment_clips(torch.from_numpy(clips.pixels[:4]).float(), gen)
    assert aug.shape == clips.pixels[:4].shape and float(aug.min()) >= 0 and float(aug.max()) <= 255.0 + 1e-3


def test_sample_indices_cover_the_sweep():
    assert list(sample_indices(31, 4)) == [0, 10, 20, 30]
    assert list(sample_indices(2, 4)) == [0, 0, 1, 1]


def test_unreadable_clip_is_named(fitted, cohort, tmp_path):
    dst = tmp_path / "broken"
    shutil.copytree(cohort.root, dst)
    nodes = pd.read_csv(dst / "nodes.csv", dtype=str, keep_default_na=False)
    test_ids = set(cohort.in_centres(["D"]).patients["patient_id"])
    ref = nodes.loc[nodes["patient_id"].isin(test_ids) & (nodes["us_video_file"] != ""), "us_video_file"].iloc[0]
    (dst / ref).write_bytes(b"not a video at all")
    broken = read_cohort(dst).in_centres(["D"])
    with pytest.raises(LymphCastError, match=ref.split("/")[-1]):
        fitted.predict_proba(broken)


def test_no_clips_gives_nan(fitted, cohort, tmp_path):
    dst = tmp_path / "bare"
    shutil.copytree(cohort.root, dst, ignore=shutil.ignore_patterns("us_video"))
    nodes = pd.read_csv(dst / "nodes.csv", dtype=str, keep_default_na=False)
    nodes[[c for c in nodes.columns if c.startswith("us_video")]] = ""
    nodes.to_csv(dst / "nodes.csv", index=False)
    test = read_cohort(dst).in_centres(["D"])
    levels = fitted.predict_levels(test)
    assert levels["patients"].isna().all() and len(levels["nodes"]) == 0


def test_pickle_round_trip(fitted, cohort):
    test = cohort.in_centres(["D"])
    revived = pickle.loads(pickle.dumps(fitted))
    pd.testing.assert_series_equal(revived.predict_nodes(test), fitted.predict_nodes(test))
    assert revived.get_params() == fitted.get_params()


def test_bad_rollup_is_refused(cohort):
    with pytest.raises(LymphCastError, match="rollup"):
        UsVideoModel(rollup="mean", **TINY).fit(cohort)
