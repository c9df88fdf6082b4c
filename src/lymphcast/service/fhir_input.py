"""Read a FHIR Bundle (one Patient and its Observations) into the clinical values a model takes.

Version: validated as R5 first; a Bundle whose meta.profile names R4/R4B, a caller's version="R4", or a failed
R5 check leads to R4B. fhir.resources ships R4B (4.3), not R4 (4.0.1); the Patient and Observation elements read
here are the same in both. Status: final/amended/corrected are used, preliminary is used and noted; registered,
cancelled, entered-in-error and unknown are skipped (listed in `ignored`). All problems are collected first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from pydantic import ValidationError

from ..cohort import LymphCastError, Problem
from . import fhir_codes as fc

FILE = "FHIR Bundle"
BUNDLE_TYPES = ("collection", "transaction", "batch")
USED = {"final", "amended", "corrected", "preliminary"}
SKIPPED = {"registered", "cancelled", "entered-in-error", "unknown"}


class FhirInputError(LymphCastError):
    """A FHIR payload that cannot be read as clinical input; the API answers it with HTTP 422."""


@dataclass
class ClinicalInput:
    patient_id: str                 # Patient.identifier[0].value (the MRN, as in DICOM PatientID), else Patient.id
    values: dict[str, object]       # field -> float (number), int 0/1 (binary) or str (category)
    patient_reference: str          # "Patient/<id>", else the entry's fullUrl
    observation_references: list[str]
    missing: list[str]              # model fields with no value in the Bundle
    ignored: list[str] = field(default_factory=list)  # entries read but not used, with the reason
    notes: list[str] = field(default_factory=list)    # values used with a caveat
    fhir_version: str = "R5"


def clinical_from_fhir(payload: dict | str | bytes, fields, *, on_date: date | None = None,
                       version: str | None = None) -> ClinicalInput:
    """Clinical values for `fields` (name -> FieldSpec) from a FHIR Bundle; age is counted at `on_date` (today)."""
    data = _load_json(payload)
    bundle, found_version = _parse_bundle(data, version)
    raw = data.get("entry") or []
    entries = [(i, e.resource, e.fullUrl) for i, e in enumerate(bundle.entry or []) if e.resource is not None]
    patients = [(i, r, url) for i, r, url in entries if r.get_resource_type() == "Patient"]
    if len(patients) != 1:
        where = "".join(f" {_where(raw, i)}" for i, _, _ in patients)
        raise FhirInputError(f"FHIR Bundle holds {len(patients)} Patients{where} — expected exactly one")
    p_index, patient, p_url = patients[0]
    ids = [i.value for i in (patient.identifier or []) if i.value]
    out = ClinicalInput(ids[0] if ids else (patient.id or ""), {},
                        f"Patient/{patient.id}" if patient.id else (p_url or ""), [], [], fhir_version=found_version)
    problems = [] if out.patient_id and out.patient_reference else [Problem(FILE, f"{_where(raw, p_index)}: no "
                "identifier, id or fullUrl — expected an identifier (the MRN) and an id to reference it")]
    own_refs = {r for r in (out.patient_reference, p_url) if r}
    index, found = fc.code_index(fields), {}
    for i, res, url in entries:
        kind, where = res.get_resource_type(), _where(raw, i)
        if kind != "Observation":
            out.ignored += [f"{where}: {kind} is not read for clinical values"] if kind != "Patient" else []
            continue
        codings = (res.code.coding or []) if res.code else []
        names = {index[(c.system, c.code)] for c in codings if (c.system, c.code) in index}
        if len(names) != 1:
            codes = ", ".join(f"{c.system}|{c.code}" for c in codings) or "none"
            out.ignored.append(f"{where}: code {codes} names {len(names)} fields of this model — expected one")
            continue
        name = names.pop()
        if not _same_patient(res.subject, own_refs, ids):
            got = (res.subject.reference if res.subject else None) or "none"
            problems.append(Problem(FILE, f"{where}: subject {got} — expected the Bundle's Patient "
                                          f"({out.patient_reference})", column=name))
            continue
        value = _observation(res, name, fields[name], where, problems, out)
        if value is not None:
            found.setdefault(name, []).append((value, _when(res), where, f"{kind}/{res.id}" if res.id else url))
    for name, hits in found.items():
        _choose(name, hits, out, problems)
    if "age" in fields and "age" not in out.values and patient.birthDate:
        _age_from_birth(patient.birthDate, on_date or date.today(), fields["age"], out, problems,
                        _where(raw, p_index))
    if "sex" in fields and "sex" not in out.values and patient.gender in fc.GENDER_TO_SEX:
        out.values["sex"] = fc.GENDER_TO_SEX[patient.gender]  # 'other'/'unknown' leave sex missing
    if problems:
        raise FhirInputError(f"FHIR Bundle: {len(problems)} problem(s) in the clinical input", problems)
    out.missing = [name for name in fields if name not in out.values]
    return out


def _load_json(payload) -> dict:
    try:
        data = json.loads(payload) if isinstance(payload, (str, bytes, bytearray)) else payload
    except ValueError as err:  # bad JSON or bad UTF-8
        raise FhirInputError(f"FHIR payload is not JSON: {err}") from None
    if not isinstance(data, dict):
        raise FhirInputError(f"FHIR payload is a JSON {type(data).__name__} — expected a Bundle object")
    return data


def _parse_bundle(data: dict, version: str | None):
    """Validate with fhir.resources, R5 first unless the Bundle or the caller names R4/R4B."""
    kind = data.get("resourceType")
    if kind != "Bundle":
        raise FhirInputError(f"FHIR payload is a {kind or 'JSON object without resourceType'} — expected a "
                             f"Bundle (type {'/'.join(BUNDLE_TYPES)}) holding one Patient and its Observations")
    if data.get("type") not in BUNDLE_TYPES:
        raise FhirInputError(f"Bundle.type '{data.get('type')}' — expected one of {', '.join(BUNDLE_TYPES)}")
    profiles = " ".join(str(p) for p in ((data.get("meta") or {}).get("profile") or []))
    says_r4 = (version or "").upper().startswith("R4") or any(t in profiles for t in ("/R4", "/4.0", "/4.3"))
    order = ["R4B", "R5"] if says_r4 else ["R5", "R4B"]
    first = None
    for name in order[:1] if version else order:  # a caller that names the version is not second-guessed
        bundle, problems = _validate(data, name)
        if not problems:
            return bundle, name
        first = first or (name, problems)
    raise FhirInputError(f"FHIR Bundle is not valid FHIR {first[0]}: {len(first[1])} problem(s)", first[1])


def _validate(data: dict, name: str):
    """The Bundle model, or pydantic errors as Problems naming the entry and the failing element."""
    if name == "R4B":
        import fhir.resources.R4B as module
    else:
        import fhir.resources as module
    raw = data.get("entry") if isinstance(data.get("entry"), list) else []
    kinds = [_resource(raw, i).get("resourceType") for i in range(len(raw))]
    problems = [Problem(FILE, f"entry[{i}]: resourceType '{k}' is not a FHIR {name} resource",
                        column=f"entry[{i}].resource.resourceType") for i, k in enumerate(kinds)
                if k and not _known(module, k)]  # fhir.resources fails with a KeyError on these
    if problems:
        return None, problems
    try:
        return module.get_fhir_model_class("Bundle").model_validate(data), []
    except ValidationError as err:
        for e in err.errors()[:25]:  # a badly broken payload should not flood the response
            loc = list(e["loc"])
            where, path = "Bundle", loc
            if len(loc) >= 3 and loc[0] == "entry" and isinstance(loc[1], int) and loc[2] == "resource":
                where, path = _where(raw, loc[1]), loc[3:]
            given = f" {e['input']!r}" if isinstance(e.get("input"), (str, int, float, bool)) else ""
            msg = str(e["msg"]).removeprefix("Value error, ")
            problems.append(Problem(FILE, f"{where}: {_path(path) or 'resource'}{given} — {msg}", column=_path(loc)))
    except (KeyError, TypeError, ValueError) as err:  # malformed nesting that pydantic does not wrap
        problems.append(Problem(FILE, f"Bundle: not readable as FHIR {name} ({err!r})"))
    return None, problems


def _known(module, kind) -> bool:
    try:
        return bool(module.get_fhir_model_class(str(kind)))
    except ValueError:
        return False


def _path(loc: list) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _where(raw: list, i: int) -> str:
    """'entry[3] (Observation/obs-7)': how problems name an entry, read from the raw JSON."""
    res = _resource(raw, i)
    kind, rid = res.get("resourceType", "resource"), res.get("id")
    return f"entry[{i}] ({kind}/{rid})" if rid else f"entry[{i}] ({kind})" if res else f"entry[{i}]"


def _resource(raw: list, i: int) -> dict:
    res = raw[i].get("resource") if i < len(raw) and isinstance(raw[i], dict) else None
    return res if isinstance(res, dict) else {}


def _same_patient(subject, own_refs: set[str], ids: list[str]) -> bool:
    """A subject names our Patient by reference (relative, absolute or fullUrl) or by its identifier."""
    ref = subject.reference if subject else None
    return (ref in own_refs or any(ref.endswith("/" + r) for r in own_refs)) if ref else \
        bool(subject and subject.identifier and subject.identifier.value in ids)


def _observation(obs, name: str, spec, where: str, problems: list, out: ClinicalInput):
    """The value one Observation gives, or None when it is skipped or wrong (then a Problem is added)."""
    def bad(msg: str) -> None:
        problems.append(Problem(FILE, f"{where}: {msg}", column=name))
    if obs.status in SKIPPED:
        return out.ignored.append(f"{where}: status '{obs.status}' carries no usable result")
    if obs.status not in USED:
        return bad(f"status '{obs.status}' — expected final, amended, corrected or preliminary")
    shown = _shown(obs)
    if shown is None and obs.dataAbsentReason is not None:
        return out.ignored.append(f"{where}: {name} marked absent (dataAbsentReason)")
    if obs.status == "preliminary":
        out.notes.append(f"{where}: {name} taken from a preliminary result")
    if spec.type == "number":
        return _number(obs.valueQuantity, name, spec, bad)
    cc = obs.valueCodeableConcept
    codings = (cc.coding or []) if cc else []
    if spec.type == "binary":
        value = int(obs.valueBoolean) if obs.valueBoolean is not None else \
            obs.valueInteger if obs.valueInteger in (0, 1) else fc.decode_binary(codings)
        expected = "valueBoolean or valueCodeableConcept SNOMED CT 373066001 Yes / 373067005 No"
    else:
        value = fc.decode_category(name, spec.values, codings, [obs.valueString, cc.text if cc else None])
        expected = f"one of {', '.join(spec.values)}"
    if value is None:
        bad(f"value {shown or 'missing'} — expected {expected}")
    return value


def _shown(obs) -> str | None:
    """The value[x] an Observation carries, for an error message; None when it has none."""
    cc = obs.valueCodeableConcept
    if cc:
        return ", ".join(f"{c.system}|{c.code}" for c in cc.coding or []) or f"'{cc.text}'"
    return next((f"{a} {v!r}" for a in ("valueString", "valueBoolean", "valueInteger", "valueQuantity")
                 if (v := getattr(obs, a, None)) is not None), None)


def _number(q, name: str, spec, bad):
    unit = spec.unit or "no unit"
    if q is None or q.value is None:
        return bad(f"no valueQuantity.value — expected a number in {unit}")
    if q.comparator:  # '<0.01' is a bound, not a value the model was trained on
        return bad(f"valueQuantity.comparator '{q.comparator}' — expected an exact value")
    units, given = fc.accepted_units(name, spec.unit), [u for u in (q.code, q.unit) if u]
    factor = next((units[u] for u in given if u in units), None)
    if units and factor is None:
        return bad(f"valueQuantity.unit '{given[0] if given else ''}' — expected {unit} "
                   f"(accepted: {', '.join(units)})")
    value = float(q.value) * (factor or 1.0)
    converted = f" = {value:g} {unit}" if factor not in (None, 1.0) else ""
    return _in_range(value, spec, f"valueQuantity {q.value} {given[0] if given else ''}{converted}".strip(), bad)


def _in_range(value: float, spec, shown: str, bad):
    if (spec.min is not None and value < spec.min) or (spec.max is not None and value > spec.max):
        lo, hi = ("any" if x is None else f"{x:g}" for x in (spec.min, spec.max))
        return bad(f"{shown} — expected {lo} to {hi} {spec.unit or ''}".rstrip())
    return value


def _when(obs) -> datetime | None:
    """When a result was taken (UTC), to pick the latest of differing results; a partial date counts as none."""
    v = obs.effectiveDateTime if obs.effectiveDateTime is not None else obs.issued
    if v is None or isinstance(v, str):  # fhir.resources keeps 'YYYY' and 'YYYY-MM' as text
        return None
    v = v if isinstance(v, datetime) else datetime(v.year, v.month, v.day)
    return v if v.tzinfo else v.replace(tzinfo=timezone.utc)


def _choose(name: str, hits: list[tuple], out: ClinicalInput, problems: list) -> None:
    """One value per field: agreeing results are fine; differing ones need dates, and the latest wins."""
    chosen = hits
    if len({h[0] for h in hits}) > 1:
        latest = max(h[1] for h in hits) if all(h[1] for h in hits) else None
        chosen = [h for h in hits if latest and h[1] == latest]
        if len({h[0] for h in chosen}) != 1:
            shown = ", ".join(f"{h[2]} = {h[0]!r}" for h in hits)
            problems.append(Problem(FILE, f"conflicting {name} values ({shown}) — expected one result, or dated "
                                          "results with a single latest one", column=name))
            return
        out.notes.append(f"{name}: {len(hits)} differing results, the latest ({chosen[0][2]}) used")
    out.values[name] = chosen[0][0]
    out.observation_references.extend(h[3] for h in chosen if h[3])


def _age_from_birth(birth, on: date, spec, out: ClinicalInput, problems: list, where: str) -> None:
    """Whole years at `on`; a partial birthDate counts from the middle of the unknown span."""
    given = birth
    if isinstance(birth, str):  # fhir.resources keeps 'YYYY' and 'YYYY-MM' as text
        out.notes.append(f"{where}: partial birthDate '{birth}' — age approximate")
        year, _, month = birth.partition("-")  # the middle of the unknown span
        birth = date(int(year), int(month), 15) if month else date(int(year), 7, 1)
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    bad = lambda msg: problems.append(Problem(FILE, f"{where}: {msg}", column="age"))  # noqa: E731
    if _in_range(float(years), spec, f"birthDate {given} gives age {years} on {on}", bad) is not None:
        out.values["age"] = float(years)
