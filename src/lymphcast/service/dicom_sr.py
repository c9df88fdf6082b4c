"""The LymphCast result as a DICOM Comprehensive SR, filed into the study the ultrasound came from.

Patient and study attributes are inherited from the first evidence instance (highdicom's evidence
mechanism), so PACS files the report beside the images; the report gets its own series. Probabilities are
NUM items in UCUM "1" (no units), on the 0..1 scale the model returns, so nothing is rescaled on the way.
Concepts DICOM has no code for use the private scheme "99LCAST" (declared in CodingSchemeIdentificationSequence).
The content tree is drawn in DICOM.md. UIDs are derived from the case, study and model bundle, so sending the
same result again replaces the earlier copy in PACS rather than adding a second one.
"""

from __future__ import annotations

import datetime as _dt
import io
import math

import pydicom
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from lymphcast.cohort import LymphCastError

SCHEME = "99LCAST"
LEVELS = ("II", "III", "IV", "V", "VI")
DISCLAIMER = "Decision support only, not a diagnosis."


class SrReportError(LymphCastError):
    """A result that cannot be written as, or an SR that cannot be read back as, a LymphCast report."""


def _local(value: str, meaning: str):
    from highdicom.sr import CodedConcept

    return CodedConcept(value, SCHEME, meaning)


TITLE = ("LC-REPORT", "LymphCast N1b risk report")
PROB = ("N1B-PROB", "Probability of lateral neck metastasis (N1b)")
BUNDLE = ("BUNDLE-SHA256", "Model bundle SHA-256")
MODEL = ("MODEL", "Model")
MODALITIES = ("MODALITIES", "Input modalities")
CASE = ("CASE-ID", "LymphCast case ID")
BY_SIDE = ("SIDE-RISK", "Risk by side of neck")
BY_LEVEL = ("LEVEL-RISK", "Risk by neck level")
BY_NODE = ("NODE-RISK", "Risk by lymph node")
THRESHOLDS = ("THRESHOLDS", "Decision thresholds in force")
THRESHOLD = ("THRESHOLD", "Decision threshold")
THRESHOLD_NAME = ("THRESHOLD-NAME", "Threshold name")
NECK_LEVEL = ("NECK-LEVEL", "Neck level")
INTENDED_USE = ("INTENDED-USE", "Intended use")
SIDE_CODES = {"left": codes.SCT.Left, "right": codes.SCT.Right}


def risk_report(result: dict, evidence: list[pydicom.Dataset], *, series_number: int = 990,
                instance_number: int = 1, manufacturer: str = "LymphCast") -> pydicom.Dataset:
    """A Comprehensive SR holding `result` (the service's result dict), in the study of `evidence[0]`."""
    import highdicom as hd
    from highdicom.sr import (ComprehensiveSR, ContainerContentItem, ImageContentItem,
                              TextContentItem)

    if not evidence:
        raise SrReportError(f"case {result.get('case_id', '?')}: no evidence instances; the report must name the "
                            "images it was computed from and the study to file it in")
    headers = [_header(ds) for ds in evidence]
    prov = _get(result, "provenance", dict, "result")
    sha = str(_get(prov, "bundle_sha256", str, "provenance"))
    version = str(_get(prov, "lymphcast_version", str, "provenance"))
    case_id = str(result.get("case_id") or "")

    root = ContainerContentItem(_local(*TITLE), template_id=None)
    items = list(hd.sr.AlgorithmIdentification(name="LymphCast", version=version))
    items += _observer_context(sha, version, manufacturer)
    for concept, text in ((BUNDLE, sha), (MODEL, prov.get("model")), (CASE, case_id),
                          (MODALITIES, ", ".join(prov.get("modalities") or []))):
        if text:
            items.append(TextContentItem(_local(*concept), str(text), relationship_type="CONTAINS"))
    patient = _get(result, "patient", dict, "result")
    items.append(_num(PROB, _prob(patient, "result['patient']"), []))
    for key, concept in (("sides", BY_SIDE), ("levels", BY_LEVEL), ("nodes", BY_NODE)):
        entries = result.get(key) or []
        if entries:
            box = ContainerContentItem(_local(*concept), relationship_type="CONTAINS")
            box.ContentSequence = [_num(PROB, _prob(e, f"result['{key}'][{i}]"), _qualifiers(e, f"{key}[{i}]"))
                                   for i, e in enumerate(entries)]
            items.append(box)
    thresholds = result.get("thresholds") or {}
    if thresholds:
        box = ContainerContentItem(_local(*THRESHOLDS), relationship_type="CONTAINS")
        box.ContentSequence = [
            _num(THRESHOLD, _prob({"probability": v}, f"thresholds['{k}']"),
                 [TextContentItem(_local(*THRESHOLD_NAME), str(k), relationship_type="HAS CONCEPT MOD")])
            for k, v in thresholds.items()]
        items.append(box)
    items.append(TextContentItem(_local(*INTENDED_USE), DISCLAIMER, relationship_type="CONTAINS"))
    items += [ImageContentItem(codes.DCM.SourceOfMeasurement, h.SOPClassUID, h.SOPInstanceUID,
                               relationship_type="CONTAINS") for h in headers]
    root.ContentSequence = items

    study = headers[0].StudyInstanceUID
    series_uid = generate_uid(entropy_srcs=["lymphcast-sr", study, case_id, sha])
    created = _created(result)
    try:
        sr = ComprehensiveSR(
            evidence=headers, content=root, series_instance_uid=series_uid, series_number=series_number,
            sop_instance_uid=generate_uid(entropy_srcs=[series_uid, str(instance_number), created.isoformat()]),
            instance_number=instance_number, manufacturer=manufacturer, is_complete=True,
            series_description="LymphCast N1b risk", software_versions=version,
            manufacturer_model_name="LymphCast", content_date=created.date(), content_time=created.time(),
            coding_schemes=[hd.coding_schemes.CodingSchemeIdentificationItem(
                SCHEME, name="LymphCast local codes", responsible_organization=manufacturer)])
    except (ValueError, TypeError, AttributeError) as exc:
        raise SrReportError(f"case {case_id or '?'}: cannot build the SR ({type(exc).__name__}: {exc})") from None
    return sr


