"""One tiny two-centre cohort with node ultrasound images, an ultrasound-image model trained on centre A
(saved as a bundle and loaded back), and its predictions for centre B: the external patients."""

from __future__ import annotations

import pytest

from tests.torch_threads import one_torch_thread

# Small and fast; the detector is tested on its own (test_gallery), it would double the training time here.
TINY = {"epochs": 1, "size": 32, "channels": (4, 8), "progress": False, "rollup": "noisy_or", "detector": "off"}
EXTERNAL = "B"


@pytest.fixture(scope="package", autouse=True)
def _one_torch_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="session")
def us_cohort(tmp_path_factory):
    from lymphcast.cohort import read_cohort
    from lymphcast.synth import generate_cohort

    # seed 3, 24 patients: centre A has 5 of 11 with N1b (training needs 5 of each), centre B 4 of 13
    folder = generate_cohort(tmp_path_factory.mktemp("us") / "cohort", patients=24, centres=2, seed=3,
                             modalities=["clinical", "us_image"], progress=False)
    return read_cohort(folder)


@pytest.fixture(scope="session")
def external_ids(us_cohort):
    return set(us_cohort.patients.loc[us_cohort.patients["centre"] == EXTERNAL, "patient_id"])


@pytest.fixture(scope="session")
def us_bundle_dir(us_cohort, tmp_path_factory):
    from lymphcast.bundle import save_bundle
    from lymphcast.pipeline import train

    bundle = train(us_cohort, modalities=["us_image"], centres=["A"], options={"us_image": TINY})
    folder = tmp_path_factory.mktemp("model") / "bundle"
    save_bundle(bundle, folder)
    return folder


@pytest.fixture(scope="session")
def us_bundle(us_bundle_dir):
    from lymphcast.bundle import load_bundle

    return load_bundle(us_bundle_dir)


@pytest.fixture(scope="session")
def us_model(us_bundle):
    return us_bundle.models["us_image"]


@pytest.fixture(scope="session")
def external_predictions(us_cohort, us_bundle, tmp_path_factory):
    """predictions.csv (+ provenance sidecar) of the saved bundle for the external centre."""
    from lymphcast.pipeline import predict
    from lymphcast.predictions import write_predictions

    frame, provenance = predict(us_bundle, us_cohort, centres=[EXTERNAL])
    return write_predictions(frame, tmp_path_factory.mktemp("pred") / "pred.csv", provenance)
