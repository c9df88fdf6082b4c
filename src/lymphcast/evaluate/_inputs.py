"""Shared argument checks, so every metric rejects bad input with the same clear message."""

from __future__ import annotations

import numpy as np


def outcome_and_scores(y, p, *, both_classes: bool = True, probabilities: bool = False):
    """Return (y as int 0/1 array, p as float array) or raise ValueError saying what is wrong."""
    y_arr = np.asarray(y)
    p_arr = np.asarray(p, dtype=float)
    if y_arr.ndim != 1 or p_arr.ndim != 1:
        raise ValueError("outcomes and scores must be one-dimensional")
    if y_arr.shape != p_arr.shape:
        raise ValueError(f"outcomes ({y_arr.size}) and scores ({p_arr.size}) differ in length")
    if y_arr.size == 0:
        raise ValueError("no observations")
    if y_arr.dtype.kind == "f" and np.isnan(y_arr).any():
        raise ValueError("outcomes contain missing values; drop those rows first")
    if not np.isin(y_arr, (0, 1)).all():
        raise ValueError("outcomes must be coded 0/1 (or False/True)")
    if not np.isfinite(p_arr).all():
        raise ValueError("scores contain missing or infinite values")
    if probabilities and ((p_arr < 0).any() or (p_arr > 1).any()):
        raise ValueError("probabilities must lie between 0 and 1")
    y_int = y_arr.astype(int)
    if both_classes:
        events = int(y_int.sum())
        if events == 0 or events == y_int.size:
            raise ValueError(f"only one outcome class present ({events} events in {y_int.size}); "
                             "this metric needs both events and non-events")
    return y_int, p_arr


def check_alpha(alpha: float) -> float:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    return float(alpha)
