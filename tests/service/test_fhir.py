"""FHIR in and out: a realistic Bundle reads to exact values, bad input fails with named problems, and the
RiskAssessment we write validates in R5 and R4 (R4B models)."""

from __future__ import annotations

import copy
import json
from datetime import date

import pytest

from lymphcast.cohort import STANDARD_FIELDS, FieldSpec
from lymphcast.service import fhir_codes as fc
from lymphcast.service.fhir_input import ClinicalInput, FhirInputError, clinical_from_fhir
from lymphcast.service.fhir_output import risk_assessment, validate_risk_assessment
from tests.service.conftest import EXAMPLE_RESULT as RESULT

ON = date(2026, 11, 29)
PATIENT = {"resourceType": "Patient", "id": "pt-1",
           "identifier": [{"system": "urn:oid:1.2.3.4.5", "value": "P000001"}],
           "gender": "female", "birthDate": "1980-12-01"}


def _obs(oid, coding, value: dict, subject="Patient/pt-1", status="final", **extra):
    res = {"resourceType": "Observation", "id": oid, "status": status, "code": {"coding": [coding]},
           "subject": {"reference": subject}, **value, **extra}
    return {"fullUrl": f"urn:uuid:{oid}", "resource": res}


def _qty(value, unit, code=None):
    return {"valueQuantity": {"value": value, "unit": unit, "system": fc.UCUM, "code": code or unit}}


YES = {"valueCodeableConcept": {"coding": [{"system": fc.SNOMED, "code": "373066001", "display": "Yes"}]}}
NO = {"valueCodeableConcept": {"coding": [{"system": fc.SNOMED, "code": "373067005", "display": "No"}]}}


def _bundle(*observations, patient=PATIENT, kind="collection"):
    return {"resourceType": "Bundle", "type": kind,
            "entry": [{"fullUrl": "urn:uuid:pt-1", "resource": copy.deepcopy(patient)}, *observations]}


def _good():
    return _bundle(
        _obs("tsh", {"system": fc.LOINC, "code": "3016-3"}, _qty(2.4, "mIU/L", "m[IU]/L")),
        _obs("size", {"system": fc.LOINC, "code": "21889-1"}, _qty(1.8, "cm")),
        _obs("side", {"system": fc.LOCAL, "code": "tumour_side"},
             {"valueCodeableConcept": {"coding": [{"system": fc.SNOMED, "code": "24028007", "display": "Right"}]}}),
        _obs("hashi", {"system": fc.SNOMED, "code": "21983002"}, YES),
        _obs("ete", {"system": fc.LOCAL, "code": "extrathyroidal_extension"}, NO),
        _obs("braf", {"system": fc.LOCAL, "code": "braf_v600e"}, {"valueBoolean": True}),
        _obs("mf", {"system": fc.LOCAL, "code": "multifocal"}, {"valueString": "ignored"}, status="entered-in-error"),
        _obs("hba1c", {"system": fc.LOINC, "code": "4548-4"}, _qty(5.1, "%")),  # not ours: ignored
    )


def _read(payload, **kw) -> ClinicalInput:
    return clinical_from_fhir(payload, STANDARD_FIELDS, on_date=ON, **kw)


def _fails(payload, *needles, **kw) -> FhirInputError:
    with pytest.raises(FhirInputError) as info:
        _read(payload, **kw)
    text = str(info.value)
    for needle in needles:
        assert needle in text, f"{needle!r} not in:\n{text}"
    return info.value


def test_realistic_bundle_reads_exact_values():
    got = _read(json.dumps(_good()))
    assert got.patient_id == "P000001" and got.patient_reference == "Patient/pt-1"
    assert got.values == {"tsh_miu_l": 2.4, "tumour_size_mm": 18.0, "tumour_side": "right", "hashimoto": 1,
                          "extrathyroidal_extension": 0, "braf_v600e": 1, "age": 45.0, "sex": "F"}
    assert sorted(got.observation_references) == ["Observation/braf", "Observation/ete", "Observation/hashi",
                                                  "Observation/side", "Observation/size", "Observation/tsh"]
    assert "multifocal" in got.missing and "tsh_miu_l" not in got.missing
    assert any("hba1c" in s for s in got.ignored) and any("entered-in-error" in s for s in got.ignored)
    assert got.fhir_version == "R5"


