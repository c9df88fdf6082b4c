"""Pipeline properties: models never read truth/, predictions are reproducible, bundles round-trip."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd

from lymphcast.bundle import load_bundle, save_bundle
from lymphcast.cohort import read_cohort
from lymphcast.pipeline import predict, train


def test_scrambling_truth_leaves_predictions_unchanged(synth_cohort_dir, tmp_path):
    copy = tmp_path / "scrambled"
    shutil.copytree(synth_cohort_dir, copy)
    rng = np.random.default_rng(0)
    for path in (copy / "truth").glob("*.csv"):
        frame = pd.read_csv(path)
        for column in frame.columns:
            frame[column] = rng.permutation(frame[column].to_numpy())
        frame.to_csv(path, index=False)
    original, scrambled = read_cohort(synth_cohort_dir), read_cohort(copy)
    p1, _ = predict(train(original, centres=["A", "B"]), original, centres=["C", "D"])
    p2, _ = predict(train(scrambled, centres=["A", "B"]), scrambled, centres=["C", "D"])
    pd.testing.assert_frame_equal(p1, p2)


def test_bundle_round_trip_gives_identical_predictions(synth_cohort_dir, tmp_path):
    cohort = read_cohort(synth_cohort_dir)
    bundle = train(cohort, centres=["A", "B", "C"], options={"clinical": {"kind": "gbm"}})
    digest = save_bundle(bundle, tmp_path / "m")
    again = load_bundle(tmp_path / "m")
    before, _ = predict(bundle, cohort, centres=["D"])
    after, provenance = predict(again, cohort, centres=["D"])
    pd.testing.assert_frame_equal(before, after)
    assert provenance["bundle_sha256"] == digest
    assert 0 < again.threshold < 1
    card = (tmp_path / "m" / "MODEL_CARD.md").read_text()
    assert digest in card and "centres A, B, C" in card and "Intended use" in card
