"""The report gallery (most confident true and false calls with Grad-CAM) and the node-level report sections
that `evaluate --model` adds; without --model the report has none of them."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lymphcast.cli import app
from lymphcast.cohort import LymphCastError
from lymphcast.evaluate import write_report
from lymphcast.evaluate_run import detection_scores, evaluate_predictions
from lymphcast.explain import CATEGORIES, build_gallery, call_category, choose_cases
from lymphcast.predictions import read_predictions, sidecar_path

SECTION = "Most confident true and false calls (Grad-CAM)"


def test_call_category_follows_label_and_threshold():
    got = call_category([1, 0, 0, 1, 1], [0.9, 0.1, 0.5, 0.2, 0.5], 0.5)
    assert list(got) == ["true positive", "true negative", "false positive", "false negative", "true positive"]


def test_choose_cases_takes_the_most_confident_per_category_and_skips_unlabelled():
    frame = pd.DataFrame({"patient_id": list("abcdefg"), "probability": [0.99, 0.7, 0.95, 0.01, 0.3, 0.2, 0.99],
                          "label": [1, 1, 1, 0, 1, 0, None]})
    cases = choose_cases(frame, 0.5, per_category=2)
    assert list(cases["patient_id"]) == ["a", "c", "d", "f", "e"]
    assert list(cases["category"]) == ["true positive"] * 2 + ["true negative"] * 2 + ["false negative"]
    assert cases["confidence"].tolist() == pytest.approx([0.49, 0.45, 0.49, 0.3, 0.2])


def test_gallery_writes_one_png_per_case_in_the_right_category(us_cohort, us_bundle, us_model, external_predictions,
                                                               external_ids, tmp_path):
    predictions, _ = read_predictions(external_predictions)
    threshold = us_bundle.threshold
    entries = build_gallery(us_model, us_cohort, predictions, threshold, tmp_path, per_category=2)
    assert entries
    assert [e.category for e in entries] == sorted((e.category for e in entries), key=CATEGORIES.index)
    labels = us_cohort.labels()
    nodes = us_model.predict_nodes(us_cohort)
    for e in entries:
        assert (tmp_path / e.png).is_file() and e.png.startswith("gallery/")
        assert e.patient_id in external_ids
        assert e.label == labels[e.patient_id]
        assert e.probability == pytest.approx(predictions.set_index("patient_id").loc[e.patient_id, "probability"])
        positive = e.probability >= threshold
        assert e.category == {(True, 1): "true positive", (False, 0): "true negative",
                              (True, 0): "false positive", (False, 1): "false negative"}[(positive, e.label)]
        own = nodes[nodes.index.str.startswith(e.patient_id + "-")]
        assert e.node_id == own.idxmax() and e.node_probability == pytest.approx(own.max())
    for category in CATEGORIES:
        assert sum(e.category == category for e in entries) <= 2


@pytest.fixture(scope="module")
def report_with_model(us_cohort, us_bundle_dir, external_predictions, tmp_path_factory):
    """`lymphcast evaluate --model` on the external predictions."""
    out = tmp_path_factory.mktemp("report") / "with_model"
    result = CliRunner().invoke(app, ["evaluate", str(external_predictions), str(us_cohort.root), "--out", str(out),
                                      "--model", str(us_bundle_dir)])
    assert result.exit_code == 0, result.output
    return out


def test_report_with_model_shows_the_gallery_of_external_patients(report_with_model, external_ids):
    html = (report_with_model / "report.html").read_text()
    assert SECTION in html and "Grad-CAM colours" in html
    shown = re.findall(r"Patient (\S+): risk", html)
    assert shown and set(shown) <= external_ids
    pngs = re.findall(r'<a href="(gallery/[^"]+\.png)">', html)
    assert len(pngs) == len(shown) and all((report_with_model / p).is_file() for p in pngs)
    assert sorted(p.name for p in (report_with_model / "gallery").iterdir()) == sorted(p[8:] for p in pngs)


def test_report_with_model_has_node_auc_on_the_external_nodes(report_with_model, us_cohort, us_bundle,
                                                              external_ids):
    from lymphcast.bundle import manifest_hash

    node_level = json.loads((report_with_model / "metrics.json").read_text())["node_level"]
    assert node_level["bundle_sha256"] == manifest_hash(us_bundle.manifest)
    nodes = us_cohort.nodes[us_cohort.nodes["patient_id"].isin(external_ids) & us_cohort.nodes["metastatic"].notna()]
    assert node_level["n_nodes"] == len(nodes) and node_level["node_events"] == int(nodes["metastatic"].sum())
    assert 0 <= node_level["auc_ci_low"] <= node_level["auc"] <= node_level["auc_ci_high"] <= 1
    assert "cluster bootstrap by patient" in node_level["auc_ci_method"]
    assert "Node AUC" in (report_with_model / "report.html").read_text()


def test_report_without_model_has_no_gallery_and_no_node_section(us_cohort, external_predictions, tmp_path):
    evaluate_predictions(external_predictions, us_cohort, tmp_path / "plain")
    html = (tmp_path / "plain" / "report.html").read_text()
    assert SECTION not in html and "Node level" not in html
    assert "node_level" not in json.loads((tmp_path / "plain" / "metrics.json").read_text())
    assert not (tmp_path / "plain" / "gallery").exists()


def test_patient_level_bundle_gets_a_note_instead_of_a_gallery(us_cohort, tmp_path):
    from lymphcast.bundle import load_bundle, save_bundle
    from lymphcast.pipeline import predict, train
    from lymphcast.predictions import write_predictions

    save_bundle(train(us_cohort, modalities=["clinical"], centres=["A"]), tmp_path / "clinical")
    frame, provenance = predict(load_bundle(tmp_path / "clinical"), us_cohort, centres=["B"])
    write_predictions(frame, tmp_path / "pred.csv", provenance)
    metrics = evaluate_predictions(tmp_path / "pred.csv", us_cohort, tmp_path / "r", model=tmp_path / "clinical")
    assert "no node-level image model" in metrics["node_level"]["note"]
    html = (tmp_path / "r" / "report.html").read_text()
    assert "no node-level image model" in html and SECTION not in html
    assert not (tmp_path / "r" / "gallery").exists()


def test_predictions_of_another_model_are_refused(us_cohort, us_bundle_dir, external_predictions, tmp_path):
    frame = pd.read_csv(external_predictions, dtype={"patient_id": str})
    provenance = json.loads(sidecar_path(external_predictions).read_text())
    frame.to_csv(tmp_path / "pred.csv", index=False)
    sidecar_path(tmp_path / "pred.csv").write_text(json.dumps({**provenance, "bundle_sha256": "0" * 64}))
    with pytest.raises(LymphCastError, match="not by the bundle"):
        evaluate_predictions(tmp_path / "pred.csv", us_cohort, tmp_path / "r", model=us_bundle_dir)
    assert not (tmp_path / "r").exists()


def test_detection_scores_come_from_the_models_detector_when_it_has_one(us_cohort, external_ids):
    from lymphcast.modalities.us_detect import NodeDetector
    from lymphcast.nets.detector_net import detector_net

    class Model:  # any node model; only `detector_` matters here
        pass

    model = Model()
    assert detection_scores(model, us_cohort) is None
    model.detector_ = NodeDetector(size=32, channels=(4, 8, 16), progress=False)
    model.detector_.state_dict_ = detector_net((4, 8, 16)).state_dict()  # untrained: the numbers do not matter
    scores = detection_scores(model, us_cohort.subset(external_ids))
    assert scores["iou"] == 0.5 and scores["n_true"] > 0
    assert {"recall", "precision", "f1", "tp", "n_pred"} <= set(scores)


def test_report_shows_detection_when_given(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"patient_id": [f"P{i}" for i in range(40)], "probability": rng.uniform(size=40),
                          "label": np.arange(40) % 2, "centre": "A"})
    detection = {"recall": 0.8, "precision": 0.5, "f1": 0.615, "tp": 8, "n_true": 10, "n_pred": 16, "iou": 0.5}
    write_report(frame, tmp_path, title="t", provenance={}, n_boot=20,
                 node_level={"model": "us_image", "note": "no labels", "detection": detection})
    html = (tmp_path / "report.html").read_text()
    assert "Node detection" in html and "recall 0.800" in html and "8 of 10 nodes found" in html
    assert SECTION not in html
