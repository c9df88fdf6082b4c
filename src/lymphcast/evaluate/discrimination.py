"""Discrimination: ROC curve, AUC, and DeLong's variance for AUC confidence intervals and paired tests.

DeLong is written here because no maintained Python library provides it (scikit-learn gives only the point
estimate). It uses the midrank formulation of Sun & Xu (2014), which is O(n log n) and handles ties exactly.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import NamedTuple

import numpy as np

from ._inputs import check_alpha, outcome_and_scores


class DelongTest(NamedTuple):
    """Paired comparison of two AUCs on the same patients (difference = auc1 - auc2)."""

    auc1: float
    auc2: float
    difference: float
    difference_ci_low: float
    difference_ci_high: float
    z: float
    p_value: float


def midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of a 1-D array, tied values sharing the mean of their ranks."""
    order = np.argsort(x, kind="mergesort")
    x_sorted = x[order]
    starts = np.r_[0, np.flatnonzero(np.diff(x_sorted)) + 1]
    ends = np.r_[starts[1:], x_sorted.size]
    ranks = np.empty(x.size)
    ranks[order] = np.repeat((starts + 1 + ends) / 2, ends - starts)
    return ranks


def _midranks_rows(x: np.ndarray) -> np.ndarray:
    return np.vstack([midranks(row) for row in x])


def _z(alpha: float) -> float:
    return NormalDist().inv_cdf(1 - check_alpha(alpha) / 2)


def roc_curve(y, p) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds), one point per distinct score plus (0, 0); positive means p >= threshold."""
    y, p = outcome_and_scores(y, p)
    order = np.argsort(-p, kind="mergesort")
    p_sorted, y_sorted = p[order], y[order]
    # The last row of each block of tied scores is where the curve gets a point.
    block_end = np.r_[np.flatnonzero(np.diff(p_sorted)), p_sorted.size - 1]
    tp = np.cumsum(y_sorted)[block_end]
    fp = (block_end + 1) - tp
    tpr = np.r_[0.0, tp / tp[-1]]
    fpr = np.r_[0.0, fp / fp[-1]]
    return fpr, tpr, np.r_[np.inf, p_sorted[block_end]]


def auc_score(y, p) -> float:
    """Area under the ROC curve: P(score of an event > score of a non-event), ties counting one half."""
    y, p = outcome_and_scores(y, p)
    ranks = midranks(p)  # midranks, so ties count one half
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def delong_auc_covariance(y, scores) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of each row of `scores` (k x n) and their k x k DeLong covariance matrix."""
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    y, _ = outcome_and_scores(y, scores[0])
    for row in scores[1:]:
        outcome_and_scores(y, row)
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    rank_pos = _midranks_rows(pos)
    rank_neg = _midranks_rows(neg)
    rank_all = _midranks_rows(np.hstack([pos, neg]))
    # Structural components: for each event, the share of non-events it outranks (and vice versa).
    v_pos = (rank_all[:, :m] - rank_pos) / n
    v_neg = 1.0 - (rank_all[:, m:] - rank_neg) / m
    aucs = v_pos.mean(axis=1)
    return aucs, _spread(v_pos) / m + _spread(v_neg) / n


def _spread(v: np.ndarray) -> np.ndarray:
    """Covariance of the structural components (rows) over patients; NaN where one patient stands alone in its
    class (one event, say): its spread is unknown, which callers show as a 0-1 interval and no p-value."""
    if v.shape[1] < 2:
        return np.full((v.shape[0], v.shape[0]), np.nan)
    return np.atleast_2d(np.cov(v))


def auc_ci(y, p, alpha: float = 0.05) -> tuple[float, float, float]:
    """(AUC, low, high): normal interval with DeLong's standard error, clipped to [0, 1]."""
    z = _z(alpha)
    aucs, cov = delong_auc_covariance(y, p)
    auc, se = float(aucs[0]), float(np.sqrt(max(cov[0, 0], 0.0)))
    return auc, max(0.0, auc - z * se), min(1.0, auc + z * se)


def delong_test(y, p1, p2, alpha: float = 0.05) -> DelongTest:
    """Two-sided DeLong test that two scores on the same patients have equal AUC."""
    z_crit = _z(alpha)
    aucs, cov = delong_auc_covariance(y, np.vstack([np.asarray(p1, float), np.asarray(p2, float)]))
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    if var <= 1e-15:
        # Scores ranking everyone identically have a zero-variance difference: nothing to test.
        z, p_value = (0.0, 1.0) if abs(diff) < 1e-12 else (float(np.sign(diff) * np.inf), 0.0)
        return DelongTest(float(aucs[0]), float(aucs[1]), diff, diff, diff, z, p_value)
    se = float(np.sqrt(var))
    z = diff / se
    return DelongTest(float(aucs[0]), float(aucs[1]), diff, float(diff - z_crit * se), float(diff + z_crit * se),
                      float(z), 2 * NormalDist().cdf(-abs(z)))
