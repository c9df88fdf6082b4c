"""On a large cohort drawn from a known logistic truth, both kinds give calibrated probabilities."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from lymphcast.evaluate import calibration_intercept_slope
from lymphcast.modalities.clinical import ClinicalModel

from .clinical_cohorts import make_cohort, simulate, true_log_odds


@pytest.fixture(scope="module")
def large():
    return make_cohort(simulate(3000, seed=21)), make_cohort(simulate(3000, seed=22, prefix="q"))


@pytest.mark.parametrize("kind", ["logistic", "gbm"])
def test_calibration_slope_near_one_on_new_patients(kind, large):
    train, test = large
    p = ClinicalModel(kind=kind).fit(train).predict_proba(test)
    fit = calibration_intercept_slope(test.labels().astype(int).to_numpy(), p.to_numpy())
    assert 0.8 < fit.slope[0] < 1.2
    assert abs(fit.intercept[0]) < 0.2


def test_logistic_recovers_the_true_risks(large):
    train, test = large
    p = ClinicalModel(number_scale="linear").fit(train).predict_proba(test).to_numpy()
    truth = expit(true_log_odds(test.patients))
    assert np.abs(p - truth).mean() < 0.02
