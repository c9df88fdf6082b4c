from __future__ import annotations

import base64
import itertools

import numpy as np
import pytest
from scipy import stats

from lymphcast.evaluate import literature as lit
from lymphcast.evaluate.plots import figure_to_base64_png


@pytest.fixture(scope="module")
def table():
    return lit.load_literature()


@pytest.fixture(scope="module")
def pooled(table):
    return lit.pool_literature(table=table)


def _counts(sens, spec, diseased=50, healthy=150):
    """Exact 2x2 counts for given per-study rates."""
    tp = np.round(np.asarray(sens) * diseased).astype(int)
    tn = np.round(np.asarray(spec) * healthy).astype(int)
    return tp, diseased - tp, tn, healthy - tn


def test_packaged_table_loads_typed_with_rates_in_unit_interval(table):
    assert len(table) == 8 and table["study"].is_unique
    rates = table[["us_sensitivity", "us_specificity", "ct_sensitivity", "ct_specificity"]].to_numpy()
    assert rates.dtype == float and ((rates >= 0) & (rates <= 1)).all()
    assert (table["patients"] > 0).all() and table["patients"].sum() == 3133
    assert table["year"].between(2008, 2019).all()


def test_reconstructed_counts_add_up_and_reproduce_the_rates(table):
    counts = lit.reconstruct_counts(table, "ct", prevalence=0.2)
    total = counts[["tp", "fn", "tn", "fp"]].sum(axis=1)
    assert (total == table["patients"]).all() and (counts[["tp", "fn", "tn", "fp"]] >= 0).all().all()
    sens = counts.tp / (counts.tp + counts.fn)
    assert np.abs(sens - table["ct_sensitivity"]).max() < 0.02  # rounding to whole patients only
    with pytest.raises(ValueError):
        lit.reconstruct_counts(table, "mri")
    with pytest.raises(ValueError):
        lit.reconstruct_counts(table, "us", prevalence=1.0)


@pytest.mark.parametrize("pool", [lit.pool_bivariate, lit.pool_univariate_dl])
def test_identical_studies_pool_to_their_value_with_no_heterogeneity(pool):
    tp, fn, tn, fp = _counts([0.8] * 5, [0.9] * 5)
    result = pool(tp, fn, tn, fp, correction=0.0)
    assert result.sensitivity[0] == pytest.approx(0.8) and result.specificity[0] == pytest.approx(0.9)
    assert result.tau2_sensitivity == pytest.approx(0.0, abs=1e-6)
    assert result.tau2_specificity == pytest.approx(0.0, abs=1e-6)
    assert result.sensitivity[1] < 0.8 < result.sensitivity[2] and result.n_studies == 5


@pytest.mark.parametrize("method", ["bivariate", "dl"])
def test_pooled_estimates_lie_within_the_range_of_the_studies(table, pooled, method):
    results = pooled if method == "bivariate" else lit.pool_literature(method=method, table=table)
    for modality, result in results.items():
        for rate in ("sensitivity", "specificity"):
            values = table[f"{modality}_{rate}"]
            estimate, low, high = getattr(result, rate)
            assert values.min() <= estimate <= values.max() and low < estimate < high
        assert result.n_studies == 8 and result.n_patients == 3133


def test_interval_widens_and_tau2_grows_when_studies_disagree_more():
    base_sens, base_spec = np.array([0.7, 0.75, 0.8, 0.85]), np.array([0.8, 0.85, 0.85, 0.9])
    centre = np.log(0.78 / 0.22)
    logits = np.log(base_sens / (1 - base_sens))
    spread_sens = 1 / (1 + np.exp(-(centre + 3 * (logits - logits.mean()))))  # same centre, 3x the spread
    for pool in (lit.pool_bivariate, lit.pool_univariate_dl):
        calm = pool(*_counts(base_sens, base_spec))
        wild = pool(*_counts(spread_sens, base_spec))
        width = lambda r: r.sensitivity[2] - r.sensitivity[1]  # noqa: E731
        assert width(wild) > 1.5 * width(calm)
        assert wild.tau2_sensitivity > calm.tau2_sensitivity


def test_reml_deviance_matches_a_direct_multivariate_normal_computation():
    rng = np.random.default_rng(4)
    y, var = rng.normal(1.0, 0.6, size=(5, 2)), rng.uniform(0.05, 0.3, size=(5, 2))
    tau2, rho = np.array([0.2, 0.4]), -0.6
    sigma = np.array([[tau2[0], rho * np.sqrt(tau2.prod())], [rho * np.sqrt(tau2.prod()), tau2[1]]])
    covs = [sigma + np.diag(v) for v in var]
    weights = [np.linalg.inv(c) for c in covs]
    mu = np.linalg.solve(sum(weights), sum(w @ yi for w, yi in zip(weights, y)))
    loglik = sum(stats.multivariate_normal(mu, c).logpdf(yi) for c, yi in zip(covs, y))
    expected = -2 * loglik - len(y) * 2 * np.log(2 * np.pi) + np.linalg.slogdet(sum(weights))[1]
    assert lit.reml_deviance(y, var, tau2, rho) == pytest.approx(expected, rel=1e-10)


