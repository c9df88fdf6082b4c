"""The clinical model's NumPy transform gives what scikit-learn's pipeline gives, with missing values, unseen
categories and log-scaled numbers; unknown steps fall back to scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import MinMaxScaler

from lymphcast.modalities.clinical_fast import fast_transform
from lymphcast.modalities.clinical_features import column_transformer


@pytest.fixture
def frames():
    rng = np.random.default_rng(3)
    n = 200
    train = pd.DataFrame({
        "age": rng.normal(45, 12, n).round(), "tsh": np.exp(rng.normal(0.5, 0.8, n)),
        "multifocal": rng.integers(0, 2, n).astype(float), "sex": rng.choice(["F", "M"], n).astype(object),
        "side": rng.choice(["left", "right", "isthmus"], n).astype(object)})
    for col in ("tsh", "multifocal", "side"):  # some missing in training: the indicator columns exist
        train.loc[rng.choice(n, 15, replace=False), col] = np.nan
    test = pd.DataFrame({"age": [30.0, np.nan, 70.0], "tsh": [np.nan, 2.0, 40.0], "multifocal": [1.0, np.nan, 0.0],
                         "sex": ["M", np.nan, "F"], "side": ["middle", "left", np.nan]}).astype(
        {"sex": object, "side": object})
    return train, test


def test_matches_scikit_learn(frames):
    train, test = frames
    types = {"age": "number", "tsh": "number", "multifocal": "binary", "sex": "category", "side": "category"}
    fitted = column_transformer(types, log_fields=["tsh"]).fit(train)
    expected = fitted.transform(test)
    got = fast_transform(fitted, test)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected.astype(float), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fast_transform(fitted, train), fitted.transform(train).astype(float), atol=1e-12)


def test_unknown_step_falls_back(frames):
    train, test = frames
    other = ColumnTransformer([("age", MinMaxScaler(), ["age"])]).fit(train)
    assert fast_transform(other, test) is None
