import numpy as np
import pytest

from lymphcast.evaluate import auc_score, bootstrap_ci, bootstrap_indices, roc_band
from lymphcast.evaluate.bootstrap import tpr_at_fpr

from .conftest import simulate


def node_level(patients=80, seed=0):
    """Rows are nodes; each patient has 1-6 nodes sharing that patient's risk and outcome."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 7, patients)
    patient_risk = rng.uniform(0, 1, patients)
    patient_y = rng.binomial(1, patient_risk)
    ids = np.repeat(np.arange(patients), sizes)
    return patient_y[ids], patient_risk[ids] + rng.normal(0, 0.01, ids.size), ids


def test_row_resamples_keep_the_number_of_events():
    y, _, _ = simulate(100, seed=1)
    for idx in bootstrap_indices(y, n_boot=50, seed=0):
        assert idx.size == y.size and y[idx].sum() == y.sum()


def test_cluster_bootstrap_never_splits_a_cluster():
    y, _, ids = node_level()
    row_index = np.arange(y.size, dtype=float)
    seen = []

    def record(y_b, p_b):  # the scores are row numbers, so the metric sees which rows were drawn
        seen.append(p_b.astype(int))
        return 0.0

    bootstrap_ci(record, y, row_index, clusters=ids, n_boot=100, seed=1)
    for drawn in seen[1:]:  # seen[0] is the estimate on the full data
        counts = np.bincount(drawn, minlength=y.size)
        for patient in np.unique(ids):
            rows = counts[ids == patient]
            assert (rows == rows[0]).all(), "a patient's nodes were drawn different numbers of times"
    # Every resample draws as many patients as there are, so the patient count is preserved on average.
    drawn_patients = [np.bincount(d, minlength=y.size)[np.r_[0, np.flatnonzero(np.diff(ids)) + 1]].sum()
                      for d in seen[1:]]
    assert set(drawn_patients) == {len(np.unique(ids))}


def test_cluster_bootstrap_is_wider_than_pretending_rows_are_independent():
    y, p, ids = node_level(patients=120, seed=3)
    _, row_low, row_high = bootstrap_ci(auc_score, y, p, n_boot=400, seed=0)
    _, cl_low, cl_high = bootstrap_ci(auc_score, y, p, clusters=ids, n_boot=400, seed=0)
    assert (cl_high - cl_low) > 1.5 * (row_high - row_low)


def test_bootstrap_ci_of_a_mean_matches_the_normal_interval():
    y, p, _ = simulate(500, seed=2)
    estimate, low, high = bootstrap_ci(lambda y_b, p_b: p_b.mean(), y, p, n_boot=2000, seed=5)
    assert estimate == pytest.approx(p.mean())
    # Stratified by outcome, so the width is a little below that of an unstratified interval.
    se = p.std(ddof=1) / np.sqrt(p.size)
    assert (high - low) == pytest.approx(2 * 1.96 * se, rel=0.25)
    assert bootstrap_ci(lambda a, b: b.mean(), y, p, n_boot=50, seed=5) == \
        bootstrap_ci(lambda a, b: b.mean(), y, p, n_boot=50, seed=5)


def test_tpr_at_fpr_takes_the_top_of_a_vertical_step():
    fpr = np.array([0.0, 0.0, 0.5, 0.5, 1.0])
    tpr = np.array([0.0, 0.4, 0.6, 0.9, 1.0])
    np.testing.assert_allclose(tpr_at_fpr(fpr, tpr, np.array([0.0, 0.25, 0.5, 0.75])), [0.4, 0.65, 0.9, 0.95])


def test_roc_band_brackets_the_curve():
    y, p, _ = simulate(300, seed=8)
    band = roc_band(y, p, n_boot=300, seed=0)
    assert band.fpr.shape == band.tpr.shape == band.low.shape == band.high.shape == (101,)
    assert (band.low <= band.tpr + 1e-12).mean() > 0.95 and (band.high >= band.tpr - 1e-12).mean() > 0.95
    assert band.tpr[-1] == 1.0 and (np.diff(band.tpr) >= 0).all()
    assert np.trapezoid(band.tpr, band.fpr) == pytest.approx(auc_score(y, p), abs=0.01)
    assert (band.high - band.low)[10:90].min() > 0
