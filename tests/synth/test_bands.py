"""The 5,000-patient cohort lands in the published bands (CLINICAL_FACTS.md) that the parameters were tuned to."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from lymphcast.cohort import read_cohort


def test_cohort_passes_the_validator_and_matches_truth(cohort5000, truth5000):
    cohort = read_cohort(cohort5000)
    assert len(cohort.patients) == 5000 and cohort.meta.synthetic
    assert list(cohort.patients["patient_id"]) == list(truth5000["patients"]["patient_id"])
    assert (cohort.patients["n1b"].to_numpy() == truth5000["patients"]["label_recorded"].to_numpy()).all()
    assert list(cohort.nodes["node_id"]) == list(truth5000["nodes"]["node_id"])
    assert cohort.patients["braf_v600e"].isna().any() and cohort.patients["tsh_miu_l"].isna().any()
    assert not {"short_axis_mm", "occult", "metastatic_true"} & set(cohort.nodes.columns)  # no latent leak


def test_recorded_prevalence_per_centre(cohort5000):
    patients = pd.read_csv(cohort5000 / "patients.csv")
    prevalence = patients.groupby("centre")["n1b"].mean()
    assert len(prevalence) == 4
    assert prevalence.between(0.10, 0.25).all(), prevalence


def test_aucs_against_recorded_label(truth5000):
    t = truth5000["patients"]
    assert 0.75 <= roc_auc_score(t["label_recorded"], t["risk_clinical"]) <= 0.85
    assert 0.92 <= roc_auc_score(t["label_recorded"], t["risk_all"]) <= 0.97
    # every single modality is weaker than all of them together, and better than chance
    for view in ("us", "ct", "cytology", "clinical"):
        assert 0.6 < roc_auc_score(t["n1b_true"], t[f"risk_{view}"]) < roc_auc_score(t["n1b_true"], t["risk_all"])


def test_level_frequencies_among_true_n1b(truth5000):
    t, nodes = truth5000["patients"], truth5000["nodes"]
    positive = t.loc[t["n1b_true"] == 1, "patient_id"]
    met = nodes[(nodes["metastatic_true"] == 1) & nodes["patient_id"].isin(positive)]
    for level, target in {"IV": 0.75, "III": 0.69, "II": 0.57, "V": 0.25}.items():
        share = met.loc[met["level"] == level, "patient_id"].nunique() / len(positive)
        assert abs(share - target) <= 0.10, (level, share)
    assert met["patient_id"].nunique() == len(positive)  # every true N1b patient has a metastatic lateral node
    assert 0.70 <= (met.groupby("patient_id")["level"].nunique() >= 2).mean() <= 0.85


def test_label_noise_and_mediator(truth5000):
    t = truth5000["patients"]
    wrong = t["label_recorded"] != t["n1b_true"]
    assert 0.03 <= wrong.mean() <= 0.10
    missed = wrong & (t["n1b_true"] == 1)
    assert t.loc[missed, "clinically_node_negative"].mean() > 0.7  # mostly undissected clinically N0 necks
    skip = 1 - t.loc[t["n1b_true"] == 1, "clnm"].mean()  # CLINICAL_FACTS: skip metastases 12-15% of N1b
    assert 0.08 <= skip <= 0.20


def test_recorded_labels_are_consistent(cohort5000, truth5000):
    patients = pd.read_csv(cohort5000 / "patients.csv", dtype={"patient_id": str})
    nodes = pd.read_csv(cohort5000 / "nodes.csv", dtype={"patient_id": str})
    sides = patients[["lateral_left", "lateral_right"]].max(axis=1)
    assert (sides == patients["n1b"]).all()
    truth = truth5000["patients"].set_index("patient_id")
    same = patients.set_index("patient_id")["n1b"] == truth["n1b_true"]
    keep = nodes["patient_id"].map(same)
    assert (nodes.loc[keep, "metastatic"].to_numpy() == truth5000["nodes"].loc[keep, "metastatic_true"]).all()


def test_cytology_is_a_weak_to_moderate_signal(truth5000):
    t = truth5000["patients"].merge(truth5000["cytology"], on="patient_id")
    for flag in ("micropapillary", "loss_of_cohesion"):
        table = pd.crosstab(t[flag], t["n1b_true"]).to_numpy()
        odds_ratio = table[1, 1] * table[0, 0] / (table[1, 0] * table[0, 1])
        assert 1.2 < odds_ratio < 3.5, (flag, odds_ratio)
    assert np.isfinite(t[["hobnail_fraction", "tall_cell_fraction"]].to_numpy()).all()
