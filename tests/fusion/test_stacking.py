"""Masked stacking: missing modalities enter through their masks, the informative modality gets the weight, and
patients without it still get calibrated risks."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from lymphcast.fusion.design import level_index, level_labels, masked_logits, side_frame
from lymphcast.fusion.stacker import MaskedStacker


def _planted(n: int, seed: int):
    """Two modalities: 'strong' (log-odds close to the truth, missing for 40%) and 'noise' (unrelated)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-1.0, 1.5, n)
    y = (rng.random(n) < expit(z)).astype(int)
    strong = expit(z + rng.normal(0, 0.5, n))
    strong[rng.random(n) < 0.4] = np.nan
    noise = expit(rng.normal(0, 1, n))
    frame = pd.DataFrame({"strong": strong, "noise": noise}, index=pd.Index([f"p{i}" for i in range(n)]))
    return frame, pd.Series(y, index=frame.index)


def test_masked_logits_put_missing_at_zero_with_mask_zero():
    frame = pd.DataFrame({"a": [0.5, np.nan, 0.9]})
    x = masked_logits(frame, ["a", "b"])
    assert list(x.columns) == ["a", "a_present", "b", "b_present"]
    np.testing.assert_allclose(x["a"], [0.0, 0.0, np.log(9)], atol=1e-3)
    np.testing.assert_array_equal(x["a_present"], [1, 0, 1])
    assert (x["b"] == 0).all() and (x["b_present"] == 0).all()


def test_stacker_weighs_the_informative_modality_and_stays_calibrated_without_it():
    train, y = _planted(3000, 0)
    test, y_test = _planted(3000, 1)
    stacker = MaskedStacker(["strong", "noise"]).fit(train, y)
    w = stacker.weights()
    assert w["strong"] > 0.6 and abs(w["noise"]) < 0.15
    p = stacker.predict(test)
    assert roc_auc_score(y_test, p) > roc_auc_score(y_test, test["noise"]) + 0.2
    missing = test["strong"].isna()
    assert abs(p[missing].mean() - y_test[missing].mean()) < 0.03   # calibrated in the patients without it
    assert abs(p[~missing].mean() - y_test[~missing].mean()) < 0.03
    oof = stacker.oof_
    assert oof.notna().all() and roc_auc_score(y, oof) > 0.7


def test_side_frame_repeats_patient_modalities_and_marks_laterality():
    patients = pd.DataFrame({"clinical": [0.2, 0.7]}, index=pd.Index(["p1", "p2"], name="patient_id"))
    idx = pd.MultiIndex.from_product([["p1", "p2"], ["left", "right"]], names=["patient_id", "side"])
    sides = pd.DataFrame({"us_image": [0.1, 0.9, np.nan, 0.4]}, index=idx)
    frame = side_frame(["p1", "p2"], patients, sides, pd.Series({"p1": "right", "p2": "isthmus"}))
    assert frame.loc[("p1", "left"), "clinical"] == 0.2 and frame.loc[("p2", "right"), "clinical"] == 0.7
    assert np.isnan(frame.loc[("p2", "left"), "us_image"])
    assert frame["ipsilateral"].tolist() == [-1.0, 1.0, 0.0, 0.0]


def test_level_labels_from_nodes_and_side_status():
    idx = pd.MultiIndex.from_product([["p1", "p2", "p3"], ["left", "right"]], names=["patient_id", "side"])
    levels = level_index(idx)
    nodes = pd.DataFrame({"patient_id": ["p1", "p1"], "side": ["left", "left"], "level": ["III", "IV"],
                          "metastatic": [1, 0]})
    sides = pd.Series([1, 0, 0, 0, np.nan, np.nan], index=idx)
    y = level_labels(nodes, sides, levels)
    assert y[("p1", "left", "III")] == 1 and y[("p1", "left", "IV")] == 0 and y[("p1", "left", "II")] == 0
    assert (y.loc["p2"] == 0).all() and y.loc["p3"].isna().all()
