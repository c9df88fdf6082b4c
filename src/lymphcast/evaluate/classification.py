"""Metrics of a dichotomised risk (positive means p >= threshold), each with a Wilson interval."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._inputs import check_alpha, outcome_and_scores

Interval = tuple[float, float, float]  # (estimate, low, high)
RATES = ("sensitivity", "specificity", "ppv", "npv", "accuracy")


def wilson_ci(k: int, n: int, alpha: float = 0.05) -> Interval:
    """(k/n, low, high) with the Wilson score interval; all NaN when n is 0 (e.g. no predicted positives)."""
    check_alpha(alpha)
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return (float("nan"),) * 3
    # Imported here: statsmodels takes over a second to import and most callers never need it.
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(k, n, alpha=alpha, method="wilson")
    return k / n, float(low), float(high)


@dataclass(frozen=True)
class ThresholdMetrics:
    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    sensitivity: Interval
    specificity: Interval
    ppv: Interval
    npv: Interval
    accuracy: Interval

    def to_dict(self) -> dict:
        """Flat dict: counts, then `<rate>`, `<rate>_ci_low`, `<rate>_ci_high` for each rate."""
        out = {"threshold": self.threshold, "tp": self.tp, "fp": self.fp, "tn": self.tn, "fn": self.fn}
        for name in RATES:
            estimate, low, high = getattr(self, name)
            out.update({name: estimate, f"{name}_ci_low": low, f"{name}_ci_high": high})
        return out


def confusion_counts(y, p, threshold: float) -> tuple[int, int, int, int]:
    """(tp, fp, tn, fn) with positive meaning p >= threshold."""
    y, p = outcome_and_scores(y, p, both_classes=False)
    positive = p >= threshold
    tp = int(np.sum(positive & (y == 1)))
    fp = int(np.sum(positive & (y == 0)))
    return tp, fp, int(np.sum(~positive & (y == 0))), int(np.sum(~positive & (y == 1)))


def threshold_metrics(y, p, threshold: float, alpha: float = 0.05) -> ThresholdMetrics:
    tp, fp, tn, fn = confusion_counts(y, p, threshold)
    return ThresholdMetrics(
        float(threshold), tp, fp, tn, fn,
        sensitivity=wilson_ci(tp, tp + fn, alpha),
        specificity=wilson_ci(tn, tn + fp, alpha),
        ppv=wilson_ci(tp, tp + fp, alpha),
        npv=wilson_ci(tn, tn + fn, alpha),
        accuracy=wilson_ci(tp + tn, tp + fp + tn + fn, alpha),
    )
