"""The nomogram is an exact reading of the logistic model, and draws as the classic figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lymphcast.modalities.clinical import ClinicalModel
from lymphcast.modalities.nomogram import _label_rows, nice_ticks

from .clinical_cohorts import make_cohort, simulate


@pytest.fixture(scope="module")
def model():
    patients = simulate(500, seed=3)
    patients.loc[::9, "tumour_size_mm"] = np.nan  # so size has a 'missing' tick
    patients.loc[::13, "t_stage"] = pd.NA
    return ClinicalModel(number_scale="linear").fit(make_cohort(patients))


def _points_from_table(table: pd.DataFrame, feature: str, value) -> float:
    """Read one patient's points off the printed table, as a clinician would: look up or interpolate."""
    rows = table[table["feature"] == feature]
    if pd.isna(value):
        return float(rows.loc[rows["value"].isna(), "points"].iloc[0])
    numeric = rows[rows["value"].notna()]
    if feature in ("age", "tumour_size_mm"):
        return float(np.interp(value, numeric["value"].astype(float), numeric["points"]))
    return float(numeric.loc[numeric["value"].astype(str) == str(value), "points"].iloc[0])


def test_points_read_off_the_table_give_the_models_probability(model):
    nomogram = model.nomogram()
    patients = simulate(40, seed=4, prefix="q")
    patients.loc[::5, "tumour_size_mm"] = np.nan
    patients.loc[::6, "t_stage"] = pd.NA
    cohort = make_cohort(patients)
    totals = [sum(_points_from_table(nomogram.table, f, row[f]) for f in model.features_)
              for _, row in patients.iterrows()]
    np.testing.assert_allclose(nomogram.probability(totals), model.predict_proba(cohort).to_numpy(), atol=1e-6)
    by_method = nomogram.points(model.log_odds_terms(cohort)).sum(axis=1)
    np.testing.assert_allclose(by_method.to_numpy(), totals, atol=1e-6)


def test_widest_feature_spans_100_points_and_every_axis_starts_at_0(model):
    span = model.nomogram().table.groupby("feature")["points"].agg(["min", "max"])
    assert span["min"].abs().max() < 1e-9
    assert span["max"].max() == pytest.approx(100)
    assert span["max"].idxmax() == "tumour_size_mm"  # the planted strongest effect
    assert set(span.index) == set(model.features_)


def test_levels_match_training_categories(model):
    table = model.nomogram().table
    stages = table.loc[table["feature"] == "t_stage", "value"].tolist()
    assert stages[:3] == ["T1", "T2", "T3"] and pd.isna(stages[3])
    assert table.loc[table["feature"] == "multifocal", "value"].tolist() == [0, 1]


def test_plot_has_one_axis_per_predictor_plus_points_total_and_risk(model):
    fig = model.plot_nomogram(title="N1b")
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels == ["Points", *model.features_, "Total points", "Risk of N1b"]
    risk_ticks = [float(t.get_text()) for t in fig.axes[-1].texts]
    assert risk_ticks == sorted(risk_ticks) and len(risk_ticks) >= 3


def test_nice_ticks_cover_the_range_with_round_steps():
    ticks = nice_ticks(18.3, 79.0)
    assert ticks[0] <= 18.3 and ticks[-1] >= 79.0
    assert np.allclose(np.diff(ticks), 20) and len(ticks) <= 7 and nice_ticks(5, 5).tolist() == [5]


def test_crowded_labels_are_stacked_and_spread_ones_are_not():
    assert _label_rows([0, 2, 60, 100], ["Multinodular", "Normal", "x", "y"]) == [0, 1, 0, 0]
    assert _label_rows([0, 1, 2], ["aaaa", "bbbb", "cccc"]) == [0, 1, 2]
