"""Node → side → patient roll-up: side features against hand-computed and brute-force values, the fixed
roll-ups' formulas, the learned one fitted with and without side labels, and compare_rollups' table with a
cross-fitted learned roll-up that never scores a patient it was fitted on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from lymphcast.cohort.schema import LATERAL_LEVELS, SIDES
from lymphcast.modalities import rollup as rollup_module
from lymphcast.modalities.rollup import ROLLUPS, Rollup, compare_rollups, side_features


def _simulate(n_patients=300, seed=0):
    """Independent nodes: each node is metastatic with its own probability p (the model's output, perfectly
    calibrated), so a side is positive with probability noisy-OR(p) of its lateral nodes. Central (VI) nodes
    are listed but never make a side positive; unknown-level (detector) nodes do."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_patients):
        pid = f"P{i:04d}"
        for side in SIDES:
            for _ in range(rng.poisson(2.0)):
                level = rng.choice([*LATERAL_LEVELS, "VI", None], p=[0.25, 0.25, 0.2, 0.1, 0.1, 0.1])
                p = float(rng.beta(0.5, 3.0))
                rows.append({"patient_id": pid, "side": side, "level": level, "p": p, "y": int(rng.random() < p)})
    nodes = pd.DataFrame(rows)
    ids = [f"P{i:04d}" for i in range(n_patients)]
    lateral = nodes[nodes["level"] != "VI"]
    index = pd.MultiIndex.from_product([ids, SIDES], names=["patient_id", "side"])
    side_y = lateral.groupby(["patient_id", "side"])["y"].max().reindex(index).fillna(0).astype(int)
    patient_y = side_y.groupby(level="patient_id").max().reindex(ids)
    return nodes, ids, side_y, patient_y


@pytest.fixture(scope="module")
def simulated():
    nodes, ids, side_y, patient_y = _simulate()
    return side_features(nodes, ids), side_y, patient_y, nodes


# --- side_features ----------------------------------------------------------------------------------------

def test_side_features_by_hand():
    nodes = pd.DataFrame({"patient_id": ["a", "a", "a", "a", "b", "z"],
                          "side": ["left", "left", "left", "right", "left", "left"],
                          "level": ["II", "II", "IV", "VI", None, "III"],
                          "p": [0.2, 0.5, 0.1, 0.9, 0.3, 0.7]})
    f = side_features(nodes, ["a", "b", "c"])
    assert list(f.index) == [(p, s) for p in "abc" for s in SIDES]
    assert list(f.columns) == ["noisy_or", "max", *(f"n_{lv}" for lv in LATERAL_LEVELS)]
    assert f.loc[("a", "left"), "noisy_or"] == pytest.approx(1 - 0.8 * 0.5 * 0.9)
    assert f.loc[("a", "left"), "max"] == pytest.approx(0.5)
    assert f.loc[("a", "left"), ["n_II", "n_III", "n_IV", "n_V"]].tolist() == [2, 0, 1, 0]
    assert f.loc[("a", "right")].tolist() == [0.0] * 6  # its only node is central (VI): ignored
    assert f.loc[("b", "left"), ["noisy_or", "max"]].tolist() == pytest.approx([0.3, 0.3])  # unknown level counts
    assert f.loc[("b", "left"), ["n_II", "n_III", "n_IV", "n_V"]].tolist() == [0, 0, 0, 0]  # ...but in no level
    assert (f.loc["c"] == 0).all().all()  # a patient without nodes
    assert "z" not in f.index.get_level_values("patient_id")  # not asked for


def test_side_features_against_brute_force(simulated):
    f, _, _, nodes = simulated
    for (pid, side), row in f.sample(60, random_state=0).iterrows():
        mine = nodes[(nodes["patient_id"] == pid) & (nodes["side"] == side) & (nodes["level"] != "VI")]
        p = mine["p"].to_numpy()
        assert row["noisy_or"] == pytest.approx(1 - np.prod(1 - p) if len(p) else 0.0)
        assert row["max"] == pytest.approx(p.max() if len(p) else 0.0)
        for lv in LATERAL_LEVELS:
            assert row[f"n_{lv}"] == (mine["level"] == lv).sum()


def test_side_features_without_any_lateral_node():
    nodes = pd.DataFrame({"patient_id": ["a"], "side": ["left"], "level": ["VI"], "p": [0.9]})
    f = side_features(nodes, ["a", "b"])
    assert f.shape == (4, 6) and (f.to_numpy() == 0).all()
    f = side_features(nodes.iloc[0:0], ["a"])
    assert f.shape == (2, 6) and (f.to_numpy() == 0).all()


# --- the roll-ups -----------------------------------------------------------------------------------------

def test_unknown_rollup_is_a_clear_error():
    with pytest.raises(ValueError, match="noisy_or"):
        Rollup("mean")


