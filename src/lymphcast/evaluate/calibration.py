"""Calibration: do predicted risks match observed frequencies?"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from ._inputs import check_alpha, outcome_and_scores
from .classification import Interval, wilson_ci

CLIP = 1e-6  # keeps logit(p) finite for predictions of exactly 0 or 1


class CalibrationFit(NamedTuple):
    """Each entry is (estimate, low, high). Ideal: intercept 0, slope 1."""

    intercept: Interval
    slope: Interval


class CalibrationBins(NamedTuple):
    """Per-bin mean prediction, observed event fraction with Wilson CI, and count (empty bins left out)."""

    mean_predicted: np.ndarray
    observed: np.ndarray
    observed_low: np.ndarray
    observed_high: np.ndarray
    count: np.ndarray


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, CLIP, 1 - CLIP)
    return np.log(p / (1 - p))


def calibration_intercept_slope(y, p, alpha: float = 0.05) -> CalibrationFit:
    """Calibration-in-the-large (intercept with logit(p) as offset) and slope (y on logit(p)).

    Intercept > 0: risks too low on average; slope < 1: predictions too extreme (typical of overfitting).
    """
    check_alpha(alpha)
    y, p = outcome_and_scores(y, p, probabilities=True)
    import statsmodels.api as sm  # slow import, only needed here
    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

    lp = _logit(p)
    family = sm.families.Binomial()
    with warnings.catch_warnings():
        # Under perfect separation the estimates are arbitrary; refuse rather than report them.
        warnings.simplefilter("error", PerfectSeparationWarning)
        try:
            # The intercept is fitted with the slope fixed at 1, so it measures average miscalibration alone.
            citl = sm.GLM(y, np.ones((y.size, 1)), family=family, offset=lp).fit()
            slope_fit = sm.GLM(y, sm.add_constant(lp, has_constant="add"), family=family).fit()
        except PerfectSeparationWarning as exc:
            raise ValueError("predictions separate events from non-events perfectly; "
                             "calibration intercept and slope are not identifiable") from exc
    ci_citl, ci_slope = citl.conf_int(alpha), slope_fit.conf_int(alpha)
    return CalibrationFit(
        intercept=(float(citl.params[0]), float(ci_citl[0, 0]), float(ci_citl[0, 1])),
        slope=(float(slope_fit.params[1]), float(ci_slope[1, 0]), float(ci_slope[1, 1])),
    )


def brier_score(y, p) -> float:
    """Mean squared difference between predicted risk and outcome (0 is perfect)."""
    y, p = outcome_and_scores(y, p, both_classes=False, probabilities=True)
    return float(np.mean((p - y) ** 2))


def calibration_curve(y, p, n_bins: int = 10, strategy: str = "quantile", alpha: float = 0.05) -> CalibrationBins:
    """Binned observed vs predicted risk. "quantile" bins hold equal counts; "uniform" bins equal widths."""
    y, p = outcome_and_scores(y, p, both_classes=False, probabilities=True)
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    if strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))  # ties can merge edges
    elif strategy == "uniform":
        edges = np.linspace(0, 1, n_bins + 1)
    else:
        raise ValueError(f"strategy must be 'quantile' or 'uniform', got {strategy!r}")
    bin_of = np.digitize(p, edges[1:-1], right=True)
    rows = []
    for b in np.unique(bin_of):
        in_bin = bin_of == b
        k, n = int(y[in_bin].sum()), int(in_bin.sum())
        observed, low, high = wilson_ci(k, n, alpha)
        rows.append((p[in_bin].mean(), observed, low, high, n))
    columns = [np.asarray(c) for c in zip(*rows)]
    return CalibrationBins(*columns[:4], columns[4].astype(int))
