"""Session fixtures: one small synthetic cohort shared by the integration tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def synth_cohort_dir(tmp_path_factory):
    from lymphcast.synth import generate_cohort

    return generate_cohort(tmp_path_factory.mktemp("synth") / "cohort", patients=600, centres=4, seed=11, modalities=["clinical"],
                           progress=False)


@pytest.fixture(scope="session")
def synth_image_cohort_dir(tmp_path_factory):
    """A small 4-centre cohort with ultrasound node images and full-field frames (about 10 s to build)."""
    from lymphcast.synth import generate_cohort

    return generate_cohort(tmp_path_factory.mktemp("synth_us") / "cohort", patients=120, centres=4, seed=12,
                           modalities=["clinical", "us_image"], progress=False)


@pytest.fixture(scope="session")
def synth_video_cohort_dir(tmp_path_factory):
    """A small 4-centre cohort with one ultrasound cine clip per node (a few seconds to build)."""
    from lymphcast.synth import generate_cohort

    return generate_cohort(tmp_path_factory.mktemp("synth_video") / "cohort", patients=40, centres=4, seed=13,
                           modalities=["clinical", "us_video"], progress=False)


@pytest.fixture(scope="session")
def synth_ct_cohort_dir(tmp_path_factory):
    """A small 4-centre cohort with a contrast CT study per patient (dual-energy at some centres)."""
    from lymphcast.synth import generate_cohort

    return generate_cohort(tmp_path_factory.mktemp("synth_ct") / "cohort", patients=40, centres=4, seed=19,
                           modalities=["clinical", "ct"], progress=False)


@pytest.fixture(scope="session")
def synth_cytology_cohort_dir(tmp_path_factory):
    """A small 4-centre cohort with a cytology slide and two fields per patient; slides of 512 px (256 µm) instead
    of 2,048 keep it to a few seconds."""
    from unittest import mock

    from lymphcast.synth import cyto_renderer, generate_cohort

    with mock.patch.object(cyto_renderer, "SLIDE_PX", 512):
        return generate_cohort(tmp_path_factory.mktemp("synth_cyto") / "cohort", patients=40, centres=4, seed=23,
                               modalities=["clinical", "cytology"], progress=False)


@pytest.fixture(scope="session")
def synth_multimodal_cohort_dir(tmp_path_factory):
    """A 4-centre cohort with clinical data, ultrasound node images for everyone and cytology (small slides) for
    60% of the patients: what fusion needs, with a modality missing for some patients."""
    from unittest import mock

    from lymphcast.synth import cyto_renderer, generate_cohort

    with mock.patch.object(cyto_renderer, "SLIDE_PX", 512):
        return generate_cohort(tmp_path_factory.mktemp("synth_multi") / "cohort", patients=200, centres=4, seed=29,
                               modalities=["clinical", "us_image", "cytology"], coverage={"cytology": 0.6},
                               progress=False, workers=1)
