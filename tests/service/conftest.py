"""Session fixtures for the service tests: a small fused (clinical + ultrasound image) bundle, locked as the
service demands; a ServiceCore on it with one token per role; and one case scored with a node image."""

from __future__ import annotations

import pytest

from tests.torch_threads import one_torch_thread

# Tiny network, one epoch, no detector: a real bundle in about ten seconds.
OPTIONS = {"us_image": {"epochs": 1, "size": 32, "channels": (4, 8), "detector": "off", "progress": False}}
# Every clinical field filled: the fused side model needs the tumour side.
CLINICAL = {"age": 45, "sex": "F", "tumour_size_mm": 18.0, "tumour_side": "left", "multifocal": 0, "bilateral": 0,
            "extrathyroidal_extension": 0, "upper_pole": 1, "capsular_contact": 1, "microcalcification": 1,
            "braf_v600e": 1, "hashimoto": 0, "tsh_miu_l": 2.1, "palpable_adenopathy": 0}
PATIENT_ID = "P900001"
# A result as the service writes it, for the FHIR and DICOM SR writers' tests.
EXAMPLE_RESULT = {
    "case_id": "c-20261129-ab12cd", "patient_id": "P000001", "created_utc": "2026-11-29T15:00:00+00:00",
    "patient": {"probability": 0.42},
    "sides": [{"side": "left", "probability": 0.31}, {"side": "right", "probability": 0.12}],
    "levels": [{"side": "left", "level": "II", "probability": 0.10}],
    "nodes": [{"node_id": "P000001-N01", "side": "left", "level": "III", "probability": 0.7}],
    "thresholds": {"youden": 0.3, "rule_out_sens95": 0.08, "rule_out_sens90": 0.12},
    "provenance": {"bundle_sha256": "0123456789abcdef" * 4, "lymphcast_version": "0.1.0", "model": "fusion",
                   "modalities": ["clinical", "us_image"]},
}


@pytest.fixture(scope="session")
def service_bundle(synth_image_cohort_dir, tmp_path_factory):
    """The folder of a locked, fused bundle trained on centres A-C of the synthetic ultrasound cohort."""
    from lymphcast.bundle import lock_bundle, save_bundle
    from lymphcast.cohort import read_cohort
    from lymphcast.pipeline import train

    tmp = tmp_path_factory.mktemp("service_bundle")
    with one_torch_thread():
        bundle = train(read_cohort(synth_image_cohort_dir), modalities=["clinical", "us_image"],
                       centres=["A", "B", "C"], options=OPTIONS, seed=1)
    save_bundle(bundle, tmp / "model")
    lock_bundle(tmp / "model", tmp / "locked")
    return tmp / "locked"


@pytest.fixture(scope="session")
def service_core(service_bundle, tmp_path_factory):
    from lymphcast.service.core import ServiceCore, ServiceSettings

    return ServiceCore(ServiceSettings(bundle=service_bundle, data_dir=tmp_path_factory.mktemp("service") / "data"))


@pytest.fixture(scope="session")
def service_tokens(service_core) -> dict[str, str]:
    """role -> token: dr.a (clinician), engine (integration), it (admin)."""
    return {role: service_core.tokens.issue(name, role)
            for name, role in (("dr.a", "clinician"), ("engine", "integration"), ("it", "admin"))}


@pytest.fixture(scope="session")
def service_node_png(synth_image_cohort_dir) -> bytes:
    """The first node view of the cohort, as PNG bytes (a real synthetic ultrasound image)."""
    import pandas as pd

    nodes = pd.read_csv(synth_image_cohort_dir / "nodes.csv")
    first = str(nodes["us_image_file"].dropna().iloc[0]).split(";")[0]  # several views are ';'-separated
    return (synth_image_cohort_dir / first).read_bytes()


@pytest.fixture(scope="session")
def service_case(service_core, service_node_png) -> dict:
    """The result of one submitted case: patient P900001 with one left level III node and its image."""
    from lymphcast.service.case_input import CaseIn, NodeIn

    case = CaseIn(patient_id=PATIENT_ID, clinical=CLINICAL,
                  nodes=[NodeIn(side="left", level="III", images=["n1.png"])])
    with one_torch_thread():
        return service_core.submit(case, {"n1.png": service_node_png})
