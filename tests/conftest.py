"""Session fixtures: one small synthetic cohort shared by the integration tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def synth_cohort_dir(tmp_path_factory):
    from lymphcast.synth import generate_cohort

    return generate_cohort(tmp_path_factory.mktemp("synth") / "cohort", patients=600, centres=4, seed=11, modalities=["clinical"],
                           progress=False)
