"""Full-field ultrasound frames of the us_image renderer: one per side, boxes inside and apart, true size, signs."""

from __future__ import annotations

import filecmp

import numpy as np
import pandas as pd
import pydicom
import pytest
from PIL import Image

from lymphcast.cohort import read_cohort
from lymphcast.synth import generate_cohort
from lymphcast.synth.us_frame import FRAME

BOX = ["us_frame_box_x0", "us_frame_box_y0", "us_frame_box_x1", "us_frame_box_y1"]


def _make(path):
    return generate_cohort(path, patients=20, centres=4, seed=2, modalities=["clinical", "us_image"], progress=False)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = _make(tmp_path_factory.mktemp("frames") / "c")
    c = read_cohort(out)
    truth = pd.read_csv(out / "truth" / "nodes.csv", dtype={"patient_id": str})
    return out, c, c.nodes.merge(truth[["node_id", "short_axis_mm", "long_short_ratio", "cystic_change"]],
                                 on="node_id")


def _load(path):
    return pydicom.dcmread(path).pixel_array if path.suffix == ".dcm" else np.asarray(Image.open(path))


def test_every_node_has_a_frame_and_a_box_inside(cohort):
    root, c, nodes = cohort
    assert len(nodes) > 20 and nodes["us_frame_file"].notna().all()
    assert nodes["us_frame_file"].str.startswith("media/us_frames/").all()
    b = nodes[BOX].astype(int).to_numpy()
    assert (b[:, :2] >= 0).all() and (b[:, 2:] <= FRAME).all() and (b[:, 2:] > b[:, :2]).all()
    for f in nodes["us_frame_file"].unique():
        img = _load(root / f)
        assert img.shape == (FRAME, FRAME) and img.dtype == np.uint8
        labels = np.asarray(Image.open(root / (f.rsplit(".", 1)[0] + "_mask.png")))
        assert labels.max() == (nodes["us_frame_file"] == f).sum()
    dicom = nodes.merge(c.patients[["patient_id", "centre"]], on="patient_id")
    assert (dicom["us_frame_file"].str.endswith(".dcm") == dicom["us_image_file"].str.endswith(".dcm")).all()


def test_one_frame_per_side_and_boxes_apart(cohort):
    _, _, nodes = cohort
    per_side = nodes.groupby(["patient_id", "side"])["us_frame_file"].nunique()
    assert (per_side == 1).all()
    assert nodes.groupby("us_frame_file")[["patient_id", "side"]].nunique().max().max() == 1
    assert (nodes.groupby("us_frame_file").size() > 1).any()
    for _, g in nodes.groupby("us_frame_file"):
        b = g[BOX].astype(int).to_numpy()
        for i in range(len(b)):
            for j in range(i + 1, len(b)):
                apart = (b[i, 2] <= b[j, 0]) | (b[j, 2] <= b[i, 0]) | (b[i, 3] <= b[j, 1]) | (b[j, 3] <= b[i, 1])
                assert apart, (g["node_id"].iloc[i], g["node_id"].iloc[j])


def test_box_size_in_mm_tracks_the_true_size(cohort):
    _, _, nodes = cohort
    s = nodes["us_frame_pixel_spacing_mm"].astype(float)
    scale = nodes["us_frame_scale"].astype(float)
    assert (scale == 1.0).mean() > 0.8 and scale.between(0.01, 1.0).all()
    width_mm = (nodes["us_frame_box_x1"] - nodes["us_frame_box_x0"]) * s
    height_mm = (nodes["us_frame_box_y1"] - nodes["us_frame_box_y0"]) * s
    long_mm = nodes["short_axis_mm"] * nodes["long_short_ratio"]
    assert np.corrcoef(width_mm / scale, long_mm)[0, 1] > 0.9
    assert np.corrcoef(height_mm / scale, nodes["short_axis_mm"])[0, 1] > 0.9
    true = scale == 1.0
    assert np.corrcoef(width_mm[true], long_mm[true])[0, 1] > 0.9
    assert np.median(width_mm[true] / long_mm[true]) == pytest.approx(1.0, abs=0.15)


def test_cystic_nodes_darker_in_their_box(cohort):
    root, _, nodes = cohort
    means = []
    for f, g in nodes.groupby("us_frame_file"):
        img = _load(root / f).astype(float)
        for _, r in g.iterrows():
            x0, y0, x1, y1 = (int(r[k]) for k in BOX)
            means.append((float(img[y0:y1, x0:x1].mean()), int(r["cystic_change"])))
    m = np.array(means)
    assert (m[:, 1] == 1).sum() >= 3
    assert m[m[:, 1] == 1, 0].mean() < m[m[:, 1] == 0, 0].mean()


def test_deterministic_for_a_seed(cohort, tmp_path):
    root, _, nodes = cohort
    again = _make(tmp_path / "c")
    a, b = pd.read_csv(root / "nodes.csv"), pd.read_csv(again / "nodes.csv")
    pd.testing.assert_frame_equal(a, b)
    files = sorted(nodes["us_frame_file"].unique())
    for f in files:
        for ref in (f, f.rsplit(".", 1)[0] + "_mask.png"):
            assert filecmp.cmp(root / ref, again / ref, shallow=False), ref
