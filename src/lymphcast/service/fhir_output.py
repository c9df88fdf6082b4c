"""Write a LymphCast result as a FHIR RiskAssessment, checked by fhir.resources before it leaves.

version="R5" uses fhir.resources' default (R5) models. version="R4" uses `fhir.resources.R4B`: the package ships
R4B (4.3), not R4 (4.0.1), and RiskAssessment, Reference and Annotation are structurally the same in both, so the
R4B check stands for R4. The ImagingStudy is cited by identifier (a DICOM Study Instance UID), which both allow.
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from . import fhir_codes as fc
from ..cohort import Problem
from .fhir_input import FhirInputError

_RISK = {True: fc.Coding(fc.RISK_PROBABILITY, "high", "High likelihood"),
         False: fc.Coding(fc.RISK_PROBABILITY, "low", "Low likelihood")}


def _model(version: str):
    if version.upper() == "R5":
        from fhir.resources.riskassessment import RiskAssessment
    elif version.upper() in ("R4", "R4B"):
        from fhir.resources.R4B.riskassessment import RiskAssessment
    else:
        raise ValueError(f"FHIR version '{version}' — expected R5 or R4")
    return RiskAssessment


def risk_assessment(result: dict, *, version: str = "R5", observation_references=(), patient_reference=None,
                    imaging_study_uid=None) -> dict:
    """The RiskAssessment (as a JSON dict) for one service result: patient, side, level and node predictions.

    `result` is the service's result dict (case_id, patient_id, created_utc, patient, sides, levels, nodes,
    thresholds, provenance). Qualitative risk (high/low) comes from the Youden threshold and is given only where
    that threshold applies: the patient and each side. Raises ValueError on a result without its probabilities.
    """
    try:
        case_id, patient_id, created = result["case_id"], result["patient_id"], result["created_utc"]
        p_patient = result["patient"]["probability"]
    except (KeyError, TypeError) as err:
        raise ValueError(f"result lacks {err} — expected case_id, patient_id, created_utc and patient.probability") \
            from None
    thresholds, prov = result.get("thresholds") or {}, result.get("provenance") or {}
    youden = thresholds.get("youden")
    predictions = [_prediction(fc.N1B, p_patient, youden, "patient level")]
    for s in result.get("sides") or []:
        outcome = fc.Coding(fc.PREDICTION, f"n1b-{s['side']}",
                            f"Lateral neck lymph node metastasis, {s['side']} side")
        predictions.append(_prediction(outcome, s["probability"], youden, f"{s['side']} side"))
    for lv in result.get("levels") or []:
        outcome = fc.Coding(fc.PREDICTION, f"n1b-{lv['side']}-{lv['level']}",
                            f"Lymph node metastasis, {lv['side']} neck level {lv['level']}")
        predictions.append(_prediction(outcome, lv["probability"], None, f"{lv['side']} level {lv['level']}"))
    for node in result.get("nodes") or []:
        where = " level ".join(str(node[k]) for k in ("side", "level") if node.get(k))
        outcome = fc.Coding(fc.PREDICTION, "node-metastasis", "Metastasis in an imaged lymph node")
        scope = f"node {node['node_id']}" + (f", {where}" if where else "")
        predictions.append(_prediction(outcome, node["probability"], None, scope,
                                       f"Metastasis in lymph node {node['node_id']}" + (f" ({where})" if where else "")))

    basis = [{"reference": r} for r in observation_references if r]
    if imaging_study_uid:
        basis.append({"type": "ImagingStudy",
                      "identifier": {"system": fc.DICOM_UID, "value": f"urn:oid:{imaging_study_uid}"}})
    model, lc_version = prov.get("model", "unknown"), prov.get("lymphcast_version", "unknown")
    payload = {
        "resourceType": "RiskAssessment",
        "identifier": [{"system": fc.CASE_ID, "value": case_id}],
        "status": "final",
        "method": {"coding": [fc.Coding(fc.PREDICTION, f"lymphcast-{model}",
                                        f"LymphCast {lc_version}, {model} model").as_fhir()]},
        "subject": {"reference": patient_reference or f"Patient/{patient_id}", "type": "Patient",
                    "identifier": {"value": patient_id}},
        "occurrenceDateTime": created,
        "prediction": predictions,
        "note": _notes(thresholds, prov),
    }
    if basis:
        payload["basis"] = basis
    validate_risk_assessment(payload, version)
    # Round trip through the model so the output is exactly what fhir.resources serialises.
    return json.loads(_model(version).model_validate(payload).model_dump_json())


def _prediction(outcome: fc.Coding, probability, youden, scope: str, text: str | None = None) -> dict:
    p = float(probability)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"probability {p} for {scope} — expected 0 to 1")
    pred = {"outcome": {"coding": [outcome.as_fhir()], "text": text or outcome.display},
            "probabilityDecimal": round(p, 6), "rationale": f"LymphCast prediction, {scope}"}
    if youden is not None:
        pred["qualitativeRisk"] = {"coding": [_RISK[p >= float(youden)].as_fhir()],
                                   "text": f"{'high' if p >= float(youden) else 'low'} (Youden threshold "
                                           f"{float(youden):g})"}
    return pred


def _notes(thresholds: dict, prov: dict) -> list[dict]:
    """Thresholds and provenance as plain-text notes: a reader of the record sees how to read the numbers."""
    notes = []
    if thresholds:
        named = {"youden": "Youden (high risk at or above)", "rule_out_sens95": "rule-out at 95% sensitivity",
                 "rule_out_sens90": "rule-out at 90% sensitivity"}
        shown = "; ".join(f"{named.get(k, k)} {float(v):g}" for k, v in thresholds.items() if v is not None)
        notes.append({"text": f"Decision thresholds on the patient-level probability: {shown}."})
    if prov:
        notes.append({"text": f"LymphCast {prov.get('lymphcast_version', 'unknown')}, model "
                              f"{prov.get('model', 'unknown')}, modalities "
                              f"{', '.join(prov.get('modalities') or []) or 'none'}; input bundle sha256 "
                              f"{prov.get('bundle_sha256', 'unknown')}."})
    return notes


def validate_risk_assessment(payload: dict, version: str) -> None:
    """Raise FhirInputError, one Problem per failing element, when `payload` is not a valid RiskAssessment."""
    if not isinstance(payload, dict) or payload.get("resourceType") != "RiskAssessment":
        raise FhirInputError(f"not a RiskAssessment — expected resourceType 'RiskAssessment' in FHIR {version}")
    try:
        _model(version).model_validate(payload)
    except ValidationError as err:
        problems = [Problem("FHIR RiskAssessment",
                            f"{'.'.join(str(p) for p in e['loc'])} — {str(e['msg']).removeprefix('Value error, ')}")
                    for e in err.errors()[:25]]
        raise FhirInputError(f"RiskAssessment is not valid FHIR {version}: {len(problems)} problem(s)",
                             problems) from None
