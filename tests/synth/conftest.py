"""One 5,000-patient synthetic cohort shared by the band tests (about two seconds to build)."""

from __future__ import annotations

import pandas as pd
import pytest

from lymphcast.synth import generate_cohort


@pytest.fixture(scope="session")
def cohort5000(tmp_path_factory):
    return generate_cohort(tmp_path_factory.mktemp("synth5000") / "cohort", patients=5000, centres=4, seed=0,
                           modalities=["clinical"], progress=False)


@pytest.fixture(scope="session")
def truth5000(cohort5000):
    return {name: pd.read_csv(cohort5000 / "truth" / f"{name}.csv", dtype={"patient_id": str})
            for name in ("patients", "sides", "nodes", "cytology")}
