"""The exact risks checked against brute force: enumeration of node patterns, Monte-Carlo integration of
blank fields, and the empirical frequency of the true label among simulated patients."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from lymphcast.synth import chunk as chunk_module
from lymphcast.synth.centres import draw_centres
from lymphcast.synth.chunk import simulate_chunk
from lymphcast.synth.clinical import sample_clinical
from lymphcast.synth.features import FEATURES, GROUPS, sample_features
from lymphcast.synth.node_likelihood import count_loglik, feature_loglik
from lymphcast.synth.nodes import Nodes, sample_nodes
from lymphcast.synth.params import MET_PROB, NODE_MEAN, OCCULT_PROB
from lymphcast.synth.risk_model import centre_log_priors, log_prior_complete, log_prior_observed


def _density(name: str, value: float, level: int, overt: bool, occult: bool = False) -> float:
    """One feature's density written directly with scipy.stats (independent of features._logpdf)."""
    f = FEATURES[name]
    p = f.overt if overt else f.occult if occult and f.occult is not None else f.benign[level]
    if f.kind == "lognormal":
        return stats.lognorm.pdf(value, s=p[1], scale=np.exp(p[0]))
    if f.kind == "ratio":
        return stats.lognorm.pdf(value - 1.0, s=p[1], scale=np.exp(p[0]))
    if f.kind == "normal":
        return stats.norm.pdf(value, p[0], p[1])
    if f.kind == "binary":
        return stats.bernoulli.pmf(value, p[0])
    return p[int(value)]


def _brute_side(feats, levels, counts, groups):
    """P(counts, features | L = 1) by enumerating benign/overt/occult for every node."""
    names = [n for g in groups for n in GROUPS[g]]
    dens = {state: [np.prod([_density(n, feats[n][i], levels[i], state == "overt", state == "occult")
                             for n in names]) for i in range(len(levels))] for state in ("benign", "overt", "occult")}
    weight = {"benign": 1 - MET_PROB[levels], "overt": MET_PROB[levels] * (1 - OCCULT_PROB),
              "occult": MET_PROB[levels] * OCCULT_PROB}
    total = 0.0
    for pattern in itertools.product(("benign", "overt", "occult"), repeat=len(levels)):
        if all(s == "benign" for s in pattern):
            continue
        total += np.prod([weight[s][i] * dens[s][i] for i, s in enumerate(pattern)])
    total /= 1 - np.prod(1 - MET_PROB[levels])
    p_counts = np.prod(stats.poisson.pmf(counts, NODE_MEAN[1])) / (1 - np.exp(-NODE_MEAN[1].sum()))
    negative = np.prod(stats.poisson.pmf(counts, NODE_MEAN[0])) * np.prod(dens["benign"])
    return np.log([negative, p_counts * total])


@pytest.mark.parametrize("groups", [("shared", "us", "ct"), ("shared", "us"), ("shared", "ct")])
def test_side_likelihood_equals_enumeration(groups):
    rng = np.random.default_rng(3)
    levels = np.array([0, 2, 2, 3])
    feats = sample_features(levels, np.array([True, False, True, False]), rng)
    counts = np.zeros((1, 2, 4), int)
    counts[0, 0] = np.bincount(levels, minlength=4)  # all four nodes on the left, none on the right
    zeros = np.zeros(4, int)
    nodes = Nodes(counts, zeros, zeros, levels, zeros, zeros, feats)
    exact = (count_loglik(nodes.counts) + feature_loglik(nodes, groups, 1))[0, 0]
    np.testing.assert_allclose(exact, _brute_side(feats, levels, counts[0, 0], groups), rtol=1e-9)


def test_a_hidden_feature_drops_out_of_the_likelihood(monkeypatch):
    # iodine hidden on every node (no dual-energy CT) equals enumeration over the other CT-visible features
    monkeypatch.setitem(GROUPS, "hu_only", ("ct_attenuation_hu",))
    rng = np.random.default_rng(4)
    levels = np.array([0, 1, 2, 3])
    feats = sample_features(levels, np.array([True, False, True, False]), rng)
    counts = np.zeros((1, 2, 4), int)
    counts[0, 0] = np.bincount(levels, minlength=4)
    zeros = np.zeros(4, int)
    nodes = Nodes(counts, zeros, zeros, levels, zeros, zeros, feats)
    hidden = {"iodine_mg_ml": np.ones(4, bool)}
    exact = (count_loglik(nodes.counts) + feature_loglik(nodes, ("shared", "ct"), 1, hidden))[0, 0]
    np.testing.assert_allclose(exact, _brute_side(feats, levels, counts[0, 0], ("shared", "hu_only")), rtol=1e-9)
    # hidden on some nodes only: different from both extremes
    some = feature_loglik(nodes, ("shared", "ct"), 1, {"iodine_mg_ml": np.array([False, False, True, True])})
    assert not np.allclose(some, feature_loglik(nodes, ("shared", "ct"), 1))
    assert not np.allclose(some, feature_loglik(nodes, ("shared", "ct"), 1, hidden))


def test_side_without_nodes_cannot_be_involved():
    lik = count_loglik(np.zeros((1, 2, 4), int))
    assert np.isneginf(lik[0, :, 1]).all() and np.isfinite(lik[0, :, 0]).all()


