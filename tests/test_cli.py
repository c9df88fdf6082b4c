"""The command line end to end, and its promise on bad input: a clear message, exit 2, nothing half-written."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from lymphcast.cli import app
from lymphcast.cohort import LymphCastError

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_every_command_has_help():
    for command in ("synth", "validate", "import-table", "import-images", "train", "predict", "crossval", "evaluate", "demo", "stream",
                    "ct-series"):
        result = run(command, "--help")
        assert result.exit_code == 0, command
        assert "Usage" in result.output


def test_train_predict_evaluate(synth_cohort_dir, tmp_path):
    assert run("validate", synth_cohort_dir).exit_code == 0
    result = run("train", synth_cohort_dir, "--out", tmp_path / "model", "--centres", "A,B,C")
    assert result.exit_code == 0, result.output
    result = run("predict", tmp_path / "model", synth_cohort_dir, "--out", tmp_path / "pred.csv", "--centres", "D")
    assert result.exit_code == 0, result.output
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert list(pred.columns) == ["patient_id", "probability"]
    patients = pd.read_csv(synth_cohort_dir / "patients.csv", dtype=str)
    assert set(pred.patient_id) == set(patients.loc[patients.centre == "D", "patient_id"])
    result = run("evaluate", tmp_path / "pred.csv", synth_cohort_dir, "--out", tmp_path / "report")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    for key in ("n", "events", "auc", "auc_ci_low", "auc_ci_high", "sensitivity", "specificity", "ppv", "npv",
                "accuracy", "threshold", "brier", "calibration_intercept", "calibration_slope", "oracle_auc"):
        assert key in metrics, key
    assert metrics["auc_ci_low"] < metrics["auc"] < metrics["auc_ci_high"]
    assert metrics["auc"] > 0.6
    variables = {row["variable"] for row in metrics["subgroups"]}
    assert {"sex", "age_lt_55", "tumour_le_10mm", "hashimoto", "no_palpable_adenopathy", "us_vendor"} <= variables
    assert [row["group"] for row in metrics["per_centre"]] == ["D"]
    missing = {row["field"]: row["missing_fraction"] for row in metrics["missing_data"]}
    patients = patients.loc[patients.centre == "D"]
    assert missing["tsh_miu_l"] == pytest.approx(patients["tsh_miu_l"].isna().mean())
    assert "Missing data" in (tmp_path / "report" / "report.html").read_text()
    assert (tmp_path / "report" / "report.html").stat().st_size > 10_000


def _assert_clean_failure(result, *fragments):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)


def test_malformed_cohort_exits_2_and_writes_nothing(synth_cohort_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(synth_cohort_dir, broken)
    lines = (broken / "patients.csv").read_text().splitlines()
    lines[3] = lines[3].replace(",", ",X", 1)  # an unknown centre on line 4
    (broken / "patients.csv").write_text("\n".join(lines) + "\n")
    _assert_clean_failure(run("validate", broken), "patients.csv, line 4, column 'centre'")
    _assert_clean_failure(run("train", broken, "--out", tmp_path / "model"), "line 4")
    assert not (tmp_path / "model").exists()
    assert not any(p.name.startswith(".model") for p in tmp_path.iterdir())


def test_bad_prediction_file_is_reported_by_line(synth_cohort_dir, tmp_path):
    (tmp_path / "pred.csv").write_text("patient_id,probability\nA0001,0.3\nA0002,1.7\n")
    _assert_clean_failure(run("evaluate", tmp_path / "pred.csv", synth_cohort_dir, "--out", tmp_path / "r"),
                          "line 3", "probability between 0 and 1")
    assert not (tmp_path / "r").exists()


def test_missing_model_and_unknown_modality(synth_cohort_dir, tmp_path):
    _assert_clean_failure(run("predict", tmp_path / "nomodel", synth_cohort_dir, "--out", tmp_path / "p.csv"),
                          "bundle.json not found")
    _assert_clean_failure(run("train", synth_cohort_dir, "--out", tmp_path / "m", "--modalities", "clinicl"),
                          "did you mean 'clinical'")
    _assert_clean_failure(run("train", synth_cohort_dir, "--out", tmp_path / "m", "--centres", "Q"),
                          "unknown centre")
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "m").exists()


def test_tampered_bundle_is_refused(synth_cohort_dir, tmp_path):
    assert run("train", synth_cohort_dir, "--out", tmp_path / "model").exit_code == 0
    with open(tmp_path / "model" / "clinical.safetensors", "ab") as fh:
        fh.write(b"tampered")
    _assert_clean_failure(run("predict", tmp_path / "model", synth_cohort_dir, "--out", tmp_path / "p.csv"),
                          "does not match the hash")


@pytest.mark.parametrize("args", [["--patients", "0"], ["--centres", "40"], ["--modalities", "xray"]])
def test_bad_synth_arguments(tmp_path, args):
    result = run("synth", "--out", tmp_path / "c", *args)
    _assert_clean_failure(result)
    assert not (tmp_path / "c").exists()


def test_leave_one_centre_out_crossval_then_evaluate(synth_cohort_dir, tmp_path):
    result = run("crossval", synth_cohort_dir, "--out", tmp_path / "oof.csv", "--scheme", "loco")
    assert result.exit_code == 0, result.output
    oof = pd.read_csv(tmp_path / "oof.csv", dtype={"patient_id": str}).set_index("patient_id")["probability"]
    patients = pd.read_csv(synth_cohort_dir / "patients.csv", dtype=str)
    assert set(oof.index) == set(patients.patient_id) and oof.notna().all()
    # Centre D's scores come from a model that never saw centre D.
    from lymphcast.cohort import read_cohort
    from lymphcast.modalities.clinical import ClinicalModel

    cohort = read_cohort(synth_cohort_dir)
    manual = ClinicalModel().fit(cohort.in_centres(["A", "B", "C"])).predict_proba(cohort.in_centres(["D"]))
    pd.testing.assert_series_equal(oof.loc[manual.index], manual, check_names=False, atol=1e-6)
    result = run("evaluate", tmp_path / "oof.csv", synth_cohort_dir, "--out", tmp_path / "report")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert [row["group"] for row in metrics["per_centre"]] == ["A", "B", "C", "D"]
    _assert_clean_failure(run("crossval", synth_cohort_dir, "--out", tmp_path / "x.csv", "--scheme", "lopo"),
                          "kfold or loco")


def test_blank_probabilities_are_no_prediction_and_excluded(tmp_path):
    from lymphcast.predictions import read_predictions

    (tmp_path / "pred.csv").write_text("patient_id,probability\nA0001,0.3\nA0002,\nA0003,x\n")
    with pytest.raises(LymphCastError) as err:
        read_predictions(tmp_path / "pred.csv")
    assert "line 4" in str(err.value.problems[0]) and len(err.value.problems) == 1
    (tmp_path / "pred.csv").write_text("patient_id,probability\nA0001,0.3\nA0002,\n")
    frame, _ = read_predictions(tmp_path / "pred.csv")
    assert frame["probability"].iloc[0] == 0.3 and frame["probability"].isna().iloc[1]


def test_ct_train_predict_evaluate_with_3d_gradcam(synth_ct_cohort_dir, tmp_path):
    assert run("validate", synth_ct_cohort_dir).exit_code == 0
    result = run("train", synth_ct_cohort_dir, "--out", tmp_path / "model", "--centres", "A,B,C", "--modalities",
                 "ct", "--epochs", "1")
    assert result.exit_code == 0, result.output
    result = run("predict", tmp_path / "model", synth_ct_cohort_dir, "--out", tmp_path / "pred.csv", "--centres", "D")
    assert result.exit_code == 0, result.output
    nodes = pd.read_csv(tmp_path / "pred_nodes.csv")
    assert len(nodes) and nodes["probability"].between(0, 1).all()
    result = run("evaluate", tmp_path / "pred.csv", synth_ct_cohort_dir, "--out", tmp_path / "report", "--model",
                 tmp_path / "model")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["oracle_column"].endswith("risk_ct") and metrics["ct_node_level"]["n_nodes"] == len(nodes)
    html = (tmp_path / "report" / "report.html").read_text()
    assert "Contrast CT: node level and 3D Grad-CAM" in html
    assert "Score from the CNN" in html and " HU (10th percentile" in html  # the measurement reader's caption
    assert list((tmp_path / "report" / "ct_gallery").glob("*.png"))
    result = run("train", synth_ct_cohort_dir, "--out", tmp_path / "m2", "--modalities", "ct", "--ct-energy", "quad")
    _assert_clean_failure(result, "energy")


def test_ct_series_lists_what_the_model_reads_and_explains_a_study_it_cannot_use(synth_ct_cohort_dir, tmp_path):
    nodes = pd.read_csv(synth_ct_cohort_dir / "nodes.csv", dtype=str).dropna(subset=["ct_file"])
    study = synth_ct_cohort_dir / nodes["ct_file"].iloc[0]
    result = run("ct-series", study)
    assert result.exit_code == 0, result.output
    assert "conventional" in result.output and "localizer" in result.output
    only_localizer = tmp_path / "study"
    shutil.copytree(next(study.glob("01_*")), only_localizer / "01")
    (only_localizer / "notes.txt").write_text("not DICOM")
    result = run("ct-series", only_localizer)
    _assert_clean_failure(result, "no series fits the model", "localizer")


def test_cytology_train_predict_evaluate_with_attention_maps(synth_cytology_cohort_dir, tmp_path):
    cohort = synth_cytology_cohort_dir
    assert run("validate", cohort).exit_code == 0
    settings = tmp_path / "settings.json"  # a small network: this test is about the path, not the model
    settings.write_text(json.dumps({"cytology": {"channels": [4, 8], "dim": 8, "ssl_steps": 4, "ssl_batch": 16,
                                                 "bag_epochs": 3, "max_tiles": 128}}))
    result = run("train", cohort, "--out", tmp_path / "model", "--centres", "A,B,C", "--modalities", "cytology",
                 "--epochs", "1", "--settings", settings)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "model" / "bundle.json").read_text())["settings"]["cytology"]["ssl_steps"] == 4
    result = run("predict", tmp_path / "model", cohort, "--out", tmp_path / "pred.csv", "--centres", "D")
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "pred.csv", comment="#")["probability"].between(0, 1).all()
    result = run("evaluate", tmp_path / "pred.csv", cohort, "--out", tmp_path / "report", "--model", tmp_path / "model")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["oracle_column"].endswith("risk_cytology")
    assert "Cytology: attention over the smear" in (tmp_path / "report" / "report.html").read_text()
    assert list((tmp_path / "report" / "cytology_gallery").glob("*.png"))
    # a slide cut short is named, not a traceback, and no bundle is left behind
    slide = next((cohort / "media" / "cytology").glob("*/slide.tif"))
    broken = tmp_path / "broken"
    shutil.copytree(cohort, broken)
    target = broken / slide.relative_to(cohort)
    target.write_bytes(slide.read_bytes()[: slide.stat().st_size // 3])
    result = run("train", broken, "--out", tmp_path / "m2", "--modalities", "cytology", "--epochs", "1",
                 "--settings", settings)
    _assert_clean_failure(result, "slide.tif")
    assert not (tmp_path / "m2").exists()


def test_ct_options_reach_the_ct_model_only():
    from lymphcast.cli import _model_options

    options = _model_options(kind="logistic", epochs=3, ct_energy="single", ct_measurements=False)
    assert options["ct"] == {"epochs": 3, "energy": "single", "measurements": False}
    assert "measurements" not in options["us_image"] and "energy" not in options["cytology"]
    assert "measurements" not in _model_options(kind="logistic")["ct"]


def test_cytology_reader_option_reaches_the_cytology_model_only():
    from lymphcast.cli import _model_options

    options = _model_options(kind="logistic", cytology_measurements=False)
    assert options["cytology"] == {"measurements": False} and "measurements" not in options["ct"]
    assert "measurements" not in _model_options(kind="logistic")["cytology"]