def test_age_observation_wins_over_birth_date_and_bytes_are_accepted():
    b = _bundle(_obs("age", {"system": fc.LOINC, "code": "30525-0"}, _qty(44, "a")))
    assert _read(json.dumps(b).encode()).values["age"] == 44.0


def test_latest_of_differing_dated_results_is_used():
    tsh = {"system": fc.LOINC, "code": "3016-3"}
    b = _bundle(_obs("t1", tsh, _qty(9.0, "uIU/mL"), effectiveDateTime="2026-01-05"),
                _obs("t2", tsh, _qty(3.0, "mIU/L"), effectiveDateTime="2026-10-01T08:00:00+01:00"))
    got = _read(b)
    assert got.values["tsh_miu_l"] == 3.0 and got.observation_references == ["Observation/t2"]
    b["entry"][1]["resource"].pop("effectiveDateTime")
    _fails(b, "conflicting tsh_miu_l values")


def test_r4_profile_reads_with_r4b_models():
    b = _good()
    b["meta"] = {"profile": ["http://hl7.org/fhir/R4/StructureDefinition/Bundle"]}
    assert _read(b).fhir_version == "R4B"


def test_extra_model_field_travels_under_its_local_code():
    fields = {"tsh_miu_l": STANDARD_FIELDS["tsh_miu_l"], "nodule_count": FieldSpec(type="number", min=0, max=20)}
    b = _bundle(_obs("n", {"system": fc.LOCAL, "code": "nodule_count"}, {"valueQuantity": {"value": 3}}))
    got = clinical_from_fhir(b, fields, on_date=ON)
    assert got.values == {"nodule_count": 3.0} and got.missing == ["tsh_miu_l"]


@pytest.mark.parametrize("payload, needles", [
    ("{not json", ["not JSON"]),
    ("[1, 2]", ["JSON list", "expected a Bundle"]),
    ({"resourceType": "Patient", "id": "x"}, ["is a Patient", "expected a Bundle"]),
    ({"resourceType": "Bundle", "type": "searchset"}, ["Bundle.type 'searchset'"]),
    ({"resourceType": "Bundle", "type": "collection", "entry": []}, ["0 Patients", "expected exactly one"]),
])
def test_payloads_that_are_not_a_patient_bundle(payload, needles):
    _fails(payload, *needles)


def test_two_patients():
    b = _good()
    b["entry"].append({"resource": dict(PATIENT, id="pt-2")})
    _fails(b, "2 Patients", "Patient/pt-2")


def test_invalid_element_names_entry_and_path():
    b = _good()
    b["entry"][1]["resource"]["valueQuantity"]["value"] = "abc"
    err = _fails(b, "entry[1] (Observation/tsh): valueQuantity.value 'abc'", "not valid FHIR R5")
    assert [p.column for p in err.problems] == ["entry[1].resource.valueQuantity.value"]


def test_unknown_resource_type_is_named():
    b = _good()
    b["entry"].append({"resource": {"resourceType": "Nonsense"}})
    _fails(b, "entry[9]: resourceType 'Nonsense'")


