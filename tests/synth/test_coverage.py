"""Modalities that only some patients have (`coverage`): who gets them, blank columns for the others, the rest of
the cohort unchanged, and the clip model's answer for patients without clips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lymphcast.cli import app
from lymphcast.cohort import LymphCastError, read_cohort
from lymphcast.modalities.us_video import UsVideoModel
from lymphcast.synth import generate_cohort

KW = {"patients": 30, "centres": 2, "seed": 4, "modalities": ["clinical", "us_video"], "progress": False}


@pytest.fixture(scope="module")
def half(tmp_path_factory):
    return generate_cohort(tmp_path_factory.mktemp("cov") / "half", coverage={"us_video": 0.5}, **KW)


def test_a_share_of_patients_has_clips_and_the_rest_is_unchanged(half, tmp_path):
    cohort = read_cohort(half)
    nodes = cohort.nodes
    has = nodes.groupby("patient_id")["us_video_file"].apply(lambda s: s.notna().any())
    assert 0.2 < has.mean() < 0.8
    # a patient has clips for all of their nodes or for none
    assert (nodes.groupby("patient_id")["us_video_file"].apply(lambda s: s.notna().all() or s.isna().all())).all()
    covered = nodes[nodes["us_video_file"].notna()]
    assert all((half / f).is_file() for f in covered["us_video_file"])
    assert len(list((half / "media" / "us_video").iterdir())) == len(covered)
    assert covered["us_video_frames"].dtype.kind in "iu" or (covered["us_video_frames"] % 1 == 0).all()
    assert "us_video_frames" in open(half / "nodes.csv").readline()
    frames = pd.read_csv(half / "truth" / "us_video_frames.csv", dtype={"node_id": str})
    assert set(frames["node_id"]) == set(covered["node_id"])
    # the tables are those of the same seed without any clip (rendering clips for everyone would take half a minute)
    plain = generate_cohort(tmp_path / "plain", **{**KW, "modalities": ["clinical"]})
    a = pd.read_csv(half / "patients.csv")
    b = pd.read_csv(plain / "patients.csv")
    pd.testing.assert_frame_equal(a, b)
    cols = ["node_id", "patient_id", "side", "level", "metastatic"]
    pd.testing.assert_frame_equal(pd.read_csv(half / "nodes.csv")[cols], pd.read_csv(plain / "nodes.csv")[cols])


def test_whole_numbers_stay_whole_in_the_table(half):
    text = (half / "nodes.csv").read_text().splitlines()
    header = text[0].split(",")
    col = header.index("us_video_frames")
    values = [line.split(",")[col] for line in text[1:]]
    assert any(v == "" for v in values) and all(v == "" or v.isdigit() for v in values)


def test_bad_coverage_is_refused(tmp_path):
    with pytest.raises(LymphCastError, match="coverage given for 'ct'"):
        generate_cohort(tmp_path / "a", coverage={"ct": 0.5}, **KW)
    with pytest.raises(LymphCastError, match=r"coverage of us_video must be in \(0, 1\]"):
        generate_cohort(tmp_path / "b", coverage={"us_video": 1.5}, **KW)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    result = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "c"), "--patients", "5",
                                      "--modalities", "clinical,us_video", "--coverage", "us_video"])
    assert result.exit_code == 2 and "--coverage: expected NAME=VALUE pairs" in result.output


def test_clip_model_has_no_opinion_on_patients_without_clips(half, synth_video_cohort_dir):
    from lymphcast.modalities.us_video import UsVideoModel

    cohort = read_cohort(half)
    covered = set(UsVideoModel().covered_patients(cohort))
    model = UsVideoModel(seed=0, epochs=1, head_epochs=1, frames=4, size=24, channels=(4, 8), progress=False)
    model.fit(read_cohort(synth_video_cohort_dir))
    levels = model.predict_levels(cohort)
    p = levels["patients"]
    assert p[list(covered)].notna().all() and p.drop(list(covered)).isna().all()
    sides = levels["sides"]
    uncovered = sides.index.get_level_values("patient_id").isin(list(covered))
    assert sides[uncovered].notna().all() and sides[~uncovered].isna().all()
    assert np.isfinite(p.dropna()).all()
