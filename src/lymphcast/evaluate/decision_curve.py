"""Decision curve analysis: net benefit of acting on the model at each threshold probability."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._inputs import outcome_and_scores

DEFAULT_THRESHOLDS = np.round(np.arange(1, 51) / 100, 2)  # 1% to 50%
# Risk at which surgeons would add a lateral neck dissection: roughly 5-30% in the literature.
CLINICAL_RANGE = (0.05, 0.30)


class DecisionCurve(NamedTuple):
    thresholds: np.ndarray
    model: np.ndarray
    treat_all: np.ndarray
    treat_none: np.ndarray


def net_benefit_curve(y, p, thresholds=None) -> DecisionCurve:
    """Net benefit = TP/n - FP/n * pt/(1 - pt), treating those with p >= pt."""
    y, p = outcome_and_scores(y, p, both_classes=False, probabilities=True)
    pt = DEFAULT_THRESHOLDS if thresholds is None else np.asarray(thresholds, dtype=float)
    if pt.ndim != 1 or (pt < 0).any() or (pt >= 1).any():
        raise ValueError("thresholds must be a 1-D sequence of values in [0, 1)")
    n = y.size
    odds = pt / (1 - pt)  # the harm of an unneeded dissection relative to the benefit of a needed one
    treated = p[None, :] >= pt[:, None]
    tp = (treated & (y == 1)).sum(axis=1)
    fp = (treated & (y == 0)).sum(axis=1)
    prevalence = y.mean()
    return DecisionCurve(
        thresholds=pt,
        model=tp / n - fp / n * odds,
        treat_all=prevalence - (1 - prevalence) * odds,
        treat_none=np.zeros_like(pt),
    )