def test_node_counts_follow_the_truncated_poisson():
    rng = np.random.default_rng(5)
    nodes = sample_nodes(np.ones((40_000, 2), int), rng)
    totals = nodes.counts.sum(axis=-1).ravel()
    mu = NODE_MEAN[1].sum()
    for k in (1, 3, 6):
        expected = stats.poisson.pmf(k, mu) / (1 - np.exp(-mu))
        assert abs((totals == k).mean() - expected) < 4 * np.sqrt(expected / len(totals)) + 1e-3
    met = np.bincount(nodes.side_id, weights=nodes.metastatic, minlength=len(totals))
    assert (met >= 1).all()


def test_blank_braf_and_tsh_are_integrated_out():
    rng = np.random.default_rng(7)
    centres = draw_centres(2, rng)
    idx = np.array([0, 1, 1])
    x = sample_clinical(centres, idx, rng)
    blank = {**x, "braf_v600e": np.array([np.nan, 1.0, np.nan]), "tsh_miu_l": np.array([1.2, np.nan, np.nan])}
    exact = np.exp(log_prior_observed(blank, centres, idx))
    draws = 200_000
    for i, k in enumerate(idx):
        one = {name: np.repeat(v[i:i + 1], draws) for name, v in blank.items()}
        fill = sample_clinical(centres, np.full(draws, k), rng)  # BRAF and TSH from the centre's law
        if np.isnan(blank["braf_v600e"][i]):
            one["braf_v600e"] = fill["braf_v600e"]
        if np.isnan(blank["tsh_miu_l"][i]):
            mu = np.log(centres[k].mix.tsh_median) + 0.25 * x["hashimoto"][i]
            one["tsh_miu_l"] = np.exp(mu + 0.5 * rng.standard_normal(draws))
        mc = np.exp(log_prior_complete(one, np.full(draws, centres[k].offset))).mean(axis=0)
        np.testing.assert_allclose(exact[i], mc, rtol=0.02, atol=2e-4)


def _calibration_slope(y, p):
    """Logistic recalibration slope of y on logit(p), by Newton's method (no regularisation)."""
    z = np.log(np.clip(p, 1e-9, 1 - 1e-9) / np.clip(1 - p, 1e-9, 1))
    design = np.column_stack([np.ones_like(z), z])
    beta = np.array([0.0, 1.0])
    for _ in range(25):
        mu = 1 / (1 + np.exp(-design @ beta))
        beta += np.linalg.solve(design.T @ (design * (mu * (1 - mu))[:, None]), design.T @ (y - mu))
    return beta


@pytest.fixture(scope="module")
def big_chunk():
    rng = np.random.default_rng(11)
    centres = draw_centres(2, rng)
    priors = centre_log_priors(centres, rng, 100_000)
    ids = np.array([f"P{i:06d}" for i in range(40_000)])
    return simulate_chunk(ids, centres, priors, rng)


@pytest.mark.parametrize("view", ["clinical", "us", "ct", "cytology", "all", "us_sweep", "us_key"])
def test_risks_are_calibrated_against_the_true_label(big_chunk, view):
    risk, sides = big_chunk.risks[view]
    y = big_chunk.n1b
    intercept, slope = _calibration_slope(y, risk)
    assert abs(slope - 1) < 0.1 and abs(intercept) < 0.15, (intercept, slope)
    bins = np.minimum((risk * 10).astype(int), 9)  # patients sharing a posterior bin
    for b in np.unique(bins):
        inside = bins == b
        if inside.sum() >= 200:
            mean = risk[inside].mean()
            se = np.sqrt(max(mean * (1 - mean), 0.01) / inside.sum())
            assert abs(y[inside].mean() - mean) < 4 * se + 0.005, (view, b, y[inside].mean(), mean)
    for s in range(2):  # side risks are calibrated too
        assert abs(sides[:, s].mean() - big_chunk.lateral[:, s].mean()) < 0.01
    assert (sides.max(axis=1) <= risk + 1e-9).all() and (risk <= sides.sum(axis=1) + 1e-9).all()


def test_b_mode_risks_know_less_in_order(big_chunk):
    """us (with Doppler) > us_sweep (B-mode: no vascularity) > us_key (also no long axis) in what they know: each
    is a different posterior, and on 40,000 patients each loses log-likelihood against the true label."""
    y = big_chunk.n1b
    loglik = {v: np.mean(np.log(np.where(y == 1, big_chunk.risks[v][0], 1 - big_chunk.risks[v][0])))
              for v in ("us", "us_sweep", "us_key")}
    assert loglik["us"] > loglik["us_sweep"] > loglik["us_key"], loglik


def test_identical_patients_match_their_posterior(monkeypatch):
    """40,000 copies of one patient: the share with N1b equals risk_clinical, per adenopathy finding."""
    rng = np.random.default_rng(13)
    centres = draw_centres(1, rng)
    template = sample_clinical(centres, np.zeros(1, int), np.random.default_rng(2))
    template.update(tumour_size_mm=np.array([14.0]), capsular_contact=np.array([1], np.int8))
    monkeypatch.setattr(chunk_module, "sample_clinical",
                        lambda c, idx, r: {k: np.repeat(v, len(idx)) for k, v in template.items()})
    monkeypatch.setattr(chunk_module, "add_missingness", lambda x, c, idx, r: x)  # blanks: tested above
    priors = centre_log_priors(centres, rng, 20_000)
    chunk = simulate_chunk(np.array([f"P{i:06d}" for i in range(40_000)]), centres, priors, rng)
    risk = chunk.risks["clinical"][0]
    for finding in (0, 1):
        group = chunk.adenopathy == finding
        assert np.ptp(risk[group]) < 1e-12
        p = risk[group][0]
        assert abs(chunk.n1b[group].mean() - p) < 4 * np.sqrt(p * (1 - p) / group.sum()) + 1e-3
