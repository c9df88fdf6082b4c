"""One call that gathers the headline metrics of a set of predictions into a flat, JSON-ready dict."""

from __future__ import annotations

import math

import numpy as np

from ._inputs import outcome_and_scores
from .bootstrap import bootstrap_ci
from .calibration import brier_score, calibration_intercept_slope
from .classification import threshold_metrics
from .discrimination import auc_ci, auc_score
from .thresholds import threshold_for_sensitivity, youden_threshold

YOUDEN_RULE = "youden (chosen on the evaluated data: optimistic)"
GIVEN_RULE = "given (chosen before evaluation)"
RULE_OUT_TARGETS = (0.90, 0.95)


def auc_with_ci(y, p, *, clusters=None, alpha: float = 0.05, n_boot: int = 1000, seed: int = 0):
    """(auc, low, high, method): DeLong for independent rows, cluster bootstrap when rows share a patient."""
    if clusters is None:
        return (*auc_ci(y, p, alpha), "DeLong")
    return (*bootstrap_ci(auc_score, y, p, clusters=clusters, n_boot=n_boot, alpha=alpha, seed=seed),
            f"cluster bootstrap by patient ({n_boot} resamples, percentile)")


def calibration_or_nan(y, p, alpha: float = 0.05) -> dict:
    """Calibration intercept/slope with CIs as flat keys; NaN where they are not identifiable."""
    try:
        fit = calibration_intercept_slope(y, p, alpha)
        values = (*fit.intercept, *fit.slope)
    except ValueError:
        values = (math.nan,) * 6
    keys = ("calibration_intercept", "calibration_intercept_ci_low", "calibration_intercept_ci_high",
            "calibration_slope", "calibration_slope_ci_low", "calibration_slope_ci_high")
    return dict(zip(keys, values))


def summarize(y, p, *, threshold: float | None = None, threshold_rule: str | None = None, clusters=None,
              seed: int = 0, n_boot: int = 1000, alpha: float = 0.05,
              rule_out_targets=RULE_OUT_TARGETS) -> dict:
    """Sample size, AUC with CI, metrics at one threshold, Brier, calibration, and rule-out thresholds.

    Pass the threshold chosen on training data; without one the Youden threshold of these data is used,
    which flatters sensitivity and specificity, and `threshold_rule` says so.
    """
    y, p = outcome_and_scores(y, p, probabilities=True)
    out: dict = {"n": int(y.size), "events": int(y.sum())}
    if clusters is not None:
        out["n_clusters"] = int(np.unique(np.asarray(clusters)).size)
    auc, low, high, method = auc_with_ci(y, p, clusters=clusters, alpha=alpha, n_boot=n_boot, seed=seed)
    out.update(auc=auc, auc_ci_low=low, auc_ci_high=high, auc_ci_method=method)
    if threshold is None:
        threshold, threshold_rule = youden_threshold(y, p), YOUDEN_RULE
    out.update(threshold_metrics(y, p, threshold, alpha).to_dict())
    out["threshold_rule"] = threshold_rule or GIVEN_RULE
    out["brier"] = brier_score(y, p)
    out.update(calibration_or_nan(y, p, alpha))
    # Rule-out thresholds are also read off these data, so they share Youden's optimism.
    out["rule_out"] = [
        {"target_sensitivity": target,
         **threshold_metrics(y, p, threshold_for_sensitivity(y, p, target), alpha).to_dict()}
        for target in rule_out_targets
    ]
    return out
