"""The HTTP API on a real locked bundle: who may do what (401/403), cases in (JSON, multipart with images, FHIR),
results out (JSON, heat maps, FHIR RiskAssessment), clear 4xx for bad input with nothing left behind, and an
audit row for every request."""

from __future__ import annotations

import json
import sqlite3

import pytest
from fastapi.testclient import TestClient

from lymphcast.service.app import create_app
from lymphcast.service.fhir_output import validate_risk_assessment
from tests.service.conftest import CLINICAL
from tests.service.test_fhir import _good


@pytest.fixture(scope="module")
def client(service_core):
    return TestClient(create_app(service_core))


def _auth(tokens, role):
    return {"Authorization": f"Bearer {tokens[role]}"}


def test_health_ready_and_openapi_need_no_credentials(client, service_core):
    assert client.get("/api/v1/health").json() == {"status": "ok"}
    ready = client.get("/api/v1/ready").json()
    assert ready["ready"] and ready["bundle_sha256"] == service_core.bundle.sha256
    spec = client.get("/api/openapi.json").json()
    assert {"/api/v1/cases", "/api/v1/cases/upload", "/api/v1/fhir/Bundle"} <= set(spec["paths"])


@pytest.mark.parametrize("method, path, role", [
    ("get", "/api/v1/cases", "integration"), ("get", "/api/v1/audit", "clinician"),
    ("post", "/api/v1/cases", "clinician"), ("post", "/api/v1/fhir/Bundle", "admin")])
def test_no_credentials_401_wrong_role_403(client, service_tokens, method, path, role):
    kwargs = {"json": {"patient_id": "P1"}} if method == "post" else {}
    anonymous = getattr(client, method)(path, **kwargs)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert getattr(client, method)(path, headers={"Authorization": "Bearer lc_wrong"}, **kwargs).status_code == 401
    assert getattr(client, method)(path, headers=_auth(service_tokens, role), **kwargs).status_code == 403


def test_clinical_case_scored_and_read_back(client, service_tokens):
    made = client.post("/api/v1/cases", json={"patient_id": "P2001", "clinical": CLINICAL},
                       headers=_auth(service_tokens, "integration"))
    assert made.status_code == 201, made.text
    result = made.json()
    assert 0 < result["patient"]["probability"] < 1 and {s["side"] for s in result["sides"]} == {"left", "right"}
    assert {(lv["side"], lv["level"]) for lv in result["levels"]} >= {("left", "II"), ("right", "V")}
    assert result["provenance"]["locked"] and result["thresholds"]["youden"] > 0
    again = client.get(f"/api/v1/cases/{result['case_id']}", headers=_auth(service_tokens, "clinician"))
    assert again.json() == result
    listed = client.get("/api/v1/cases", headers=_auth(service_tokens, "clinician")).json()
    assert result["case_id"] in {row["case_id"] for row in listed}


def test_case_with_images_gives_node_risks_heat_map_and_fhir(client, service_tokens, service_node_png):
    case = {"patient_id": "P2002", "clinical": CLINICAL,
            "nodes": [{"node_id": "N1", "side": "right", "level": "IV", "images": ["a.png"]},
                      {"side": "left", "level": "II", "images": ["b.png", "c.png"]}]}
    files = [("files", (name, service_node_png, "image/png")) for name in ("a.png", "b.png", "c.png")]
    made = client.post("/api/v1/cases/upload", data={"case": json.dumps(case)}, files=files,
                       headers=_auth(service_tokens, "integration"))
    assert made.status_code == 201, made.text
    result = made.json()
    assert [n["node_id"] for n in result["nodes"]] == ["N1", "N02"]
    assert all(0 < n["probability"] < 1 for n in result["nodes"])
    assert len(result["provenance"]["input_sha256"]) == 3 + 3  # cohort.yaml, two tables, three images
    clinician = _auth(service_tokens, "clinician")
    picture = client.get(f"/api/v1/cases/{result['case_id']}/heatmaps/N1.png", headers=clinician)
    assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")
    assert client.get(f"/api/v1/cases/{result['case_id']}/heatmaps/N9.png", headers=clinician).status_code == 404
    for version in ("R5", "R4"):
        risk = client.get(f"/api/v1/cases/{result['case_id']}/fhir/RiskAssessment?version={version}",
                          headers=clinician).json()
        validate_risk_assessment(risk, version)
        assert risk["prediction"][0]["probabilityDecimal"] == pytest.approx(result["patient"]["probability"])