def test_bivariate_fit_is_no_worse_than_a_grid_search():
    tp, fn, tn, fp = _counts([0.6, 0.75, 0.9, 0.8], [0.9, 0.8, 0.6, 0.85], diseased=40, healthy=80)
    fit = lit.pool_bivariate(tp, fn, tn, fp)
    y, var = lit.logit_effects(tp, fn, tn, fp)
    best = lit.reml_deviance(y, var, [fit.tau2_sensitivity, fit.tau2_specificity], fit.rho)
    grid = itertools.product(np.geomspace(1e-3, 4, 14), np.geomspace(1e-3, 4, 14), np.linspace(-0.98, 0.98, 11))
    assert best <= min(lit.reml_deviance(y, var, [a, b], r) for a, b, r in grid) + 1e-6


def test_dersimonian_laird_matches_statsmodels_and_truncates_tau2_at_zero():
    from statsmodels.stats.meta_analysis import combine_effects

    tp, fn, tn, fp = _counts([0.6, 0.75, 0.9, 0.8, 0.7], [0.9, 0.8, 0.6, 0.85, 0.7])
    ours = lit.pool_univariate_dl(tp, fn, tn, fp)
    y, var = lit.logit_effects(tp, fn, tn, fp)
    theirs = combine_effects(y[:, 0], var[:, 0], method_re="dl")
    assert ours.tau2_sensitivity == pytest.approx(theirs.tau2) and theirs.tau2 > 0
    low, high = theirs.conf_int(use_t=False)[1]
    expit = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    assert ours.sensitivity == pytest.approx((expit(theirs.mean_effect_re), expit(low), expit(high)))
    homogeneous = lit.pool_univariate_dl(*_counts([0.8, 0.82, 0.79], [0.9, 0.9, 0.91]))
    assert homogeneous.tau2_sensitivity == 0.0 and homogeneous.tau2_specificity == 0.0


def test_prevalence_assumption_moves_the_pooled_estimates_only_slightly(table, pooled):
    # the ends of CLINICAL_FACTS' range: operated PTC (~10%) and surgical referral series (~25%, the default)
    results = {0.10: lit.pool_literature(0.10, table=table), 0.25: pooled}
    for modality in lit.MODALITIES:
        sens = [results[prev][modality].sensitivity[0] for prev in results]
        spec = [results[prev][modality].specificity[0] for prev in results]
        # 0.10 -> 0.25 moved US sensitivity 0.753 -> 0.762 and CT 0.792 -> 0.796 when this test was written
        assert np.ptp(sens) < 0.02 and np.ptp(spec) < 0.02
        assert results[0.25][modality].prevalence == 0.25
    # what the assumption does change: fewer diseased patients, larger within-study variance of sensitivity
    low_var = lit.logit_effects(*lit.reconstruct_counts(table, "us", 0.10)[["tp", "fn", "tn", "fp"]].T.values)[1]
    high_var = lit.logit_effects(*lit.reconstruct_counts(table, "us", 0.25)[["tp", "fn", "tn", "fp"]].T.values)[1]
    assert (low_var[:, 0] > high_var[:, 0]).all() and (low_var[:, 1] < high_var[:, 1]).all()


def test_confidence_ellipse_surrounds_the_summary_point(pooled):
    for result in pooled.values():
        fpr, tpr = result.ellipse[:, 0], result.ellipse[:, 1]
        assert fpr.min() < 1 - result.specificity[0] < fpr.max() and tpr.min() < result.sensitivity[0] < tpr.max()
        assert -1 <= result.rho <= 1 and "Reitsma" in result.method


def test_table_rows_flag_overlap_with_pooled_intervals(pooled):
    us_sens = pooled["us"].sensitivity[0]
    inside = {"name": "close", "sensitivity": us_sens, "specificity": pooled["us"].specificity[0]}
    outside = {"name": "far", "sensitivity": 0.99, "specificity": 0.2, "sensitivity_ci_low": 0.98,
               "sensitivity_ci_high": 1.0, "specificity_ci_low": 0.1, "specificity_ci_high": 0.3}
    rows = lit.literature_table([inside, outside], pooled=pooled)
    assert [r["kind"] for r in rows].count("pooled") == 2 and [r["kind"] for r in rows].count("anchor") == 4
    close, far = rows[-2], rows[-1]
    assert close["sensitivity_overlaps_us"] and close["specificity_overlaps_us"]
    assert not any(far[f"{rate}_overlaps_{m}"] for rate in ("sensitivity", "specificity") for m in ("us", "ct"))
    assert {"sensitivity_ci_low", "specificity_ci_high", "n_patients"} <= set(rows[0])
    anchors = lit.auc_anchors()
    assert any(a["auc"] == "0.944" for a in anchors) and all(set(a) == {"name", "data", "auc"} for a in anchors)


@pytest.mark.parametrize("points", [None, [{"name": "fusion model", "sensitivity": 0.8, "specificity": 0.85,
                                             "sensitivity_ci_low": 0.7, "sensitivity_ci_high": 0.88,
                                             "specificity_ci_low": 0.8, "specificity_ci_high": 0.9},
                                            {"name": "no CI", "sensitivity": 0.6, "specificity": 0.95}]])
def test_figure_draws_with_and_without_operating_points(table, pooled, points):
    fig = lit.literature_figure(points, pooled=pooled, table=table)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "Ultrasound pooled (95% CI)" in labels and "CT studies (size ~ patients)" in labels
    assert ("fusion model" in labels) == (points is not None)
    assert base64.b64decode(figure_to_base64_png(fig, dpi=30)).startswith(b"\x89PNG")
