"""The clinical model's feature transform at predict time, in NumPy arithmetic on the fitted parameters.

Why not scikit-learn's own transform: the clinical pipeline has one small pipeline per field (so the nomogram can
read each field's scaling), and scikit-learn validates its input at every step; for one patient that is ~25 ms of
checks around microseconds of arithmetic, the largest single cost of a fused prediction in the service. Only the
four fitted step types the clinical pipeline uses are reproduced (SimpleImputer with its missing indicator, the
log1p FunctionTransformer, StandardScaler, OneHotEncoder ignoring unknown categories); anything else returns None
and the caller uses scikit-learn. Tests check the two agree on data with missing and unseen values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def fast_transform(transformer, frame: pd.DataFrame) -> np.ndarray | None:
    """The fitted ColumnTransformer's output for `frame`, or None when a step is not one of the four known."""
    if getattr(transformer, "remainder", None) != "drop" or getattr(transformer, "sparse_threshold", 0) != 0:
        return None
    blocks = []
    for name, pipeline, columns in transformer.transformers_:
        if name == "remainder":
            continue
        if len(columns) != 1 or not hasattr(pipeline, "steps"):
            return None
        block = _field(pipeline.steps, frame[columns[0]].to_numpy())
        if block is None:
            return None
        blocks.append(block)
    return np.hstack(blocks) if blocks else np.zeros((len(frame), 0))


def _field(steps, values: np.ndarray) -> np.ndarray | None:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    from .clinical_features import _log1p_missing_safe

    x = None
    for _, step in steps:
        if isinstance(step, SimpleImputer) and x is None:
            x = _impute(step, values)
        elif isinstance(step, FunctionTransformer) and step.func is _log1p_missing_safe and x is not None:
            x = np.log1p(x.astype(float))
        elif isinstance(step, StandardScaler) and x is not None:
            x = x.astype(float)
            if step.with_mean:
                x = x - step.mean_
            if step.with_std:
                x = x / step.scale_
        elif isinstance(step, OneHotEncoder) and x is not None:
            x = _one_hot(step, x)
        else:
            return None
        if x is None:
            return None
    return x


def _impute(imputer, values: np.ndarray) -> np.ndarray | None:
    fill = imputer.statistics_[0]
    if imputer.statistics_.shape != (1,) or (isinstance(fill, float) and np.isnan(fill)):
        return None  # a column scikit-learn would drop (empty in training): leave it to scikit-learn
    missing = pd.isna(values)
    if imputer.strategy in ("median", "mean"):
        column = np.where(missing, fill, values).astype(float)
    else:
        column = np.where(missing, fill, values).astype(object)
    out = column.reshape(-1, 1)
    indicator = getattr(imputer, "indicator_", None)
    if indicator is not None and len(indicator.features_):
        flag = missing.reshape(-1, 1)
        out = np.hstack([out, flag.astype(out.dtype) if out.dtype != object else flag.astype(object)])
    return out


def _one_hot(encoder, x: np.ndarray) -> np.ndarray | None:
    if encoder.drop is not None or encoder.handle_unknown != "ignore" or len(encoder.categories_) != x.shape[1]:
        return None
    parts = []
    for j, categories in enumerate(encoder.categories_):
        column = x[:, j]
        parts.append(np.stack([np.asarray([v == c for v in column], dtype=float) for c in categories], axis=1))
    return np.hstack(parts)
