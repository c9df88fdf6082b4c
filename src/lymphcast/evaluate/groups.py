"""The same few metrics within each centre or subgroup, tolerating groups too small to estimate them."""

from __future__ import annotations

import math

import numpy as np

from ._inputs import outcome_and_scores
from .summary import auc_with_ci, calibration_or_nan

FEW_EVENTS = 10  # below this many events (or non-events) an AUC interval is wide and unstable


def group_label(value) -> str:
    """Readable level names: 1.0 -> "1", NaN -> "missing"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def metrics_by_group(y, p, groups, *, clusters=None, alpha: float = 0.05, n_boot: int = 500,
                     seed: int = 0) -> list[dict]:
    """One dict per group level: n, events, AUC with CI and calibration-in-the-large (None if undefined)."""
    y, p = outcome_and_scores(y, p, both_classes=False, probabilities=True)
    labels = np.array([group_label(v) for v in groups], dtype=object)
    if labels.size != y.size:
        raise ValueError(f"groups must have one entry per row ({y.size}), got {labels.size}")
    rows = []
    for level in sorted(set(labels), key=lambda s: (s == "missing", s)):
        mask = labels == level
        y_g, p_g = y[mask], p[mask]
        events = int(y_g.sum())
        row = {"group": level, "n": int(mask.sum()), "events": events, "auc": None, "auc_ci_low": None,
               "auc_ci_high": None, "calibration_intercept": None, "calibration_intercept_ci_low": None,
               "calibration_intercept_ci_high": None, "note": ""}
        if events == 0 or events == mask.sum():
            row["note"] = "only one outcome class: AUC undefined"
            rows.append(row)
            continue
        c_g = None if clusters is None else np.asarray(clusters)[mask]
        auc, low, high, _ = auc_with_ci(y_g, p_g, clusters=c_g, alpha=alpha, n_boot=n_boot, seed=seed)
        row.update(auc=auc, auc_ci_low=low, auc_ci_high=high)
        cal = calibration_or_nan(y_g, p_g, alpha)
        for key in ("calibration_intercept", "calibration_intercept_ci_low", "calibration_intercept_ci_high"):
            row[key] = None if math.isnan(cal[key]) else cal[key]
        if min(events, row["n"] - events) < FEW_EVENTS:
            row["note"] = f"fewer than {FEW_EVENTS} events or non-events: imprecise"
        rows.append(row)
    return rows
