"""A small fused model (clinical + ultrasound images + cytology, cytology missing for ~40% of patients) fitted once
on centres A-C of the shared multimodal cohort, for the failure-analysis and intermediate-fusion tests."""

from __future__ import annotations

import pytest

SMALL_OPTIONS = {"us_image": {"epochs": 1, "size": 32, "channels": (4, 8), "detector": "off", "progress": False},
                 "cytology": {"epochs": 1, "channels": (4, 8), "dim": 8, "ssl_steps": 2, "ssl_batch": 16,
                              "bag_epochs": 2, "max_tiles": 64, "progress": False}}
TRAIN_CENTRES = ["A", "B", "C"]


@pytest.fixture(scope="session")
def multimodal_cohort(synth_multimodal_cohort_dir):
    from lymphcast.cohort import read_cohort

    return read_cohort(synth_multimodal_cohort_dir)


@pytest.fixture(scope="session")
def small_fused(multimodal_cohort):
    from lymphcast.fusion.model import FusionModel

    from tests.torch_threads import one_torch_thread

    with one_torch_thread():
        return FusionModel(modalities=("clinical", "us_image", "cytology"), options=SMALL_OPTIONS,
                           seed=1).fit(multimodal_cohort.in_centres(TRAIN_CENTRES))


@pytest.fixture(scope="session")
def small_intermediate(small_fused, multimodal_cohort):
    from lymphcast.fusion.intermediate import IntermediateFusion

    from tests.torch_threads import one_torch_thread

    with one_torch_thread():
        return IntermediateFusion(small_fused).fit(multimodal_cohort.in_centres(TRAIN_CENTRES))
