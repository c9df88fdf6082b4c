"""Session fixtures: the small synthetic cohorts shared by the integration tests, each written once per run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_configure(config):
    """Under pytest-xdist (`make test` runs one worker per core, each test file on one worker) each worker keeps
    torch to one thread: two workers with two threads each would fight over two cores."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def shared_cohort(tmp_path_factory, name: str, **settings) -> Path:
    """generate_cohort(**settings) written once per test run: under pytest-xdist every worker asks for it, and the
    first one writes it into the run's common temporary folder while the others wait on a file lock (the video
    cohort alone takes a minute on one core). Tests only read these folders (a test that changes one copies it)."""
    from filelock import FileLock

    from lymphcast.synth import generate_cohort

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return generate_cohort(tmp_path_factory.mktemp(name) / "cohort", progress=False, **settings)
    root = tmp_path_factory.getbasetemp().parent  # one per run, above each worker's own folder
    folder = root / f"shared_{name}" / "cohort"
    with FileLock(str(root / f"shared_{name}.lock")):
        if not folder.exists():  # generate_cohort's folder appears only once it is complete
            generate_cohort(folder, progress=False, **settings)
    return folder


@pytest.fixture(scope="session")
def synth_cohort_dir(tmp_path_factory):
    return shared_cohort(tmp_path_factory, "synth", patients=600, centres=4, seed=11, modalities=["clinical"])


@pytest.fixture(scope="session")
def synth_image_cohort_dir(tmp_path_factory):
    """A small 4-centre cohort with ultrasound node images and full-field frames (about 10 s to build)."""
    return shared_cohort(tmp_path_factory, "synth_us", patients=120, centres=4, seed=12,
                         modalities=["clinical", "us_image"])


@pytest.fixture(scope="session")
def synth_video_cohort_dir(tmp_path_factory):
    """A small 4-centre cohort with one ultrasound cine clip per node (about a minute on one core)."""
    return shared_cohort(tmp_path_factory, "synth_video", patients=40, centres=4, seed=13,
                         modalities=["clinical", "us_video"])


@pytest.fixture(scope="session")
def synth_ct_cohort_dir(tmp_path_factory):
    """A small 4-centre cohort with a contrast CT study per patient (dual-energy at some centres)."""
    return shared_cohort(tmp_path_factory, "synth_ct", patients=40, centres=4, seed=19, modalities=["clinical", "ct"])


@pytest.fixture(scope="session")
def synth_cytology_cohort_dir(tmp_path_factory):
    """A small 4-centre cohort with a cytology slide and two fields per patient; slides of 512 px (256 µm) instead
    of 2,048 keep it to a few seconds."""
    from unittest import mock

    from lymphcast.synth import cyto_renderer

    with mock.patch.object(cyto_renderer, "SLIDE_PX", 512):
        return shared_cohort(tmp_path_factory, "synth_cyto", patients=40, centres=4, seed=23,
                             modalities=["clinical", "cytology"])


@pytest.fixture(scope="session")
def synth_multimodal_cohort_dir(tmp_path_factory):
    """A 4-centre cohort with clinical data, ultrasound node images for everyone and cytology (small slides) for
    60% of the patients: what fusion needs, with a modality missing for some patients."""
    from unittest import mock

    from lymphcast.synth import cyto_renderer

    with mock.patch.object(cyto_renderer, "SLIDE_PX", 512):
        return shared_cohort(tmp_path_factory, "synth_multi", patients=200, centres=4, seed=29,
                             modalities=["clinical", "us_image", "cytology"], coverage={"cytology": 0.6}, workers=1)


# One tiny fitted cine-clip model and its bundle, shared by the streaming and the service tests.
TINY = {"epochs": 1, "head_epochs": 2, "frames": 6, "size": 24, "channels": (4, 8), "progress": False}


@pytest.fixture(scope="session")
def video_cohort(synth_video_cohort_dir):
    from lymphcast.cohort import read_cohort

    return read_cohort(synth_video_cohort_dir)


@pytest.fixture(scope="session")
def video_bundle(video_cohort, tmp_path_factory):
    """A saved bundle of a tiny us_video model fitted on centres A-C (too few patients for the pipeline's own
    threshold checks, so the manifest is stamped here)."""
    from lymphcast.bundle import Bundle, save_bundle
    from lymphcast.modalities.us_video import UsVideoModel
    from lymphcast.provenance import stamp

    from tests.torch_threads import one_torch_thread

    with one_torch_thread():
        model = UsVideoModel(seed=3, **TINY).fit(video_cohort.in_centres(["A", "B", "C"]))
    manifest = stamp(modalities=["us_video"], settings={"us_video": model.get_params()}, seed=3, training={},
                     thresholds={"youden": 0.5})
    folder = tmp_path_factory.mktemp("stream") / "video_model"
    save_bundle(Bundle({"us_video": model}, manifest), folder)
    return folder


@pytest.fixture(scope="session")
def video_model(video_bundle):
    from lymphcast.bundle import load_bundle

    return load_bundle(video_bundle).models["us_video"]
