"""ClinicalModel follows the modality contract of base.py."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest

from lymphcast.modalities.base import NotFittedError
from lymphcast.modalities.clinical import ClinicalModel

KINDS = ["logistic", "gbm"]


def test_init_only_stores_settings():
    model = ClinicalModel(kind="gbm", fields=["age"], seed=4, folds=3, calibration="sigmoid")
    assert model.get_params() == {"kind": "gbm", "fields": ["age"], "seed": 4, "folds": 3,
                                  "calibration": "sigmoid", "number_scale": "auto"}
    assert not model.is_fitted
    assert ClinicalModel.name == "clinical" and ClinicalModel.level == "patient"


@pytest.mark.parametrize("kind", KINDS)
def test_not_fitted_predict_raises(kind, test_cohort):
    model = ClinicalModel(kind=kind)
    with pytest.raises(NotFittedError):
        model.predict_proba(test_cohort)
    with pytest.raises(NotFittedError):
        model.contributions(test_cohort)


@pytest.mark.parametrize("kind", KINDS)
def test_fit_returns_self_and_clone_is_unfitted(kind, train_cohort, test_cohort):
    model = ClinicalModel(kind=kind, seed=7)
    assert model.fit(train_cohort) is model and model.is_fitted
    twin = model.clone()
    assert not twin.is_fitted and twin.get_params() == model.get_params()
    pd.testing.assert_series_equal(twin.fit(train_cohort).predict_proba(test_cohort),
                                   model.predict_proba(test_cohort))


@pytest.mark.parametrize("kind", KINDS)
def test_probabilities_are_indexed_by_patient(kind, train_cohort, test_cohort):
    p = ClinicalModel(kind=kind).fit(train_cohort).predict_proba(test_cohort)
    assert p.index.name == "patient_id" and list(p.index) == list(test_cohort.patients["patient_id"])
    assert p.dtype == "float64" and p.between(0, 1).all()
    assert list(ClinicalModel(kind=kind).fit(train_cohort).classes_) == [0, 1]


@pytest.mark.parametrize("kind", KINDS)
def test_joblib_round_trip_predicts_the_same(kind, train_cohort, test_cohort, tmp_path):
    model = ClinicalModel(kind=kind).fit(train_cohort)
    joblib.dump(model, tmp_path / "model.joblib")
    revived = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(revived.predict_proba(test_cohort), model.predict_proba(test_cohort))


def test_empty_cohort_gives_empty_series(train_cohort):
    model = ClinicalModel().fit(train_cohort)
    p = model.predict_proba(train_cohort.subset([]))
    assert len(p) == 0 and p.index.name == "patient_id"
