"""The code map between LymphCast clinical fields and FHIR codings (see FHIR.md for the table).

Standard codes (LOINC, SNOMED CT) appear only where the concept is an exact fit and the code is certain;
everything else uses the local CodeSystem, whose code is the field name. Every field also accepts its local
code on input, so a site can send any field, including a deployed model's own extra fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
V2_YES_NO = "http://terminology.hl7.org/CodeSystem/v2-0136"
ADMIN_GENDER = "http://hl7.org/fhir/administrative-gender"
RISK_PROBABILITY = "http://terminology.hl7.org/CodeSystem/risk-probability"
LOCAL = "https://lymphcast.example.org/fhir/CodeSystem/clinical"
# Outcomes and methods of our predictions are not clinical inputs, so they live in a second local system.
PREDICTION = "https://lymphcast.example.org/fhir/CodeSystem/prediction"
CASE_ID = "https://lymphcast.example.org/fhir/NamingSystem/case-id"
DICOM_UID = "urn:dicom:uid"


@dataclass(frozen=True)
class Coding:
    system: str
    code: str
    display: str = ""

    def as_fhir(self) -> dict:
        return {"system": self.system, "code": self.code, "display": self.display} if self.display \
            else {"system": self.system, "code": self.code}


@dataclass(frozen=True)
class FieldCode:
    """How one field travels in an Observation: codings accepted (first = preferred) and units accepted."""

    field: str
    codings: tuple[Coding, ...]
    unit: str | None = None                     # UCUM code written on output
    units: dict[str, float] = field(default_factory=dict)  # accepted unit -> factor into our unit

    @property
    def local(self) -> Coding:
        mine = [c for c in self.codings if c.system == LOCAL]
        return mine[0] if mine else Coding(LOCAL, self.field, self.field.replace("_", " "))


def _local(name: str, display: str) -> tuple[Coding, ...]:
    return (Coding(LOCAL, name, display),)


_MM = {"mm": 1.0, "cm": 10.0}
# uIU/mL and mIU/L are the same quantity (1 uIU/mL = 1 mIU/L); labs print both.
_MIU_L = {"m[IU]/L": 1.0, "mIU/L": 1.0, "u[IU]/mL": 1.0, "uIU/mL": 1.0, "µIU/mL": 1.0, "mU/L": 1.0}
_YEARS = {"a": 1.0, "yr": 1.0, "yrs": 1.0, "year": 1.0, "years": 1.0}

FIELD_CODES: dict[str, FieldCode] = {c.field: c for c in (
    FieldCode("age", (Coding(LOINC, "30525-0", "Age"),), "a", _YEARS),
    # Sex comes from Patient.gender; the local code lets a site send it as an Observation instead.
    FieldCode("sex", _local("sex", "Sex")),
    FieldCode("tumour_size_mm", (Coding(LOINC, "21889-1", "Size Tumor"),), "mm", _MM),
    FieldCode("tumour_side", _local("tumour_side", "Lobe holding the dominant tumour")),
    FieldCode("multifocal", _local("multifocal", "More than one tumour focus")),
    FieldCode("bilateral", _local("bilateral", "Tumour foci in both lobes")),
    FieldCode("extrathyroidal_extension", _local("extrathyroidal_extension", "Extrathyroidal extension on imaging")),
    FieldCode("upper_pole", _local("upper_pole", "Dominant tumour in the upper pole")),
    FieldCode("capsular_contact", _local("capsular_contact", "Capsular contact over 25% of the perimeter")),
    FieldCode("microcalcification", _local("microcalcification", "Microcalcification in the primary tumour")),
    # No LOINC code for BRAF V600E presence is certain enough to hard-code, so the local code is used.
    FieldCode("braf_v600e", _local("braf_v600e", "BRAF V600E mutation on fine-needle aspirate")),
    FieldCode("hashimoto", (Coding(SNOMED, "21983002", "Hashimoto thyroiditis"),)),
    FieldCode("tsh_miu_l", (Coding(LOINC, "3016-3", "Thyrotropin [Units/volume] in Serum or Plasma"),),
              "m[IU]/L", _MIU_L),
    FieldCode("palpable_adenopathy", _local("palpable_adenopathy", "Palpable lateral neck adenopathy")),
)}

# Answers for binary fields given as valueCodeableConcept.
BOOLEAN_ANSWERS: dict[tuple[str, str], int] = {
    (SNOMED, "373066001"): 1, (SNOMED, "373067005"): 0,   # Yes / No (qualifier value)
    (V2_YES_NO, "Y"): 1, (V2_YES_NO, "N"): 0,
    (LOINC, "LA9633-4"): 1, (LOINC, "LA9634-2"): 0,       # Present / Absent
    (LOCAL, "1"): 1, (LOCAL, "0"): 0,
}
YES = Coding(SNOMED, "373066001", "Yes")
NO = Coding(SNOMED, "373067005", "No")

# Coded answers for category fields, on top of the category's own value as code or text.
CATEGORY_ANSWERS: dict[str, dict[tuple[str, str], str]] = {
    "tumour_side": {(SNOMED, "7771000"): "left", (SNOMED, "24028007"): "right"},
    "sex": {(ADMIN_GENDER, "female"): "F", (ADMIN_GENDER, "male"): "M"},
}
GENDER_TO_SEX = {"female": "F", "male": "M"}

# The model's outcome. No SNOMED CT concept for lateral-neck nodal metastasis is certain here, so local codes.
N1B = Coding(PREDICTION, "n1b", "Lateral neck lymph node metastasis (N1b)")


def field_code(name: str) -> FieldCode:
    """The code entry of a field; a field outside the standard list travels under its local code only."""
    return FIELD_CODES.get(name) or FieldCode(name, ())


def code_index(fields) -> dict[tuple[str, str], str]:
    """(system, code) -> field name for the fields a model uses; both standard and local codes are accepted."""
    index: dict[tuple[str, str], str] = {}
    for name in fields:
        entry = field_code(name)
        for coding in (*entry.codings, entry.local):
            index[(coding.system, coding.code)] = name
    return index


def output_coding(name: str) -> list[dict]:
    """Codings to write for a field: the standard one first when there is one, then the local one."""
    entry = field_code(name)
    codings = [c for c in entry.codings if c.system != LOCAL]
    return [c.as_fhir() for c in (*codings, entry.local)]


def decode_binary(codings) -> int | None:
    """0/1 from a coded yes/no answer, None when no coding (or contradicting codings) is recognised."""
    hits = {BOOLEAN_ANSWERS[(c.system, c.code)] for c in codings if (c.system, c.code) in BOOLEAN_ANSWERS}
    return hits.pop() if len(hits) == 1 else None


def decode_category(name: str, values, codings, texts) -> str | None:
    """A category value from codings (standard answers, or our own codes) or free texts, case-insensitively."""
    answers, allowed = CATEGORY_ANSWERS.get(name, {}), {v.lower(): v for v in values}
    for c in codings:
        if (c.system, c.code) in answers:
            return answers[(c.system, c.code)]
    own = [c.code for c in codings if c.system in (None, LOCAL)]  # local codes are the values themselves
    return next((allowed[t.strip().lower()] for t in (*own, *texts) if t and t.strip().lower() in allowed), None)


def accepted_units(name: str, spec_unit: str | None) -> dict[str, float]:
    """Units accepted for a number field and their factor; an extra field accepts just its declared unit."""
    return field_code(name).units or ({spec_unit: 1.0} if spec_unit else {})