def _header(ds: pydicom.Dataset) -> pydicom.Dataset:
    """The evidence without its pixels, with empty type-2 patient/study attributes that highdicom expects."""
    head = pydicom.Dataset()
    for elem in ds:
        if elem.tag.group != 0x7FE0:
            head.add(elem)
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "PatientID"):
        if not str(head.get(keyword) or "").strip():
            raise SrReportError(f"evidence instance {ds.get('SOPInstanceUID', '?')}: {keyword} is missing; "
                                "the report cannot be filed without it")
    for keyword in ("PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID", "StudyDate",
                    "StudyTime", "ReferringPhysicianName"):
        if keyword not in head:
            setattr(head, keyword, None)
    return head


def _observer_context(sha: str, version: str, manufacturer: str):
    """The device that made the observations: LymphCast, identified by a UID derived from the model bundle."""
    from highdicom.sr import DeviceObserverIdentifyingAttributes, ObservationContext, ObserverContext

    device = DeviceObserverIdentifyingAttributes(uid=generate_uid(entropy_srcs=["lymphcast-model", sha]),
                                                 name="LymphCast", manufacturer_name=manufacturer,
                                                 model_name=f"LymphCast {version}")
    return ObservationContext(observer_device_context=ObserverContext(codes.DCM.Device, device))


def _get(mapping, key: str, kind: type, where: str):
    value = mapping.get(key) if isinstance(mapping, dict) else None
    if not isinstance(value, kind) or (kind is str and not value):
        raise SrReportError(f"{where}['{key}'] is missing or not a {kind.__name__}; expected it in the result")
    return value


def _prob(entry, where: str) -> float:
    value = entry.get("probability") if isinstance(entry, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0.0 <= value <= 1.0:
        raise SrReportError(f"{where}: probability is {value!r}; expected a number from 0 to 1")
    return float(value)


def _qualifiers(entry: dict, where: str) -> list:
    """Side, level and node id of one NUM, as concept modifiers."""
    from highdicom.sr import CodeContentItem, TextContentItem

    out = []
    if "node_id" in entry:
        out.append(TextContentItem(codes.DCM.TrackingIdentifier, str(entry["node_id"]),
                                   relationship_type="HAS CONCEPT MOD"))
    side = entry.get("side")
    if side not in SIDE_CODES:
        raise SrReportError(f"result['{where}']: side is {side!r}; expected 'left' or 'right'")
    out.append(CodeContentItem(codes.SCT.Laterality, SIDE_CODES[side], relationship_type="HAS CONCEPT MOD"))
    level = entry.get("level")
    if level is not None or where.startswith("levels"):
        if level not in LEVELS:
            raise SrReportError(f"result['{where}']: level is {level!r}; expected one of {', '.join(LEVELS)}")
        out.append(CodeContentItem(_local(*NECK_LEVEL), _local(f"LEVEL-{level}", f"Neck level {level}"),
                                   relationship_type="HAS CONCEPT MOD"))
    return out


def _num(concept: tuple, value: float, children: list):
    from highdicom.sr import NumContentItem

    item = NumContentItem(_local(*concept), value, codes.UCUM.NoUnits, relationship_type="CONTAINS")
    if children:
        item.ContentSequence = children
    return item


def _created(result: dict) -> _dt.datetime:
    """The result's creation time (UTC), or now when absent or unreadable."""
    try:
        return _dt.datetime.fromisoformat(str(result["created_utc"])).astimezone(_dt.timezone.utc).replace(tzinfo=None)
    except (KeyError, ValueError, TypeError):
        return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)


