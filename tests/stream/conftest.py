"""One tiny fitted cine-clip model, and bundles made from it, shared by the streaming tests."""

from __future__ import annotations

import pytest

from lymphcast.cohort import read_cohort

from ..torch_threads import one_torch_thread

TINY = {"epochs": 1, "head_epochs": 2, "frames": 6, "size": 24, "channels": (4, 8), "progress": False}


@pytest.fixture(scope="session")
def video_cohort(synth_video_cohort_dir):
    return read_cohort(synth_video_cohort_dir)


@pytest.fixture(scope="session")
def video_bundle(video_cohort, tmp_path_factory):
    """A saved bundle of a tiny us_video model fitted on centres A-C (too few patients for the pipeline's own
    threshold checks, so the manifest is stamped here)."""
    from lymphcast.bundle import Bundle, save_bundle
    from lymphcast.modalities.us_video import UsVideoModel
    from lymphcast.provenance import stamp

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
