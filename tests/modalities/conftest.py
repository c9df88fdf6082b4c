"""Shared cohorts for the modality tests (see clinical_cohorts.py)."""

from __future__ import annotations

import pytest

from lymphcast.cohort import Cohort

from .clinical_cohorts import make_cohort, simulate


@pytest.fixture(scope="module")
def train_cohort() -> Cohort:
    return make_cohort(simulate(400, seed=1))


@pytest.fixture(scope="module")
def test_cohort() -> Cohort:
    return make_cohort(simulate(400, seed=2, prefix="q"))