def to_bytes(ds: pydicom.Dataset) -> bytes:
    """The SR as a DICOM Part-10 file (file meta, explicit VR little endian)."""
    from pydicom.uid import ExplicitVRLittleEndian

    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _concept(item) -> tuple[str, str]:
    code = item.ConceptNameCodeSequence[0]
    return str(code.CodingSchemeDesignator), str(code.CodeValue)


def _value(item) -> float:
    measured = item.MeasuredValueSequence[0]
    return float(measured.get("FloatingPointValue", measured.NumericValue))


def _read_num(item) -> dict:
    out = {"probability": _value(item)}
    for child in item.get("ContentSequence") or []:
        concept = _concept(child)
        if concept == (SCHEME, THRESHOLD_NAME[0]):
            out["name"] = str(child.TextValue)
        elif concept == ("DCM", "112039"):
            out["node_id"] = str(child.TextValue)
        elif concept == ("SCT", "272741003"):
            code = child.ConceptCodeSequence[0].CodeValue
            out["side"] = next(s for s, c in SIDE_CODES.items() if c.value == code)
        elif concept == (SCHEME, NECK_LEVEL[0]):
            out["level"] = str(child.ConceptCodeSequence[0].CodeValue).removeprefix("LEVEL-")
    return out


def read_risk_report(ds: pydicom.Dataset) -> dict:
    """What a LymphCast SR says: patient probability, per side/level/node, thresholds, model identity."""
    name = f"SR {ds.get('SOPInstanceUID', '?')}"
    try:
        if _concept(ds) != (SCHEME, TITLE[0]):
            raise SrReportError(f"{name}: ConceptNameCodeSequence (0040,A043) is {_concept(ds)}; expected "
                                f"({SCHEME}, {TITLE[0]}) '{TITLE[1]}'")
        out: dict = {"patient": None, "sides": {}, "levels": [], "nodes": [], "thresholds": {},
                     "bundle_sha256": None, "lymphcast_version": None, "case_id": None}
        texts = {(SCHEME, BUNDLE[0]): "bundle_sha256", ("DCM", "111003"): "lymphcast_version",
                 (SCHEME, CASE[0]): "case_id", (SCHEME, MODEL[0]): "model"}
        for item in ds.ContentSequence:
            concept = _concept(item)
            if concept in texts and item.ValueType == "TEXT":
                out[texts[concept]] = str(item.TextValue)
            elif concept == (SCHEME, PROB[0]):
                out["patient"] = _value(item)
            elif concept in ((SCHEME, BY_SIDE[0]), (SCHEME, BY_LEVEL[0]), (SCHEME, BY_NODE[0]),
                             (SCHEME, THRESHOLDS[0])):
                rows = [_read_num(child) for child in item.get("ContentSequence") or []]
                if concept[1] == BY_SIDE[0]:
                    out["sides"] = {r["side"]: r["probability"] for r in rows}
                elif concept[1] == THRESHOLDS[0]:
                    out["thresholds"] = {r["name"]: r["probability"] for r in rows}
                else:
                    out["levels" if concept[1] == BY_LEVEL[0] else "nodes"] = rows
    except SrReportError:
        raise
    except Exception as exc:  # a damaged tree surfaces as AttributeError/KeyError/IndexError/StopIteration
        raise SrReportError(f"{name}: not a readable LymphCast report ({type(exc).__name__}: {exc})") from None
    if out["patient"] is None:
        raise SrReportError(f"{name}: no patient-level {PROB[1]} item ({SCHEME}, {PROB[0]}) in the content tree")
    return out
