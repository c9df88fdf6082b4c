"""One conformance test over every modality model: the contract fusion, evaluation and the service rely on."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from lymphcast.cohort import read_cohort
from lymphcast.modalities.base import ModalityModel, NotFittedError
from lymphcast.modalities.registry import available


# Settings that keep a network small and its training to a step or two: the contract, not the accuracy.
QUICK = {"us_image": {"epochs": 2, "size": 32, "channels": (4, 8), "detector_epochs": 1, "progress": False,
                      "detector_options": {"size": 64, "channels": (4, 8, 16)}},
         "us_video": {"epochs": 1, "frames": 6, "size": 24, "channels": (4, 8), "progress": False},
         "ct": {"epochs": 1, "size": 16, "spacing_mm": 2.0, "channels": (4, 8), "progress": False},
         "cytology": {"epochs": 1, "channels": (4, 8), "dim": 8, "ssl_steps": 2, "ssl_batch": 16, "bag_epochs": 2, "max_tiles": 64, "progress": False}}
# The cohort each modality needs: the image models read images.
COHORTS = {"us_image": "synth_image_cohort_dir", "us_video": "synth_video_cohort_dir", "ct": "synth_ct_cohort_dir",
           "cytology": "synth_cytology_cohort_dir"}


@pytest.mark.parametrize("name", sorted(available()))
def test_modality_contract(name, request):
    cohort = read_cohort(request.getfixturevalue(COHORTS.get(name, "synth_cohort_dir")))
    cls = available()[name]
    assert issubclass(cls, ModalityModel) and cls.name == name and cls.level in ("patient", "node")
    assert cls.oof in ("kfold", "validation")
    model = cls(seed=3, **QUICK.get(name, {}))
    assert not model.is_fitted  # __init__ only stores settings
    with pytest.raises(NotFittedError):
        model.predict_proba(cohort)
    train, test = cohort.in_centres(["A", "B", "C"]), cohort.in_centres(["D"])
    assert model.fit(train) is model
    assert model.is_fitted
    proba = model.predict_proba(test)
    assert isinstance(proba, pd.Series)
    assert list(proba.index) == list(test.patients["patient_id"]) and proba.index.name == "patient_id"
    assert proba.between(0, 1).all()
    twin = model.clone()
    assert not twin.is_fitted and twin.get_params() == model.get_params()
    pd.testing.assert_series_equal(twin.fit(train).predict_proba(test), proba)  # deterministic for a seed
    revived = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(revived.predict_proba(test).to_numpy(), proba.to_numpy())
    levels = model.predict_levels(test)  # one pass, same answers as the separate calls
    pd.testing.assert_series_equal(levels["patients"], proba, check_names=False)
    if cls.level == "node":
        pd.testing.assert_series_equal(levels["sides"], model.predict_sides(test), check_names=False)
        pd.testing.assert_series_equal(levels["nodes"], model.predict_nodes(test), check_names=False)
        nodes = model.predict_nodes(test)
        assert nodes.index.name == "node_id" and nodes.between(0, 1).all()
        sides = model.predict_sides(test)
        assert list(sides.index.names) == ["patient_id", "side"]
        assert sides.between(0, 1).all()
        assert set(sides.index.get_level_values("patient_id")) == set(test.patients["patient_id"])
    if cls.oof == "validation":  # the pipeline takes thresholds from these: held-out training patients
        held_out = model.validation_proba_
        assert held_out.between(0, 1).all() and set(held_out.index) <= set(train.patients["patient_id"])
