"""Failure analysis: the N1b patients the fused model rated lowest, with what each modality said and lacked."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest

from lymphcast.fusion.failures import explain_line, lowest_risk_n1b, worst_false_negatives


@pytest.fixture(scope="module")
def test_cohort(multimodal_cohort):
    return multimodal_cohort.in_centres(["D"])


@pytest.fixture(scope="module")
def scored(small_fused, test_cohort):
    return small_fused.predict_levels(test_cohort)


def test_explanation_reads_the_calls():
    calls = {"clinical": "raised", "us_image": "low", "ct": "low", "cytology": "missing"}
    assert explain_line(calls) == "ultrasound and CT both low; only clinical raised risk; cytology missing"
    assert explain_line({"clinical": "low", "cytology": "low", "us_image": "low"}) == \
        "clinical, cytology and ultrasound all low; no modality raised risk"


def test_lowest_risk_n1b_ignores_negatives_and_unlabelled():
    risk = pd.Series([0.01, 0.2, 0.05, 0.3, 0.02], index=["a", "b", "c", "d", "e"])
    labels = pd.Series([0, 1, 1, 1, pd.NA], index=risk.index, dtype="Int64")
    assert lowest_risk_n1b(risk, labels, 2).index.tolist() == ["c", "b"]


def test_picks_exactly_the_lowest_risk_n1b_patients(small_fused, test_cohort, scored):
    section, pictures = worst_false_negatives(small_fused, test_cohort, 0.4, scored, n=4)
    labels = test_cohort.labels()
    n1b = labels[labels == 1].index
    expected = scored["patients"].reindex(n1b).sort_values(kind="mergesort").head(4)
    assert [r["patient_id"] for r in section["rows"]] == [str(p) for p in expected.index]
    np.testing.assert_allclose([r["probability"] for r in section["rows"]], expected.to_numpy())
    assert section["n_n1b"] == len(n1b)
    assert section["missed"] == int((scored["patients"].reindex(n1b) < 0.4).sum())
    centres = test_cohort.patients.set_index("patient_id")["centre"]
    for row in section["rows"]:
        pid = row["patient_id"]
        assert row["centre"] == centres[pid] and row["missed"] == (row["probability"] < 0.4)
        own = scored["modalities"].loc[pid]
        assert row["missing"] == [m for m in own.index if pd.isna(own[m])]
        for call in row["modalities"]:
            if call["probability"] is not None:
                assert call["probability"] == pytest.approx(own[call["name"]])
                assert call["call"] == ("raised" if call["probability"] >= call["threshold"] else "low")
        # the truly involved levels are the metastatic nodes' lateral levels of that side
        nodes = test_cohort.nodes[(test_cohort.nodes["patient_id"] == pid) & (test_cohort.nodes["metastatic"] == 1)]
        for side in row["sides"]:
            truth = sorted(set(nodes.loc[nodes["side"] == side["side"], "level"]) & {"II", "III", "IV", "V"},
                           key=["II", "III", "IV", "V"].index)
            assert side["involved_levels"] == truth
            assert side["fused"] == pytest.approx(scored["sides"][(pid, side["side"])])
        # the most suspicious ultrasound node is drawn, as a PNG
        p_us = scored["nodes"].loc[scored["nodes"]["patient_id"] == pid, ["node_id", "p_us_image"]].dropna()
        if len(p_us):
            assert row["picture"]["node_id"] == p_us.loc[p_us["p_us_image"].idxmax(), "node_id"]
            assert base64.b64decode(pictures[pid])[:4] == b"\x89PNG"


def test_a_patient_without_cytology_is_named_as_missing_it(small_fused, test_cohort, scored):
    labels = test_cohort.labels()
    lacking = [p for p in labels[labels == 1].index if pd.isna(scored["modalities"].loc[p, "cytology"])]
    having = [p for p in labels[labels == 1].index if p not in lacking]
    assert lacking and having
    # make one patient without cytology the lowest risk of all, and one with cytology the second lowest
    patients = scored["patients"].copy()
    patients[lacking[0]], patients[having[0]] = 1e-4, 2e-4
    section, _ = worst_false_negatives(small_fused, test_cohort, 0.5, {**scored, "patients": patients}, n=2,
                                       pictures=False)
    first, second = section["rows"]
    assert first["patient_id"] == str(lacking[0]) and first["missing"] == ["cytology"]
    assert first["explanation"].endswith("cytology missing")
    assert second["patient_id"] == str(having[0]) and second["missing"] == []
    assert "missing" not in second["explanation"] and "picture" not in first
