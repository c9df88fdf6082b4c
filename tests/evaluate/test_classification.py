import numpy as np
import pytest

from lymphcast.evaluate import threshold_metrics, wilson_ci
from lymphcast.evaluate.classification import confusion_counts

from .conftest import simulate


def wilson_by_hand(k, n, z=1.959963984540054):
    phat = k / n
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (57, 200), (1, 1)])
def test_wilson_matches_the_formula(k, n):
    estimate, low, high = wilson_ci(k, n)
    assert estimate == pytest.approx(k / n)
    assert (low, high) == pytest.approx(wilson_by_hand(k, n), abs=1e-10)


def test_wilson_edge_cases():
    assert all(np.isnan(wilson_ci(0, 0)))
    with pytest.raises(ValueError):
        wilson_ci(5, 3)


def test_threshold_metrics_count_ties_as_positive():
    y = np.array([1, 1, 0, 0, 1, 0])
    p = np.array([0.9, 0.3, 0.3, 0.1, 0.2, 0.8])
    assert confusion_counts(y, p, 0.3) == (2, 2, 1, 1)  # tp, fp, tn, fn


def test_threshold_metrics_match_brute_force():
    y, p, _ = simulate(300, seed=6)
    m = threshold_metrics(y, p, 0.3)
    tp = sum(1 for a, b in zip(y, p) if a == 1 and b >= 0.3)
    fp = sum(1 for a, b in zip(y, p) if a == 0 and b >= 0.3)
    tn = sum(1 for a, b in zip(y, p) if a == 0 and b < 0.3)
    fn = sum(1 for a, b in zip(y, p) if a == 1 and b < 0.3)
    assert (m.tp, m.fp, m.tn, m.fn) == (tp, fp, tn, fn)
    assert m.sensitivity == wilson_ci(tp, tp + fn)
    assert m.npv == wilson_ci(tn, tn + fn)
    d = m.to_dict()
    assert d["specificity"] == pytest.approx(tn / (tn + fp))
    assert d["ppv_ci_low"] < d["ppv"] < d["ppv_ci_high"]
    assert d["accuracy"] == pytest.approx((tp + tn) / 300)


def test_nobody_positive_gives_undefined_ppv():
    y, p, _ = simulate(50, seed=6)
    m = threshold_metrics(y, p, 1.1)
    assert m.tp == m.fp == 0 and np.isnan(m.ppv[0]) and m.specificity[0] == 1.0
