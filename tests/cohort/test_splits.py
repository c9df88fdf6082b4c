"""Splits are by patient: no patient (hence no node or image) is ever on both sides."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lymphcast.cohort import Cohort, CohortMeta, LymphCastError
from lymphcast.cohort.schema import Centre
from lymphcast.cohort.splits import centre_split, leave_one_centre_out, stratified_kfold


@pytest.fixture
def cohort() -> Cohort:
    rng = np.random.default_rng(3)
    n = 300
    patients = pd.DataFrame({
        "patient_id": [f"P{i:03d}" for i in range(n)],
        "centre": rng.choice(["A", "B", "C"], n),
        "n1b": pd.array(np.where(rng.random(n) < 0.05, pd.NA, rng.random(n) < 0.2), dtype="Int64"),
    })
    nodes = pd.DataFrame({"node_id": [f"N{i}" for i in range(3 * n)],
                          "patient_id": np.repeat(patients["patient_id"], 3).to_numpy()})
    meta = CohortMeta(name="s", centres=[Centre(id=c) for c in "ABC"])
    return Cohort(meta, {}, patients, nodes)


def _no_leak(cohort, split):
    train, test = set(split.train), set(split.test)
    assert not train & test
    nodes = cohort.nodes
    assert not set(nodes.loc[nodes.patient_id.isin(train), "node_id"]) & set(
        nodes.loc[nodes.patient_id.isin(test), "node_id"])


def test_kfold_partitions_patients_and_stratifies(cohort):
    splits = stratified_kfold(cohort, k=5, seed=1)
    tests = [set(s.test) for s in splits]
    assert set().union(*tests) == set(cohort.patients.patient_id)
    assert sum(map(len, tests)) == len(cohort.patients)
    y = cohort.labels()
    rates = [y.loc[list(s.test)].mean() for s in splits]
    assert max(rates) - min(rates) < 0.05  # stratified: event rates nearly equal across folds
    for split in splits:
        _no_leak(cohort, split)


def test_kfold_is_deterministic_for_a_seed(cohort):
    assert stratified_kfold(cohort, seed=4) == stratified_kfold(cohort, seed=4)
    assert stratified_kfold(cohort, seed=4) != stratified_kfold(cohort, seed=5)


def test_leave_one_centre_out(cohort):
    splits = leave_one_centre_out(cohort)
    assert len(splits) == 3
    for split in splits:
        _no_leak(cohort, split)
        held = set(cohort.patients.set_index("patient_id").loc[list(split.test), "centre"])
        assert len(held) == 1
        assert held.isdisjoint(cohort.patients.set_index("patient_id").loc[list(split.train), "centre"])


def test_centre_split_checks_names(cohort):
    split = centre_split(cohort, ["A", "B"], ["C"])
    _no_leak(cohort, split)
    assert len(split.train) + len(split.test) == len(cohort.patients)
    with pytest.raises(LymphCastError, match="unknown centre"):
        centre_split(cohort, ["A"], ["Z"])
    with pytest.raises(LymphCastError, match="both training and test"):
        centre_split(cohort, ["A"], ["A"])


def test_kfold_refuses_too_few_events(cohort):
    few = cohort.subset(cohort.patients.patient_id[:12])
    with pytest.raises(LymphCastError, match="stratified folds"):
        stratified_kfold(few, k=10)
