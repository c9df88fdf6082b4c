import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from lymphcast.evaluate import auc_ci, auc_score, delong_test, roc_curve
from lymphcast.evaluate.discrimination import delong_auc_covariance, midranks

from .conftest import simulate


def psi(x, y):
    """1 if the event outranks the non-event, one half for a tie."""
    return (x > y) + 0.5 * (x == y)


def brute_structural(y, p):
    pos, neg = p[y == 1], p[y == 0]
    table = psi(pos[:, None], neg[None, :])  # every event/non-event pair
    return table.mean(axis=1), table.mean(axis=0), table.mean()


def tied_sample(seed=1, n=200):
    y, p, _ = simulate(n, seed)
    return y, np.round(p, 1)  # coarse scores: many ties


def test_midranks_match_scipy():
    x = np.array([3.0, 1.0, 3.0, 2.0, 3.0, 1.0])
    np.testing.assert_allclose(midranks(x), rankdata(x))


@pytest.mark.parametrize("data", [simulate(250, 0)[:2], tied_sample()])
def test_auc_matches_sklearn_and_pair_counting(data):
    y, p = data
    assert auc_score(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert auc_score(y, p) == pytest.approx(brute_structural(y, p)[2], abs=1e-12)


def test_roc_curve_matches_sklearn():
    y, p = tied_sample()
    fpr, tpr, thr = roc_curve(y, p)
    sk_fpr, sk_tpr, sk_thr = sk_roc_curve(y, p, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thr[1:], sk_thr[1:])


def test_flipping_labels_mirrors_auc():
    y, p = tied_sample()
    auc, low, high = auc_ci(y, p)
    f_auc, f_low, f_high = auc_ci(1 - y, p)
    assert f_auc == pytest.approx(1 - auc)
    assert (f_low, f_high) == pytest.approx((1 - high, 1 - low))


@pytest.mark.parametrize("data", [simulate(150, 5)[:2], tied_sample(seed=7, n=120)])
def test_delong_covariance_matches_brute_force(data):
    y, p = data
    noisy = np.round(p + np.random.default_rng(2).normal(0, 0.1, p.size), 2)
    comps = [brute_structural(y, s) for s in (p, noisy)]
    m, n = int(y.sum()), int((1 - y).sum())
    expected = np.empty((2, 2))
    for i in range(2):
        for j in range(2):
            v10 = np.cov(comps[i][0], comps[j][0])[0, 1]
            v01 = np.cov(comps[i][1], comps[j][1])[0, 1]
            expected[i, j] = v10 / m + v01 / n
    aucs, cov = delong_auc_covariance(y, np.vstack([p, noisy]))
    np.testing.assert_allclose(aucs, [c[2] for c in comps])
    np.testing.assert_allclose(cov, expected, rtol=1e-10)


def test_delong_ci_agrees_with_bootstrap():
    y, p, _ = simulate(400, seed=11)
    auc, low, high = auc_ci(y, p)
    rng = np.random.default_rng(0)
    boots = []
    for _ in range(1000):
        idx = rng.integers(0, y.size, y.size)
        if 0 < y[idx].sum() < y.size:
            boots.append(roc_auc_score(y[idx], p[idx]))
    b_low, b_high = np.quantile(boots, [0.025, 0.975])
    assert low < auc < high
    assert (high - low) == pytest.approx(b_high - b_low, rel=0.2)
    assert low == pytest.approx(b_low, abs=0.02) and high == pytest.approx(b_high, abs=0.02)


def test_delong_ci_coverage_is_near_nominal():
    # True AUC of the simulated risk, estimated once on a very large sample.
    y_big, _, risk_big = simulate(200_000, seed=99)
    true_auc = auc_score(y_big, risk_big)
    covered = 0
    for seed in range(200):
        y, _, risk = simulate(200, seed=seed)
        _, low, high = auc_ci(y, risk)
        covered += low <= true_auc <= high
    assert 0.90 <= covered / 200 <= 0.99


def test_paired_test_holds_its_size_for_equally_good_scores():
    rejections = 0
    for seed in range(200):
        y, _, risk = simulate(200, seed=seed)
        rng = np.random.default_rng(seed + 1000)
        logit = np.log(risk / (1 - risk))
        a, b = logit + rng.normal(0, 0.7, y.size), logit + rng.normal(0, 0.7, y.size)
        rejections += delong_test(y, a, b).p_value < 0.05
    assert 0.01 <= rejections / 200 <= 0.10


def test_paired_test_detects_a_planted_difference():
    y, _, risk = simulate(500, seed=4)
    rng = np.random.default_rng(12345)  # not the seed of simulate(), or the noise would track the risk
    weak = risk + rng.normal(0, 0.4, y.size)
    result = delong_test(y, risk, weak)
    assert result.difference == pytest.approx(auc_score(y, risk) - auc_score(y, weak))
    assert result.difference > 0 and result.p_value < 0.001
    assert result.difference_ci_low > 0
    assert delong_test(y, weak, risk).z == pytest.approx(-result.z)


def test_identical_scores_have_nothing_to_test(sample):
    y, p = sample
    result = delong_test(y, p, p)
    assert result.difference == 0 and result.p_value == 1.0


def test_single_class_is_rejected_clearly():
    with pytest.raises(ValueError, match="only one outcome class"):
        auc_score(np.zeros(10), np.linspace(0, 1, 10))
    with pytest.raises(ValueError, match="0/1"):
        auc_score(np.array([0, 1, 2]), np.array([0.1, 0.2, 0.3]))


def test_a_single_event_gives_an_open_interval_and_no_p_value_quietly():
    import warnings

    y = np.array([0, 0, 0, 1, 0, 0])
    p = np.array([0.1, 0.2, 0.3, 0.9, 0.4, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's degrees-of-freedom warnings would surface in `lymphcast demo`
        auc, low, high = auc_ci(y, p)
        test = delong_test(y, p, p[::-1])
    assert auc == 1.0 and (low, high) == (0.0, 1.0)
    assert np.isnan(test.p_value)
