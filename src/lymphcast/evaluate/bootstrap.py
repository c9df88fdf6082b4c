"""Percentile bootstrap, stratified by outcome, optionally resampling whole clusters (patients).

Node-level rows from one patient are correlated; resampling rows would understate the uncertainty, so when
`clusters` is given each draw takes whole patients, keeping all of a patient's rows together.
"""

from __future__ import annotations

import warnings
from typing import Callable, Iterator, NamedTuple

import numpy as np

from ._inputs import check_alpha, outcome_and_scores
from .discrimination import roc_curve


class RocBand(NamedTuple):
    """TPR on a fixed FPR grid: estimate on the data and a pointwise percentile band."""

    fpr: np.ndarray
    tpr: np.ndarray
    low: np.ndarray
    high: np.ndarray


def bootstrap_indices(y, *, clusters=None, n_boot: int = 1000, seed: int = 0) -> Iterator[np.ndarray]:
    """Yield `n_boot` arrays of row indices, each one stratified bootstrap resample."""
    y = np.asarray(y).astype(int)
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    rng = np.random.default_rng(seed)
    if clusters is None:
        strata = [np.flatnonzero(y == 1), np.flatnonzero(y == 0)]
        for _ in range(n_boot):
            yield np.concatenate([rng.choice(s, size=s.size) for s in strata if s.size])
        return
    codes = _cluster_codes(clusters, y.size)
    order = np.argsort(codes, kind="stable")  # rows grouped by cluster
    sizes = np.bincount(codes)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    # A cluster is an "event" cluster if any of its rows is an event; strata keep the event mix stable.
    has_event = np.bincount(codes, weights=y) > 0
    strata = [np.flatnonzero(has_event), np.flatnonzero(~has_event)]
    for _ in range(n_boot):
        chosen = np.concatenate([rng.choice(s, size=s.size) for s in strata if s.size])
        chosen_sizes = sizes[chosen]
        # Row positions of each chosen cluster, laid end to end without a Python loop.
        shift = np.repeat(starts[chosen] - (np.cumsum(chosen_sizes) - chosen_sizes), chosen_sizes)
        yield order[shift + np.arange(chosen_sizes.sum())]


def _cluster_codes(clusters, n: int) -> np.ndarray:
    clusters = np.asarray(clusters)
    if clusters.shape != (n,):
        raise ValueError(f"clusters must have one entry per row ({n}), got shape {clusters.shape}")
    return np.unique(clusters, return_inverse=True)[1].ravel()


def bootstrap_ci(metric: Callable[[np.ndarray, np.ndarray], float], y, p, *, clusters=None,
                 n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float, float]:
    """(metric on the data, low, high) with a percentile interval over stratified resamples.

    Resamples where the metric is undefined (raises ValueError or returns NaN) are skipped; a warning is
    issued if more than 1% were, because the interval then describes only the well-behaved resamples.
    """
    check_alpha(alpha)
    y, p = outcome_and_scores(y, p, both_classes=False)
    estimate = float(metric(y, p))
    values = []
    for idx in bootstrap_indices(y, clusters=clusters, n_boot=n_boot, seed=seed):
        try:
            values.append(float(metric(y[idx], p[idx])))
        except ValueError:
            values.append(np.nan)
    values = np.asarray(values)
    valid = values[np.isfinite(values)]
    if valid.size == 0:
        raise ValueError("the metric was undefined in every bootstrap resample")
    if valid.size < 0.99 * n_boot:
        warnings.warn(f"metric undefined in {n_boot - valid.size} of {n_boot} bootstrap resamples", stacklevel=2)
    low, high = np.quantile(valid, [alpha / 2, 1 - alpha / 2])
    return estimate, float(low), float(high)


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, fpr_grid: np.ndarray) -> np.ndarray:
    """Read an ROC curve at given FPRs, linear between points; at a vertical step take the top."""
    unique_fpr, first = np.unique(fpr[::-1], return_index=True)
    top_tpr = tpr[::-1][first]  # reversed, so the first hit of each FPR is its highest TPR
    return np.interp(fpr_grid, unique_fpr, top_tpr)


def roc_band(y, p, *, n_boot: int = 1000, seed: int = 0, fpr_grid=None, alpha: float = 0.05,
             clusters=None) -> RocBand:
    """Pointwise percentile band of TPR over a fixed FPR grid (default 0, 0.01, ..., 1), for plotting."""
    check_alpha(alpha)
    y, p = outcome_and_scores(y, p)
    grid = np.linspace(0.0, 1.0, 101) if fpr_grid is None else np.asarray(fpr_grid, dtype=float)
    estimate = tpr_at_fpr(*roc_curve(y, p)[:2], grid)
    curves = []
    for idx in bootstrap_indices(y, clusters=clusters, n_boot=n_boot, seed=seed):
        y_b = y[idx]
        if 0 < y_b.sum() < y_b.size:  # a cluster resample can, rarely, miss a class
            curves.append(tpr_at_fpr(*roc_curve(y_b, p[idx])[:2], grid))
    low, high = np.quantile(np.asarray(curves), [alpha / 2, 1 - alpha / 2], axis=0)
    return RocBand(grid, estimate, low, high)
