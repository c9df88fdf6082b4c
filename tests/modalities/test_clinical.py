"""ClinicalModel: finds a planted signal, finds nothing in noise, survives messy inputs, explains itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit
from sklearn.metrics import roc_auc_score

from lymphcast.cohort import LymphCastError
from lymphcast.modalities.clinical import ClinicalModel

from .clinical_cohorts import make_cohort, simulate

KINDS = ["logistic", "gbm"]


@pytest.mark.parametrize("kind", KINDS)
def test_planted_signal_is_found_on_held_out_patients(kind, train_cohort, test_cohort):
    p = ClinicalModel(kind=kind).fit(train_cohort).predict_proba(test_cohort)
    assert roc_auc_score(test_cohort.labels().astype(int), p) > 0.8


@pytest.mark.parametrize("kind", KINDS)
def test_shuffled_label_gives_chance_auc(kind, test_cohort):
    noise = simulate(400, seed=5)
    noise["n1b"] = noise["n1b"].sample(frac=1, random_state=0).to_numpy()
    p = ClinicalModel(kind=kind).fit(make_cohort(noise)).predict_proba(test_cohort)
    assert 0.38 < roc_auc_score(test_cohort.labels().astype(int), p) < 0.62


def test_unlabelled_patients_are_predicted_but_not_learnt_from(train_cohort):
    patients = train_cohort.patients.copy()
    patients.loc[:49, "n1b"] = pd.NA
    cohort = make_cohort(patients)
    model = ClinicalModel(number_scale="linear").fit(cohort)
    reference = ClinicalModel(number_scale="linear").fit(cohort.labelled())
    pd.testing.assert_series_equal(model.predict_proba(cohort), reference.predict_proba(cohort))
    assert len(model.predict_proba(cohort)) == len(patients)


@pytest.mark.parametrize("kind", KINDS)
def test_missing_values_and_unseen_categories_do_not_crash(kind, train_cohort):
    patients = train_cohort.patients.copy()
    patients.loc[::7, "age"] = np.nan
    patients.loc[::11, "sex"] = pd.NA
    model = ClinicalModel(kind=kind).fit(make_cohort(patients))
    odd = simulate(6, seed=9).astype({"t_stage": object})
    odd.loc[0, "t_stage"] = "T4"  # valid elsewhere, never seen in training
    odd.loc[1, ["age", "tumour_size_mm"]] = np.nan  # size was never missing in training
    odd.loc[2, "multifocal"] = pd.NA
    odd.loc[3, ["sex", "t_stage"]] = pd.NA
    odd["t_stage"] = odd["t_stage"].astype("string")
    p = model.predict_proba(make_cohort(odd))
    assert p.notna().all() and p.between(0, 1).all()


def test_all_missing_training_column_is_left_out(train_cohort, test_cohort):
    patients = train_cohort.patients.copy()
    patients["age"] = np.nan
    model = ClinicalModel(number_scale="linear").fit(make_cohort(patients))
    assert "age" not in model.features_ and "tumour_size_mm" in model.features_
    assert model.predict_proba(test_cohort).notna().all()


def test_an_absent_field_is_treated_as_missing(train_cohort, test_cohort):
    model = ClinicalModel(number_scale="linear").fit(train_cohort)
    without_age = make_cohort(test_cohort.patients.drop(columns="age"))
    with pytest.warns(UserWarning, match="age"):
        p = model.predict_proba(without_age)
    as_missing = test_cohort.patients.assign(age=np.nan)
    np.testing.assert_allclose(p.to_numpy(), model.predict_proba(make_cohort(as_missing)).to_numpy())


def test_a_cohort_lacking_most_trained_fields_is_refused(train_cohort, test_cohort):
    model = ClinicalModel(number_scale="linear").fit(train_cohort)
    wrong = make_cohort(test_cohort.patients[["patient_id", "centre", "n1b", "age", "sex"]])
    with pytest.raises(LymphCastError, match="lacks 3 of the 5") as err:
        model.predict_proba(wrong)
    assert {p.column for p in err.value.problems} == {"tumour_size_mm", "multifocal", "t_stage"}


def test_a_field_with_another_type_is_refused(train_cohort, test_cohort):
    from lymphcast.cohort import FieldSpec

    model = ClinicalModel(number_scale="linear").fit(train_cohort)
    patients = test_cohort.patients.assign(multifocal=test_cohort.patients["multifocal"].astype("string"))
    fields = {**test_cohort.fields, "multifocal": FieldSpec(type="category", values=("0", "1"))}
    with pytest.raises(LymphCastError, match="other types") as err:
        model.predict_proba(make_cohort(patients, fields))
    assert err.value.problems[0].column == "multifocal"


def test_user_mistakes_raise_lymphcast_errors(train_cohort):
    with pytest.raises(LymphCastError, match="did you mean 'logistic'"):
        ClinicalModel(kind="logistc").fit(train_cohort)
    with pytest.raises(LymphCastError, match="tumour_size") as err:
        ClinicalModel(fields=["age", "tumour_size"]).fit(train_cohort)
    assert "did you mean 'tumour_size_mm'" in str(err.value)
    one_class = train_cohort.patients.assign(n1b=pd.array([0] * len(train_cohort.patients), dtype="Int64"))
    with pytest.raises(LymphCastError, match="at least 2"):
        ClinicalModel(number_scale="linear").fit(make_cohort(one_class))


def test_chosen_fields_only_are_used(train_cohort, test_cohort):
    model = ClinicalModel(fields=["tumour_size_mm", "sex"]).fit(train_cohort)
    assert list(model.features_) == ["tumour_size_mm", "sex"]
    shuffled_age = test_cohort.patients.assign(age=test_cohort.patients["age"].sample(frac=1).to_numpy())
    pd.testing.assert_series_equal(model.predict_proba(test_cohort),
                                   model.predict_proba(make_cohort(shuffled_age)))


def test_contributions_add_up_to_the_predicted_log_odds(train_cohort, test_cohort):
    model = ClinicalModel(number_scale="linear").fit(train_cohort)
    parts = model.contributions(test_cohort)
    assert list(parts.columns) == list(model.features_)
    total = parts.sum(axis=1) + model.baseline_log_odds
    np.testing.assert_allclose(total.to_numpy(), logit(model.predict_proba(test_cohort).to_numpy()), atol=1e-9)
    # Measured from the average training patient, so they average to zero there.
    np.testing.assert_allclose(model.contributions(train_cohort).mean().to_numpy(), 0, atol=1e-9)


def test_contributions_rank_the_planted_size_effect(train_cohort, test_cohort):
    parts = ClinicalModel(number_scale="linear").fit(train_cohort).contributions(test_cohort)
    size = test_cohort.patients["tumour_size_mm"].to_numpy()
    assert np.corrcoef(parts["tumour_size_mm"], size)[0, 1] > 0.999  # linear in size, increasing
    assert parts["tumour_size_mm"].std() > parts["age"].std()  # age has no true effect


def test_gbm_has_no_additive_contributions(train_cohort):
    model = ClinicalModel(kind="gbm").fit(train_cohort)
    with pytest.raises(LymphCastError, match="logistic"):
        model.contributions(train_cohort)


def test_auto_scale_logs_a_skewed_size_and_fits_a_log_truth_better():
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(7)

    def log_truth(n, seed, prefix):
        patients = simulate(n, seed, prefix=prefix)
        eta = -1.0 + 1.5 * (np.log1p(patients["tumour_size_mm"].to_numpy(float)) - 2.6)
        patients["n1b"] = pd.array(rng.binomial(1, 1 / (1 + np.exp(-eta))), dtype="Int64")
        return make_cohort(patients)

    train, test = log_truth(3000, 31, "a"), log_truth(3000, 32, "b")
    auto = ClinicalModel().fit(train)
    linear = ClinicalModel(number_scale="linear").fit(train)
    assert auto.log_fields_ == ["tumour_size_mm"]  # age is uniform: not skewed, kept linear
    y = test.labels().astype(int).to_numpy()
    assert log_loss(y, auto.predict_proba(test)) < log_loss(y, linear.predict_proba(test)) - 0.002
