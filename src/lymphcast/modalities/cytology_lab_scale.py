"""Adapting the cytology measurement reader to a laboratory whose stain no training smear had.

The reader's counts depend on the stain even after colour normalisation: in Diff-Quik smears the hobnail-like
share rises about 0.29 per unit of the share drawn, above a floor of 0.029, against 0.49 and 0.012 in
Papanicolaou (seed 67 of the generator; README), so a reader fitted on Pap smears weighs a Diff-Quik laboratory's
counts on the wrong scale. Given that laboratory's smears without any outcome, each reader input is mapped
quantile to quantile onto the training patients' distribution (the same idea as histogram matching): a smear's
place among its own laboratory's smears is kept, the scale becomes the training one. It assumes the new
laboratory's patients are not very differently staged than the training ones; it is applied only to stains
the training smears lacked, where the counting scale is known to differ (on the Pap centres of seeds 11 and 67
the mapping moved the reader's AUC by −0.015 to +0.006, noise; on the Diff-Quik centre it gained 0.01–0.02).

Written here rather than taken from scikit-learn's QuantileTransformer because the map must run from one
distribution's quantiles onto another's and store both as plain arrays in the bundle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..cohort import Cohort

LEVELS = np.linspace(0.0, 1.0, 101)  # quantile levels stored per reader input
MIN_SMEARS = 30  # fewer smears of a stain give quantiles too rough to map by
UNKNOWN = "unknown"


def column_quantiles(matrix: np.ndarray) -> np.ndarray:
    """(len(LEVELS), k) quantiles of each column, NaN ignored (a column with no values stays NaN)."""
    matrix = np.asarray(matrix, float)
    out = np.full((len(LEVELS), matrix.shape[1]), np.nan)
    for j in range(matrix.shape[1]):
        values = matrix[:, j][np.isfinite(matrix[:, j])]
        if len(values):
            out[:, j] = np.quantile(values, LEVELS)
    return out


def _levels_of(values: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Each value's quantile level within `source` (tied source quantiles share their mean level)."""
    unique, inverse = np.unique(source, return_inverse=True)
    level = np.bincount(inverse, LEVELS) / np.bincount(inverse)
    if len(unique) == 1:
        return np.full(values.shape, 0.5)
    return np.interp(values, unique, level)


def map_columns(matrix: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each column of `matrix` moved from the distribution `source` describes onto `target`'s (both from
    column_quantiles); NaN stays NaN, a column either side lacks stays as it was, and values beyond the source's
    range go to the target's extremes."""
    out = np.asarray(matrix, float).copy()
    for j in range(out.shape[1]):
        if not (np.isfinite(source[:, j]).all() and np.isfinite(target[:, j]).all()):
            continue
        known = np.isfinite(out[:, j])
        out[known, j] = np.interp(_levels_of(out[known, j], source[:, j]), LEVELS, target[:, j])
    return out


def patient_stains(cohort: Cohort, images: pd.DataFrame, patient_ids) -> pd.Series:
    """The stain of the smear each patient's measurements come from (`images`: the image_id and patient_id of
    the images read, cytology_bags), as cytology.csv records it; UNKNOWN where it records none."""
    ids = pd.Index(patient_ids, name="patient_id")
    table = cohort.cytology
    if not len(table) or "stain" not in table.columns or not len(images):
        return pd.Series(UNKNOWN, index=ids, name="stain")
    stain = table.drop_duplicates("image_id").set_index("image_id")["stain"].astype("string").str.strip()
    read = images[["image_id", "patient_id"]].assign(stain=images["image_id"].map(stain).to_numpy())
    first = read.dropna(subset=["stain"]).query("stain != ''").groupby("patient_id")["stain"].first()
    return first.reindex(ids).fillna(UNKNOWN).astype(str).rename("stain")
