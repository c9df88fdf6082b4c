import json
import logging

import numpy as np
import pandas as pd
import pytest

from lymphcast.evaluate import ReportInputError, write_report
from lymphcast.evaluate import report as report_module

from .conftest import simulate

KEYS = {"n", "events", "auc", "auc_ci_low", "auc_ci_high", "sensitivity", "specificity", "ppv", "npv",
        "accuracy", "threshold", "threshold_rule", "brier", "calibration_intercept", "calibration_slope",
        "oracle_auc", "oracle_auc_ci_low", "oracle_auc_ci_high", "per_centre", "subgroups", "provenance",
        "n_excluded", "model_vs_oracle", "rule_out"}


def make_frame(n=240, seed=0):
    y, p, risk = simulate(n, seed=seed)
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "patient_id": [f"PTC-{i:05d}" for i in range(n)],
        "probability": p,
        "label": y.astype(float),
        "centre": rng.choice(["Leeds", "Lyon", "Seoul"], n),
        "risk_clinical": np.clip(risk + rng.normal(0, 0.1, n), 0, 1),
        "sex": rng.choice(["F", "M"], n),
        "hashimoto": rng.choice([0, 1], n).astype(float),
    })
    frame.loc[[3, 7], "label"] = np.nan  # outcome unknown: excluded and counted
    return frame


def run(frame, out_dir, **kwargs):
    args = dict(title="External validation", provenance={"model_bundle_sha256": "ab12", "inputs": {"x.csv": "cd"}},
                threshold=0.2, oracle_column="risk_clinical", group_columns=["sex", "hashimoto"], n_boot=100)
    return write_report(frame, out_dir, **{**args, **kwargs})


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("report")
    frame = make_frame()
    return frame, out_dir, run(frame, out_dir)


def test_report_writes_html_and_metrics_with_the_required_keys(written):
    frame, out_dir, returned = written
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics == returned
    assert KEYS <= set(metrics)
    assert metrics["n"] == 238 and metrics["excluded"]["missing label"] == 2 and metrics["n_excluded"] == 2
    assert metrics["threshold"] == 0.2 and "given" in metrics["threshold_rule"]
    assert {row["group"] for row in metrics["per_centre"]} == {"Leeds", "Lyon", "Seoul"}
    assert {(row["variable"], row["group"]) for row in metrics["subgroups"]} == {
        ("sex", "F"), ("sex", "M"), ("hashimoto", "0"), ("hashimoto", "1")}
    assert metrics["provenance"]["model_bundle_sha256"] == "ab12" and metrics["provenance"]["seed"] == 0
    assert metrics["model_vs_oracle"]["auc1"] == pytest.approx(metrics["auc"])


def test_oracle_auc_is_computed_on_the_same_patients(written):
    from sklearn.metrics import roc_auc_score

    frame, _, metrics = written
    kept = frame[frame["label"].notna()]
    assert metrics["oracle_auc"] == pytest.approx(roc_auc_score(kept["label"], kept["risk_clinical"]))
    assert metrics["model_vs_oracle"]["auc2"] == pytest.approx(metrics["oracle_auc"])


def test_html_is_self_contained_and_free_of_patient_ids(written):
    frame, out_dir, _ = written
    html = (out_dir / "report.html").read_text()
    assert "External validation" in html and "model_bundle_sha256" in html
    assert html.count("data:image/png;base64,") >= 4  # ROC, by centre, calibration, decision curve
    assert "http://" not in html and "https://" not in html
    assert "Paired DeLong" in html and "How to read this" in html and "Seoul" in html
    assert not any(pid in html for pid in frame["patient_id"])
    assert "PTC-" not in (out_dir / "metrics.json").read_text()
    assert not [p.name for p in out_dir.iterdir() if p.name not in ("report.html", "metrics.json")]


def test_logs_hold_counts_not_patient_ids(tmp_path, caplog):
    with caplog.at_level(logging.DEBUG, logger="lymphcast"):
        run(make_frame(120, seed=2), tmp_path / "out", oracle_column=None, group_columns=[])
    assert caplog.records and "PTC-" not in caplog.text


def test_missing_probability_column_is_named_and_nothing_is_written(tmp_path):
    out_dir = tmp_path / "out"
    with pytest.raises(ValueError, match="probability"):
        run(make_frame().drop(columns="probability"), out_dir)
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_bad_labels_are_rejected(tmp_path):
    frame = make_frame()
    frame.loc[0, "label"] = 2
    with pytest.raises(ReportInputError, match="label"):
        run(frame, tmp_path / "out")


def test_a_late_failure_leaves_the_previous_report_untouched(tmp_path, monkeypatch):
    out_dir = tmp_path / "out"
    run(make_frame(), out_dir)
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(report_module.os, "replace", broken_replace)
    with pytest.raises(OSError):
        run(make_frame(seed=5), out_dir)
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before  # no temp files, old report intact


def test_a_failure_while_rendering_writes_nothing(tmp_path, monkeypatch):
    def broken_render(*args, **kwargs):
        raise RuntimeError("template error")

    monkeypatch.setattr(report_module, "render_html", broken_render)
    with pytest.raises(RuntimeError):
        run(make_frame(), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_node_level_rows_are_resampled_by_patient(tmp_path):
    frame = make_frame(120, seed=3)
    nodes = pd.concat([frame, frame.assign(probability=frame["probability"] * 0.9)], ignore_index=True)
    metrics = run(nodes, tmp_path / "out", oracle_column=None, group_columns=[])
    assert metrics["n_clusters"] == 118 and "bootstrap" in metrics["auc_ci_method"]


def test_a_reference_risk_that_cannot_be_compared_is_noted_not_fatal(tmp_path):
    frame = make_frame(120, seed=4).assign(risk_clinical=np.nan)
    metrics = run(frame, tmp_path / "out", group_columns=[])
    assert "oracle_auc" not in metrics and "not compared" in metrics["oracle_note"]
    assert "not compared" in (tmp_path / "out" / "report.html").read_text()
