"""UsImageModel end to end on a small synthetic cohort: node/side/patient outputs, frames without boxes,
checkpoint and resume, user errors; and the CLI path train → predict (three prediction files)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lymphcast.cli import app
from lymphcast.cohort import LymphCastError, read_cohort
from lymphcast.modalities.us_image import UsImageModel

TINY = {"epochs": 2, "size": 32, "channels": (4, 8), "detector_epochs": 2, "progress": False,
        "detector_options": {"size": 64, "channels": (4, 8, 16)}}


@pytest.fixture(scope="module")
def cohort(synth_image_cohort_dir):
    return read_cohort(synth_image_cohort_dir)


@pytest.fixture(scope="module")
def fitted(cohort):
    return UsImageModel(seed=1, **TINY).fit(cohort.in_centres(["A", "B", "C"]))


def _strip_images(src, dst):
    """A copy of the cohort whose nodes keep only their full-field frame: no node image, no box."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("us"))
    nodes = pd.read_csv(dst / "nodes.csv", dtype=str, keep_default_na=False)
    nodes[[c for c in nodes.columns if c.startswith("us_") and c != "us_frame_file"]] = ""
    nodes.to_csv(dst / "nodes.csv", index=False)
    return read_cohort(dst)


def test_node_side_patient_outputs_agree(fitted, cohort):
    test = cohort.in_centres(["D"])
    nodes = fitted.predict_nodes(test)
    assert set(nodes.index) == set(test.nodes.loc[test.nodes["us_image_file"].notna(), "node_id"])
    sides = fitted.predict_sides(test)
    assert len(sides) == 2 * len(test.patients) and sides.between(0, 1).all()
    patients = fitted.predict_proba(test)
    assert patients.notna().all() and patients.between(0, 1).all()
    # a side without lateral nodes cannot be riskier than the same roll-up given one suspicious node
    assert fitted.rollup_ in ("noisy_or", "max", "learned")
    assert set(fitted.rollup_scores_.columns) == {"log_loss", "auc"}


def test_frames_without_boxes_are_scored_through_the_detector(fitted, cohort, tmp_path):
    bare = _strip_images(cohort.root, tmp_path / "bare")
    test = bare.in_centres(["D"])
    found = fitted.predict_frames(test)
    assert {"us_frame_file", "x0", "y0", "x1", "y1", "score", "node_id", "probability"} <= set(found.columns)
    assert found["node_id"].is_unique and found["probability"].between(0, 1).all()
    p = fitted.predict_proba(test)
    framed = set(test.nodes.loc[test.nodes["us_frame_file"].notna(), "patient_id"])
    assert p.loc[list(framed)].notna().all()
    sides = fitted.predict_sides(test)
    assert sides.between(0, 1).all()
    # without a detector the same patients have no ultrasound evidence at all: NaN, so fusion masks them
    blind = UsImageModel(seed=1, **{**TINY, "detector": "off"}).fit(cohort.in_centres(["A", "B", "C"]))
    assert not hasattr(blind, "detector_")
    assert blind.predict_proba(test).isna().all() and blind.predict_sides(test).isna().all()
    with pytest.raises(LymphCastError, match="no node detector"):
        blind.predict_frames(test)


def test_interrupted_training_resumes_from_its_checkpoint(cohort, tmp_path, monkeypatch):
    import lymphcast.nets.training as training

    train = cohort.in_centres(["A", "B", "C"])
    ckpt = tmp_path / "us.ckpt"
    settings = {**TINY, "epochs": 3, "detector": "off", "checkpoint": str(ckpt), "patience": 10}
    evaluate, calls = training._evaluate, []

    def interrupted(*args, **kwargs):  # the second epoch's validation never finishes: a killed run
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(training, "_evaluate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        UsImageModel(seed=2, **settings).fit(train)
    monkeypatch.setattr(training, "_evaluate", evaluate)
    assert ckpt.is_file() and not list(tmp_path.glob("*.tmp"))
    resumed = UsImageModel(seed=2, **settings).fit(train)
    assert resumed.training_summary_["resumed_from"] == 1 and resumed.training_summary_["epochs_run"] == 3
    straight = UsImageModel(seed=2, **{**settings, "checkpoint": None}).fit(train)
    assert straight.training_summary_["resumed_from"] == 0
    np.testing.assert_allclose(resumed.predict_proba(cohort).to_numpy(), straight.predict_proba(cohort).to_numpy(),
                               atol=1e-4)  # resuming gives the model one uninterrupted run gives
    other = UsImageModel(seed=3, **settings).fit(train)  # other settings: the checkpoint is not theirs
    assert other.training_summary_["resumed_from"] == 0


def test_user_errors(cohort, tmp_path):
    train = cohort.in_centres(["A", "B", "C"])
    with pytest.raises(LymphCastError, match="weights file not found"):
        UsImageModel(**{**TINY, "weights": str(tmp_path / "none.pt")}).fit(train)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not weights")
    with pytest.raises(LymphCastError, match="not NodeNet weights"):
        UsImageModel(**{**TINY, "weights": str(junk)}).fit(train)
    with pytest.raises(LymphCastError, match="rollup must be"):
        UsImageModel(**{**TINY, "rollup": "mean"}).fit(train)
    few = train.subset(train.patients["patient_id"][:3])
    with pytest.raises(LymphCastError, match="needs at least"):
        UsImageModel(**TINY).fit(few)


def test_cli_train_predict_writes_three_levels(synth_image_cohort_dir, tmp_path):
    runner = CliRunner()
    model = tmp_path / "model"
    res = runner.invoke(app, ["train", str(synth_image_cohort_dir), "--out", str(model), "--modalities", "us_image",
                              "--centres", "A,B,C", "--epochs", "1", "--detector-epochs", "0"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "pred.csv"
    res = runner.invoke(app, ["predict", str(model), str(synth_image_cohort_dir), "--out", str(out),
                              "--centres", "D"])
    assert res.exit_code == 0, res.output
    patients = pd.read_csv(out, dtype={"patient_id": str})
    sides = pd.read_csv(tmp_path / "pred_sides.csv", dtype={"patient_id": str})
    nodes = pd.read_csv(tmp_path / "pred_nodes.csv", dtype={"patient_id": str})
    assert list(sides.columns) == ["patient_id", "side", "probability"]
    assert {"node_id", "patient_id", "side", "level", "probability"} <= set(nodes.columns)
    assert set(sides["patient_id"]) == set(patients["patient_id"]) >= set(nodes["patient_id"])
    assert (tmp_path / "pred.provenance.json").is_file()


def test_figures_show_training_and_the_measured_rollup_choice(fitted):
    figs = fitted.figures()
    assert {"training", "rollup", "frame_rollup"} <= set(figs)
    bars = [p.get_width() for p in figs["rollup"].axes[0].patches]
    assert bars == pytest.approx(list(fitted.rollup_scores_["log_loss"]))
    assert UsImageModel().figures() == {}
