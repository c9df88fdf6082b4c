import numpy as np
import pytest

from lymphcast.evaluate import threshold_for_sensitivity, threshold_for_specificity, youden_threshold

from .conftest import simulate


def rates(y, p, t):
    positive = p >= t
    return positive[y == 1].mean(), (~positive[y == 0]).mean()


@pytest.fixture(params=[0, 1])
def data(request):
    y, p, _ = simulate(257, seed=request.param + 20)
    return y, (np.round(p, 2) if request.param else p)  # the second has ties


@pytest.mark.parametrize("target", [0.9, 0.95, 0.5, 1.0])
def test_sensitivity_threshold_is_the_largest_that_reaches_the_target(data, target):
    y, p = data
    brute = max(t for t in np.unique(p) if rates(y, p, t)[0] >= target)
    t = threshold_for_sensitivity(y, p, target)
    assert t == brute and rates(y, p, t)[0] >= target
    assert rates(y, p, np.nextafter(t, 2))[0] < target  # any higher threshold misses the target


@pytest.mark.parametrize("target", [0.9, 0.5, 1.0])
def test_specificity_threshold_is_the_smallest_that_reaches_the_target(data, target):
    y, p = data
    candidates = [*np.unique(p), np.nextafter(p.max(), 2)]
    brute = min(t for t in candidates if rates(y, p, t)[1] >= target)
    t = threshold_for_specificity(y, p, target)
    assert t == brute and rates(y, p, t)[1] >= target


def test_youden_matches_brute_force(data):
    y, p = data
    j = {t: sum(rates(y, p, t)) - 1 for t in np.unique(p)}
    best = max(j.values())
    t = youden_threshold(y, p)
    assert sum(rates(y, p, t)) - 1 == pytest.approx(best)


def test_bad_targets_are_rejected(data):
    with pytest.raises(ValueError):
        threshold_for_sensitivity(*data, 0.0)
    with pytest.raises(ValueError):
        threshold_for_specificity(*data, 1.5)
