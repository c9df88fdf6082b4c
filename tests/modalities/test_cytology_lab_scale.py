"""The quantile map that puts a new stain's reader inputs on the training scale, and the stain each patient's
measurements come from."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from lymphcast.modalities.cytology_lab_scale import UNKNOWN, column_quantiles, map_columns, patient_stains


def test_a_shifted_and_squeezed_column_is_put_back_on_the_training_scale():
    rng = np.random.default_rng(0)
    train = np.column_stack([rng.normal(-2.9, 0.7, 400), rng.normal(1.3, 0.7, 400)])
    other = np.column_stack([rng.normal(-2.5, 0.3, 300), rng.normal(1.0, 0.6, 300)])
    mapped = map_columns(other, column_quantiles(other), column_quantiles(train))
    np.testing.assert_allclose(mapped.mean(0), train.mean(0), atol=0.05)
    np.testing.assert_allclose(mapped.std(0), train.std(0), rtol=0.1)
    for j in range(2):  # each smear keeps its place among its laboratory's smears
        assert spearmanr(mapped[:, j], other[:, j]).statistic > 0.999


def test_missing_values_ties_and_values_beyond_the_source_range():
    rng = np.random.default_rng(1)
    source = np.column_stack([np.r_[np.full(50, -6.2), rng.normal(-3, 1, 50)], rng.normal(0, 1, 100)])
    target = np.column_stack([rng.normal(0, 1, 200), rng.normal(5, 2, 200)])
    qs, qt = column_quantiles(source), column_quantiles(target)
    x = np.array([[-6.2, np.nan], [-100.0, 100.0], [-3.0, 0.0]])
    out = map_columns(x, qs, qt)
    assert np.isnan(out[0, 1]) and np.isfinite(out[[1, 2]]).all()
    assert out[1, 1] == qt[-1, 1]  # beyond the source's range: the target's extreme
    # the tied floor (half the source, as at the 0.2% clip) maps to its mean level, and so does anything below it
    assert qt[0, 0] < out[0, 0] == out[1, 0] < out[2, 0]
    assert abs(out[0, 0] - np.quantile(target[:, 0], 0.25)) < 0.15
    # a column the new laboratory never measured is left as it was
    qs[:, 1] = np.nan
    np.testing.assert_array_equal(map_columns(x, qs, qt)[:, 1], x[:, 1])


def test_a_constant_column_maps_to_the_target_median():
    source = column_quantiles(np.zeros((40, 1)))
    target = column_quantiles(np.arange(101, dtype=float)[:, None])
    assert map_columns(np.zeros((3, 1)), source, target)[:, 0].tolist() == [50.0] * 3


def test_each_patient_gets_the_stain_of_the_images_read():
    class Table:  # what patient_stains reads of a cohort
        cytology = pd.DataFrame({"image_id": ["a1", "a2", "b1", "c1"], "patient_id": ["a", "a", "b", "c"],
                                 "image_file": ["x"] * 4, "stain": ["Pap", "Diff-Quik", " ", None]})

    images = pd.DataFrame({"image_id": ["a2", "b1", "c1"], "patient_id": ["a", "b", "c"]})
    stains = patient_stains(Table(), images, ["a", "b", "c", "d"])
    assert stains.to_dict() == {"a": "Diff-Quik", "b": UNKNOWN, "c": UNKNOWN, "d": UNKNOWN}
    Table.cytology = Table.cytology.drop(columns="stain")
    assert set(patient_stains(Table(), images, ["a"])) == {UNKNOWN}