def test_every_problem_is_reported_at_once():
    b = _bundle(
        _obs("size", {"system": fc.LOINC, "code": "21889-1"}, _qty(2, "in")),                      # wrong unit
        _obs("tsh", {"system": fc.LOINC, "code": "3016-3"}, _qty(250, "mIU/L")),                   # out of range
        _obs("side", {"system": fc.LOCAL, "code": "tumour_side"}, {"valueString": "centre"}),      # unknown value
        _obs("braf", {"system": fc.LOCAL, "code": "braf_v600e"}, {"valueBoolean": True},
             subject="Patient/someone-else"),                                                      # other patient
        _obs("mf", {"system": fc.LOCAL, "code": "multifocal"}, {"valueString": "maybe"}),          # not yes/no
        _obs("tsh2", {"system": fc.LOINC, "code": "3016-3"}, _qty(0.01, "mIU/L"), status="bogus"),  # bad status
    )
    err = _fails(b, "entry[1] (Observation/size): valueQuantity.unit 'in' — expected mm",
                 "entry[2] (Observation/tsh): valueQuantity 250 mIU/L — expected 0 to 100 mIU/L",
                 "entry[3] (Observation/side): value valueString 'centre' — expected one of left, right, isthmus",
                 "entry[4] (Observation/braf): subject Patient/someone-else — expected the Bundle's Patient",
                 "entry[5] (Observation/mf): value valueString 'maybe' — expected valueBoolean",
                 "entry[6] (Observation/tsh2): status 'bogus'")
    assert len(err.problems) == 6
    assert [p.column for p in err.problems] == ["tumour_size_mm", "tsh_miu_l", "tumour_side", "braf_v600e",
                                                "multifocal", "tsh_miu_l"]
    assert all(str(p).startswith("FHIR Bundle") for p in err.problems)


def test_no_unit_and_comparator_are_rejected():
    tsh = {"system": fc.LOINC, "code": "3016-3"}
    b = _bundle(_obs("a", tsh, {"valueQuantity": {"value": 2}}),
                _obs("b", tsh, {"valueQuantity": {"value": 0.01, "comparator": "<", "unit": "mIU/L"}}))
    _fails(b, "entry[1] (Observation/a): valueQuantity.unit '' — expected mIU/L",
           "entry[2] (Observation/b): valueQuantity.comparator '<'")




@pytest.mark.parametrize("version, module", [("R5", "fhir.resources.riskassessment"),
                                             ("R4", "fhir.resources.R4B.riskassessment")])
def test_risk_assessment_round_trips(version, module):
    import importlib
    ra = risk_assessment(RESULT, version=version, observation_references=["Observation/tsh"],
                         patient_reference="Patient/pt-1", imaging_study_uid="1.2.840.113619.2.55.3")
    model = importlib.import_module(module).RiskAssessment.model_validate(ra)
    assert json.loads(model.model_dump_json()) == ra
    validate_risk_assessment(ra, version)
    assert ra["status"] == "final" and ra["subject"]["reference"] == "Patient/pt-1"
    assert ra["identifier"][0]["value"] == "c-20261129-ab12cd"
    preds = ra["prediction"]
    assert preds[0]["probabilityDecimal"] == 0.42 and preds[0]["outcome"]["coding"][0]["code"] == "n1b"
    assert preds[0]["qualitativeRisk"]["coding"][0]["code"] == "high"
    sides = {p["outcome"]["coding"][0]["code"]: p for p in preds[1:3]}
    assert sides["n1b-left"]["probabilityDecimal"] == 0.31 and sides["n1b-right"]["probabilityDecimal"] == 0.12
    assert sides["n1b-right"]["qualitativeRisk"]["coding"][0]["code"] == "low"
    assert len(preds) == 5
    assert ra["basis"][1]["identifier"] == {"system": "urn:dicom:uid", "value": "urn:oid:1.2.840.113619.2.55.3"}
    assert any(RESULT["provenance"]["bundle_sha256"] in n["text"] for n in ra["note"])


def test_invalid_risk_assessment_is_rejected():
    with pytest.raises(FhirInputError, match="prediction"):
        validate_risk_assessment({"resourceType": "RiskAssessment", "status": "final",
                                  "subject": {"reference": "Patient/x"},
                                  "prediction": [{"probabilityDecimal": "high"}]}, "R5")
    with pytest.raises(ValueError):
        risk_assessment(dict(RESULT, patient={"probability": 1.7}))