def test_fhir_bundle_in_risk_assessment_out(client, service_tokens):
    made = client.post("/api/v1/fhir/Bundle", content=json.dumps(_good()), headers={
        **_auth(service_tokens, "integration"), "Content-Type": "application/fhir+json"})
    assert made.status_code == 201, made.text
    body = made.json()
    validate_risk_assessment(body["risk_assessment"], "R5")
    assert body["risk_assessment"]["subject"]["reference"].startswith("Patient/")
    bad = client.post("/api/v1/fhir/Bundle", content=b'{"resourceType": "Patient"}',
                      headers=_auth(service_tokens, "integration"))
    assert bad.status_code == 422 and "Bundle" in json.dumps(bad.json())


def test_bad_cases_get_clear_4xx_and_leave_nothing(client, service_core, service_tokens, service_node_png):
    before = set(service_core.store.root.iterdir())
    engine = _auth(service_tokens, "integration")
    wrong = client.post("/api/v1/cases", headers=engine, json={
        "patient_id": "P2003", "clinical": {"age": 400, "sex": "X", "shoe_size": 42}})
    assert wrong.status_code == 422
    problems = "\n".join(wrong.json()["detail"]["problems"])
    assert "clinical.age" in problems and "clinical.sex" in problems and "shoe_size" in problems
    case = {"patient_id": "P2004", "nodes": [{"side": "left", "level": "III", "images": ["n.png"]}]}
    not_image = client.post("/api/v1/cases/upload", data={"case": json.dumps(case)}, headers=engine,
                            files=[("files", ("n.png", b"%PDF-1.4 not an image", "image/png"))])
    assert not_image.status_code == 415 and "n.png" in not_image.text
    unnamed = client.post("/api/v1/cases/upload", data={"case": json.dumps(case)}, headers=engine,
                          files=[("files", ("other.png", service_node_png, "image/png"))])
    assert unnamed.status_code == 422 and "n.png" in unnamed.text and "other.png" in unnamed.text
    bad_level = client.post("/api/v1/cases/upload", headers=engine, files=[("files", ("n.png", service_node_png))],
                            data={"case": json.dumps({**case, "nodes": [{**case["nodes"][0], "level": "VII"}]})})
    assert bad_level.status_code == 422 and "level" in bad_level.text
    assert set(service_core.store.root.iterdir()) == before  # nothing half-written


def test_upload_limits(service_bundle, tmp_path, service_node_png):
    from lymphcast.service.core import ServiceCore, ServiceSettings

    core = ServiceCore(ServiceSettings(bundle=service_bundle, data_dir=tmp_path, max_upload_bytes=50_000,
                                       max_file_bytes=len(service_node_png) - 1))
    token = core.tokens.issue("engine", "integration")
    small = TestClient(create_app(core))
    case = {"patient_id": "P2005", "nodes": [{"side": "left", "level": "III", "images": ["n.png"]}]}
    too_big = small.post("/api/v1/cases/upload", data={"case": json.dumps(case)},
                         files=[("files", ("n.png", service_node_png, "image/png"))],
                         headers={"Authorization": f"Bearer {token}"})
    assert too_big.status_code == 413 and "n.png" in too_big.text
    huge = small.post("/api/v1/cases", content=b"x" * 60_000, headers={"Authorization": f"Bearer {token}",
                                                                       "Content-Type": "application/json"})
    assert huge.status_code == 413


def test_every_request_is_audited_and_the_trail_is_append_only(client, service_core, service_tokens):
    made = client.post("/api/v1/cases", json={"patient_id": "P2006", "clinical": CLINICAL},
                       headers=_auth(service_tokens, "integration"))
    client.get("/api/v1/cases", headers={"Authorization": "Bearer lc_wrong"})
    rows = client.get("/api/v1/audit?limit=50", headers=_auth(service_tokens, "admin")).json()
    mine = [r for r in rows if r["request_id"] == made.headers["x-request-id"]][0]
    assert (mine["user"], mine["role"], mine["patient_id"], mine["status"]) == ("engine", "integration", "P2006", 201)
    assert mine["case_id"] == made.json()["case_id"] and mine["bundle_sha256"] == service_core.bundle.sha256
    assert len(mine["result_sha256"]) == 64
    assert any(r["status"] == 401 and r["user"] is None for r in rows)
    db = sqlite3.connect(service_core.audit.path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit SET status = 200 WHERE status = 401")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit")


def test_service_refuses_unlocked_or_tampered_bundles(service_bundle, tmp_path):
    import shutil

    from lymphcast.bundle import BundleError
    from lymphcast.service.core import ServiceCore, ServiceSettings

    with pytest.raises(BundleError, match="not a locked bundle"):
        ServiceCore(ServiceSettings(bundle=service_bundle.parent / "model", data_dir=tmp_path / "d"))
    copy = tmp_path / "b"
    shutil.copytree(service_bundle, copy)
    with open(copy / "fusion.safetensors", "ab") as fh:  # the fused model's weights
        fh.write(b"\0")
    with pytest.raises(BundleError, match="does not match"):
        ServiceCore(ServiceSettings(bundle=copy, data_dir=tmp_path / "d"))
