"""The report's cine-clip panel: risk over time streamed frame by frame and the key frames of sample clips, through
`evaluate --model` with a clip-model bundle."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lymphcast.cohort import read_cohort
from lymphcast.evaluate_run import evaluate_predictions
from lymphcast.explain.clip_gallery import build_clip_gallery, risk_trace
from lymphcast.modalities.us_video_clips import video_nodes
from lymphcast.predictions import read_predictions

TINY = {"epochs": 1, "head_epochs": 1, "frames": 6, "size": 24, "channels": (4, 8), "progress": False}


@pytest.fixture(scope="module")
def video_cohort(tmp_path_factory):
    from lymphcast.synth import generate_cohort

    # as the image gallery's cohort (seed 3, 24 patients): centre A has 5 of 11 with N1b, enough to train on
    folder = generate_cohort(tmp_path_factory.mktemp("clips") / "cohort", patients=24, centres=2, seed=3,
                             modalities=["clinical", "us_video"], progress=False)
    return read_cohort(folder)


@pytest.fixture(scope="module")
def video_run(video_cohort, tmp_path_factory):
    from lymphcast.bundle import save_bundle
    from lymphcast.pipeline import predict, train
    from lymphcast.predictions import write_predictions

    bundle = train(video_cohort, modalities=["us_video"], centres=["A"], options={"us_video": TINY})
    folder = tmp_path_factory.mktemp("clip_model") / "bundle"
    save_bundle(bundle, folder)
    frame, provenance = predict(bundle, video_cohort, centres=["B"])
    csv = write_predictions(frame, tmp_path_factory.mktemp("clip_pred") / "pred.csv", provenance)
    return bundle, folder, csv


def test_trace_ends_at_the_offline_risk_and_names_sampled_key_frames(video_cohort, video_run):
    model = video_run[0].models["us_video"]
    test = video_cohort.in_centres(["B"])
    row = video_nodes(test).iloc[0].to_dict()
    trace = risk_trace(model, test, row)
    assert len(trace.risk) == len(trace.times) == int(row["us_video_frames"]) and np.all(np.diff(trace.times) > 0)
    assert trace.risk[-1] == pytest.approx(model.predict_nodes(test)[row["node_id"]], abs=1e-5)
    assert 1 <= len(trace.key_frames) <= 3 and all(0 <= k < len(trace.risk) for k in trace.key_frames)
    assert trace.weights == sorted(trace.weights, reverse=True) and sum(trace.weights) <= 1 + 1e-6


def test_gallery_pngs_and_entries(video_cohort, video_run, tmp_path):
    bundle, _, csv = video_run
    predictions, _ = read_predictions(csv)
    entries = build_clip_gallery(bundle.models["us_video"], video_cohort.subset(predictions["patient_id"]),
                                 predictions, bundle.threshold, tmp_path)
    assert entries and len({e.category for e in entries}) == len(entries)
    for e in entries:
        assert (tmp_path / e.png).stat().st_size > 5000 and e.png.startswith("clips/")
        assert e.node_id.startswith(e.patient_id + "-") and e.key_frames


def test_evaluate_with_a_clip_bundle_adds_node_auc_and_the_clip_panel(video_cohort, video_run, tmp_path):
    _, folder, csv = video_run
    metrics = evaluate_predictions(csv, video_cohort, tmp_path / "report", model=folder)
    html = (tmp_path / "report" / "report.html").read_text()
    assert "Cine clips: risk over time and key frames" in html and "Grad-CAM" not in html.split("<h2>How")[0][-3000:]
    assert metrics["node_level"]["model"] == "us_video" and "auc" in metrics["node_level"]
    assert any((tmp_path / "report" / "clips").glob("*.png"))
    saved = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert saved["node_level"]["n_nodes"] == metrics["node_level"]["n_nodes"] > 0
