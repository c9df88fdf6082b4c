"""Choosing a risk threshold from data. All of these are optimistic when applied to the data they were
chosen on; choose on training data and evaluate elsewhere."""

from __future__ import annotations

import numpy as np

from ._inputs import outcome_and_scores


def _rates_at_candidates(y, p):
    """Candidate thresholds (every distinct score, plus one just above the top) and the rates at each."""
    y, p = outcome_and_scores(y, p)
    candidates = np.r_[np.unique(p), np.nextafter(p.max(), np.inf)]
    pos, neg = np.sort(p[y == 1]), np.sort(p[y == 0])
    # Positive means p >= t, so the events at or above t are those not left of t.
    sensitivity = (pos.size - np.searchsorted(pos, candidates, side="left")) / pos.size
    specificity = np.searchsorted(neg, candidates, side="left") / neg.size
    return candidates, sensitivity, specificity


def youden_threshold(y, p) -> float:
    """Threshold maximising sensitivity + specificity - 1 (the highest one if several tie)."""
    candidates, sens, spec = _rates_at_candidates(y, p)
    j = sens + spec - 1
    return float(candidates[np.flatnonzero(j == j.max())[-1]])


def threshold_for_sensitivity(y, p, target: float) -> float:
    """Largest threshold whose sensitivity is at least `target` (rule-out: miss few N1b)."""
    if not 0 < target <= 1:
        raise ValueError(f"target sensitivity must be in (0, 1], got {target}")
    candidates, sens, _ = _rates_at_candidates(y, p)
    return float(candidates[sens >= target].max())


def threshold_for_specificity(y, p, target: float) -> float:
    """Smallest threshold whose specificity is at least `target` (rule-in: few unneeded dissections)."""
    if not 0 < target <= 1:
        raise ValueError(f"target specificity must be in (0, 1], got {target}")
    candidates, _, spec = _rates_at_candidates(y, p)
    return float(candidates[spec >= target].min())
