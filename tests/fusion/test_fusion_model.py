"""FusionModel on a cohort with clinical data, ultrasound images and cytology for some: one calibrated risk per
patient, side and level from whatever each patient has; through the CLI with --modalities all."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lymphcast.cli import app
from lymphcast.cohort import read_cohort
from lymphcast.fusion.model import available_modalities
from tests.fusion.conftest import SMALL_OPTIONS as OPTIONS


@pytest.fixture(scope="module")
def cohort(synth_multimodal_cohort_dir):
    return read_cohort(synth_multimodal_cohort_dir)


@pytest.fixture(scope="module")
def fitted(small_fused, cohort):
    """The fused model the fusion tests share (conftest): every modality the cohort has, small networks."""
    assert small_fused.modalities == tuple(available_modalities(cohort)) and small_fused.options == OPTIONS
    return small_fused


def test_all_means_every_modality_with_data(cohort):
    assert available_modalities(cohort) == ["clinical", "us_image", "cytology"]


def test_every_patient_side_and_level_gets_a_risk(fitted, cohort):
    test = cohort.in_centres(["D"])
    out = fitted.predict_levels(test)
    ids = test.patients["patient_id"]
    assert out["patients"].index.tolist() == ids.tolist() and out["patients"].between(0, 1).all()
    assert len(out["sides"]) == 2 * len(ids) and out["sides"].between(0, 1).all()
    assert len(out["levels"]) == 8 * len(ids) and out["levels"].between(0, 1).all()
    assert set(out["levels"].index.get_level_values("level")) == {"II", "III", "IV", "V"}
    without = out["modalities"]["cytology"].isna()
    assert without.any() and (~without).any()  # some patients lack cytology, and are still scored
    assert out["patients"][without.to_numpy()].notna().all()
    assert {"p_us_image"} <= set(out["nodes"].columns)


def test_stacking_part_was_not_seen_by_the_modality_models(fitted, cohort):
    summary = fitted.training_summary_
    assert summary["patients_base"] + summary["patients_stacking"] == len(cohort.in_centres(["A", "B", "C"]).labelled().patients)
    held_out = set(fitted.validation_proba_.index)
    for name in ("us_image", "cytology"):
        seen = set(getattr(fitted.models_[name], "validation_proba_", pd.Series(dtype=float)).index)
        assert not (seen & held_out)
    assert fitted.validation_proba_.between(0, 1).all()


def test_pickles_and_draws_its_weights(fitted, cohort):
    test = cohort.in_centres(["D"])
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(again.predict_proba(test), fitted.predict_proba(test), atol=1e-6)
    assert "weights" in fitted.figures()


def test_cli_trains_all_and_writes_every_level(synth_multimodal_cohort_dir, tmp_path):
    runner = CliRunner()
    settings = tmp_path / "settings.json"  # small networks: this test is about the path, not the models
    settings.write_text(json.dumps({name: {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()
                                           if k not in ("epochs", "detector", "progress")}
                                    for name, values in OPTIONS.items()}))
    result = runner.invoke(app, ["train", str(synth_multimodal_cohort_dir), "--out", str(tmp_path / "model"),
                                 "--modalities", "all", "--centres", "A,B,C", "--epochs", "1", "--detector-epochs", "0",
                                 "--settings", str(settings)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "model" / "bundle.json").read_text())
    assert manifest["modalities"] == ["clinical", "us_image", "cytology"]
    result = runner.invoke(app, ["predict", str(tmp_path / "model"), str(synth_multimodal_cohort_dir), "--out",
                                 str(tmp_path / "pred.csv"), "--centres", "D"])
    assert result.exit_code == 0, result.output
    for level in ("sides", "levels", "nodes", "modalities"):
        assert (tmp_path / f"pred_{level}.csv").is_file()
    levels = pd.read_csv(tmp_path / "pred_levels.csv")
    assert set(levels.columns) >= {"patient_id", "side", "level", "probability"}
    # a radiologist's side calls, unaided and aided (planted: aided calls follow the recorded labels more often)
    patients = pd.read_csv(synth_multimodal_cohort_dir / "patients.csv", dtype={"patient_id": str})
    test = patients[patients["centre"] == "D"]
    rng = np.random.default_rng(0)
    rows = []
    for _, row in test.iterrows():
        for side in ("left", "right"):
            truth = row[f"lateral_{side}"]
            if pd.isna(truth):
                continue
            for aided, right in ((0, 0.7), (1, 0.85)):
                call = int(truth) if rng.random() < right else 1 - int(truth)
                rows.append({"reader": "R1", "patient_id": row["patient_id"], "side": side, "call": call,
                             "aided": aided})
    pd.DataFrame(rows).to_csv(tmp_path / "readers.csv", index=False)
    result = runner.invoke(app, ["evaluate", str(tmp_path / "pred.csv"), str(synth_multimodal_cohort_dir), "--out",
                                 str(tmp_path / "report"), "--model", str(tmp_path / "model"), "--readers",
                                 str(tmp_path / "readers.csv")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["oracle_column"].endswith("risk_all")
    fusion = metrics["fusion"]
    assert [r["name"] for r in fusion["modalities"]] == ["fused", "clinical", "us_image", "cytology"]
    assert "p_value" in fusion["modalities"][1] and fusion["sides"]["auc"]["n"] > 0
    assert len(fusion["sides"]["levels"]) == 5 and "us_rule" in fusion["sides"]
    assert {r["kind"] for r in fusion["literature"]["rows"]} >= {"pooled", "model"}
    assert fusion["readers"]["level"] == "side" and len(fusion["readers"]["metrics"]) == 2
    html = (tmp_path / "report" / "report.html").read_text()
    assert "Fusion: each modality and the fused model" in html and "Against the literature" in html