def test_max_and_noisy_or_formulas(simulated):
    f, side_y, patient_y, nodes = simulated
    lateral = nodes[nodes["level"] != "VI"]
    by_patient = lateral.groupby("patient_id")["p"]
    ids = patient_y.index
    expected_or = (1 - by_patient.apply(lambda p: np.prod(1 - p))).reindex(ids).fillna(0.0)
    expected_max = by_patient.max().reindex(ids).fillna(0.0)
    for method, expected in (("noisy_or", expected_or), ("max", expected_max)):
        r = Rollup(method)
        assert r.fit(f, side_y, patient_y) is r  # nothing to fit
        pd.testing.assert_series_equal(r.sides(f), f[method].rename("probability"))
        got = r.patients(f)
        assert got.name == "probability" and set(got.index) == set(ids)
        np.testing.assert_allclose(got.loc[ids].to_numpy(), expected.to_numpy(), atol=1e-12)


@pytest.mark.parametrize("labels", ["sides", "none", "incomplete"])
def test_learned_fits_with_or_without_side_labels(simulated, labels):
    f, side_y, patient_y, _ = simulated
    given = {"sides": side_y, "none": None, "incomplete": side_y.astype(float).mask(side_y.index == side_y.index[0])}
    r = Rollup("learned").fit(f, given[labels], patient_y)
    assert r.fitted_on_ == ("sides" if labels == "sides" else "patients")
    p_side, p_patient = r.sides(f), r.patients(f)
    assert p_side.index.equals(f.index)
    assert set(p_patient.index) == set(patient_y.index) and p_patient.name == "probability"
    for p in (p_side, p_patient):
        assert p.notna().all() and ((p > 0) & (p < 1)).all()
    # informative (in sample): ranks the patients about as well as the true noisy-OR does
    auc = roc_auc_score(patient_y, p_patient.loc[patient_y.index])
    assert auc > 0.75 and auc > roc_auc_score(patient_y, Rollup("noisy_or").patients(f).loc[patient_y.index]) - 0.05


# --- compare_rollups --------------------------------------------------------------------------------------

def test_compare_rollups_table_and_probabilities(simulated):
    f, side_y, patient_y, _ = simulated
    table, probs = compare_rollups(f, side_y, patient_y, seed=0)
    assert set(table.index) == set(ROLLUPS) == set(probs) and table.index.name == "rollup"
    assert {"log_loss", "auc"} <= set(table.columns)
    for method, p in probs.items():
        p = p.loc[patient_y.index]
        assert p.notna().all() and ((p >= 0) & (p <= 1)).all(), method
        assert table.loc[method, "auc"] == pytest.approx(roc_auc_score(patient_y, p))
        assert table.loc[method, "log_loss"] == pytest.approx(log_loss(patient_y, np.clip(p, 1e-5, 1 - 1e-5)))
    # data made as the noisy-OR of independent, calibrated nodes: noisy-OR is the better-calibrated roll-up
    assert table.loc["noisy_or", "log_loss"] < table.loc["max", "log_loss"]
    assert table.loc["learned", "auc"] > 0.75


@pytest.mark.parametrize("with_side_labels", [True, False])
def test_learned_is_cross_fitted(simulated, monkeypatch, with_side_labels):
    """Every patient's learned probability comes from a model fitted without that patient."""
    f, side_y, patient_y, _ = simulated
    fit, patients = Rollup.fit, Rollup.patients
    fitted_on, scored = [], []

    def spy_fit(self, sides, side_labels, patient_labels):
        self._spy_ids = set(sides.index.get_level_values("patient_id")) | set(patient_labels.index)
        fitted_on.append(self._spy_ids)
        return fit(self, sides, side_labels, patient_labels)

    def spy_patients(self, sides):
        if self.method == "learned":
            asked = set(sides.index.get_level_values("patient_id"))
            assert not asked & self._spy_ids, "a patient scored by a model fitted on it"
            scored.append(asked)
        return patients(self, sides)

    monkeypatch.setattr(rollup_module.Rollup, "fit", spy_fit)
    monkeypatch.setattr(rollup_module.Rollup, "patients", spy_patients)
    _, probs = compare_rollups(f, side_y if with_side_labels else None, patient_y, seed=1)
    assert len(fitted_on) == len(scored) == 5
    assert sorted(pid for s in scored for pid in s) == sorted(patient_y.index)  # each patient once
    assert probs["learned"].loc[patient_y.index].notna().all()


def test_learned_needs_ten_of_each_class(simulated):
    f, side_y, patient_y, _ = simulated
    pos = patient_y.index[patient_y == 1][:9]
    neg = patient_y.index[patient_y == 0][:60]
    ids = pos.append(neg)
    sub = f.loc[f.index.get_level_values("patient_id").isin(ids)]
    table, probs = compare_rollups(sub, side_y.loc[sub.index], patient_y.loc[ids])
    assert set(table.index) == {"noisy_or", "max"} == set(probs)


def test_one_class_only_gives_log_loss_and_no_auc(simulated):
    f, side_y, patient_y, _ = simulated
    ids = patient_y.index[patient_y == 0][:20]
    sub = f.loc[f.index.get_level_values("patient_id").isin(ids)]
    table, _ = compare_rollups(sub, side_y.loc[sub.index], patient_y.loc[ids])
    assert table["auc"].isna().all() and (table["log_loss"] > 0).all() and np.isfinite(table["log_loss"]).all()
