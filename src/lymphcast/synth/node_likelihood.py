"""Exact likelihood of one neck side's nodes under L = 0 and L = 1, in log space.

    P(nodes | L=0) = P(n | mu0) * prod_i f0(x_i)
    P(nodes | L=1) = P(n | mu1, total >= 1) * [prod_i (q_i f1(x_i) + (1-q_i) f0(x_i)) - prod_i (1-q_i) f0(x_i)]
                                             / (1 - prod_i (1-q_i))
The bracket is the node density summed over metastatic patterns with at least one metastatic node, divided by
that event's probability: the exact counterpart of "redraw until a node is metastatic" in nodes.py.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from .features import MODALITY_GROUPS, log_densities
from .nodes import Nodes
from .params import MET_PROB, NODE_MEAN


def count_loglik(counts: np.ndarray) -> np.ndarray:
    """(n, 2 sides, 2 values of L): log P(counts per level | L)."""
    def pois(mu):
        return (counts * np.log(mu) - mu - gammaln(counts + 1)).sum(axis=-1)
    with np.errstate(divide="ignore"):
        positive = pois(NODE_MEAN[1]) - np.log1p(-np.exp(-NODE_MEAN[1].sum()))
        positive = np.where(counts.sum(axis=-1) == 0, -np.inf, positive)
    return np.stack([pois(NODE_MEAN[0]), positive], axis=-1)


def feature_loglik(nodes: Nodes, groups, n_patients: int, hidden: dict | None = None) -> np.ndarray:
    """(n, 2, 2): log density of the features of `groups` of each side's nodes, given L = 0 / 1 (features
    masked by `hidden` per node are not seen)."""
    lf0, lf1 = log_densities(nodes.features, nodes.level, groups, hidden)
    q = MET_PROB[nodes.level]
    sums = lambda w: np.bincount(nodes.side_id, weights=w, minlength=2 * n_patients)  # noqa: E731
    mixed = sums(np.logaddexp(np.log(q) + lf1, np.log1p(-q) + lf0))
    benign = sums(np.log1p(-q) + lf0)
    none_met = sums(np.log1p(-q))
    has_nodes = np.bincount(nodes.side_id, minlength=2 * n_patients) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        positive = mixed + np.log(-np.expm1(benign - mixed)) - np.log(-np.expm1(none_met))
    positive = np.where(has_nodes, positive, 0.0)  # no nodes: the count term already rules out L = 1
    return np.stack([sums(lf0), positive], axis=-1).reshape(n_patients, 2, 2)


def side_loglik(nodes: Nodes, view: str, hidden: dict | None = None) -> np.ndarray:
    """(n, 2, 2) log-likelihood of a side's node counts and the features `view` (us, ct, all) shows."""
    n = nodes.counts.shape[0]
    return count_loglik(nodes.counts) + feature_loglik(nodes, MODALITY_GROUPS[view], n, hidden)
