import numpy as np
import pytest
from sklearn.metrics import brier_score_loss

from lymphcast.evaluate import brier_score, calibration_curve, calibration_intercept_slope

from .conftest import simulate


def test_perfectly_calibrated_risks_give_intercept_0_and_slope_1():
    y, p, _ = simulate(20_000, seed=1)
    fit = calibration_intercept_slope(y, p)
    assert fit.intercept[1] < 0 < fit.intercept[2] and fit.slope[1] < 1 < fit.slope[2]
    assert abs(fit.intercept[0]) < 0.1 and abs(fit.slope[0] - 1) < 0.1


def test_overconfident_risks_give_slope_below_1():
    y, p, _ = simulate(20_000, seed=2, slope=2.0)  # logit doubled
    slope, low, high = calibration_intercept_slope(y, p).slope
    assert slope == pytest.approx(0.5, abs=0.05) and high < 1


def test_risks_too_low_give_positive_intercept():
    y, p, _ = simulate(20_000, seed=3, shift=-1.0)
    intercept, low, high = calibration_intercept_slope(y, p).intercept
    assert intercept == pytest.approx(1.0, abs=0.1) and low > 0
    assert calibration_intercept_slope(y, p).slope[0] == pytest.approx(1.0, abs=0.1)


def test_extreme_predictions_are_clipped_not_infinite():
    y = np.array([0, 1, 0, 1, 1, 0, 0, 1])
    p = np.array([0.0, 1.0, 0.2, 0.7, 0.4, 0.6, 0.1, 0.3])
    fit = calibration_intercept_slope(y, p)
    assert np.isfinite(fit.intercept).all() and np.isfinite(fit.slope).all()


def test_perfect_separation_is_refused():
    with pytest.raises(ValueError, match="separate"):
        calibration_intercept_slope(np.array([0, 0, 0, 1, 1, 1]), np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9]))


def test_brier_matches_sklearn():
    y, p, _ = simulate(500, seed=4)
    assert brier_score(y, p) == pytest.approx(brier_score_loss(y, p))


def test_quantile_bins_match_brute_force():
    y, p, _ = simulate(1000, seed=5)
    bins = calibration_curve(y, p, n_bins=10)
    assert bins.count.sum() == 1000 and set(bins.count) == {100}
    order = np.argsort(p)
    for b in range(10):
        rows = order[b * 100:(b + 1) * 100]
        assert bins.mean_predicted[b] == pytest.approx(p[rows].mean())
        assert bins.observed[b] == pytest.approx(y[rows].mean())
    assert (bins.observed_low <= bins.observed).all() and (bins.observed <= bins.observed_high).all()


def test_uniform_bins_drop_empty_ones():
    y = np.array([0, 1, 0, 1])
    p = np.array([0.05, 0.08, 0.91, 0.95])
    bins = calibration_curve(y, p, n_bins=10, strategy="uniform")
    np.testing.assert_array_equal(bins.count, [2, 2])
    np.testing.assert_allclose(bins.observed, [0.5, 0.5])
    with pytest.raises(ValueError, match="strategy"):
        calibration_curve(y, p, strategy="kmeans")


def test_probabilities_outside_0_1_are_rejected():
    with pytest.raises(ValueError, match="between 0 and 1"):
        brier_score(np.array([0, 1]), np.array([0.5, 1.5]))
