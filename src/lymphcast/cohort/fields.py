"""Clinical fields: the built-in dictionary and the spec a cohort.yaml may add.

A field is a number (with a plausible range), a binary 0/1 flag, or a category with a closed list of values.
Blank cells mean missing; models impute them, the validator accepts them unless the field is required.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator


class FieldSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["number", "binary", "category"]
    description: str = ""
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _category_has_values(self) -> "FieldSpec":
        if self.type == "category" and not self.values:
            raise ValueError("a category field needs its list of 'values'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("'min' is larger than 'max'")
        return self


def _num(desc: str, lo: float, hi: float, unit: str) -> FieldSpec:
    return FieldSpec(type="number", description=desc, min=lo, max=hi, unit=unit)


def _bin(desc: str) -> FieldSpec:
    return FieldSpec(type="binary", description=desc)


# Preoperative fields named in the clinical literature on lateral neck metastasis (see CLINICAL_FACTS.md).
STANDARD_FIELDS: dict[str, FieldSpec] = {
    "age": _num("age at surgery", 0, 120, "years"),
    "sex": FieldSpec(type="category", description="sex", values=("F", "M")),
    "tumour_size_mm": _num("largest diameter of the primary tumour on ultrasound", 0.5, 150, "mm"),
    "tumour_side": FieldSpec(type="category", description="lobe holding the dominant tumour",
                             values=("left", "right", "isthmus")),
    "multifocal": _bin("more than one tumour focus"),
    "bilateral": _bin("foci in both lobes"),
    "extrathyroidal_extension": _bin("extrathyroidal extension on imaging"),
    "upper_pole": _bin("dominant tumour in the upper pole"),
    "capsular_contact": _bin("tumour contact with the thyroid capsule over 25% of its perimeter"),
    "microcalcification": _bin("microcalcification in the primary tumour"),
    "braf_v600e": _bin("BRAF V600E mutation on the fine-needle aspirate"),
    "hashimoto": _bin("Hashimoto thyroiditis"),
    "tsh_miu_l": _num("preoperative TSH", 0, 100, "mIU/L"),
    "palpable_adenopathy": _bin("palpable lateral neck adenopathy on examination"),
}


def resolve_fields(declared: dict[str, FieldSpec | None]) -> dict[str, FieldSpec]:
    """Fill a cohort's declared field list: a standard name may omit its spec."""
    resolved: dict[str, FieldSpec] = {}
    for name, spec in declared.items():
        if spec is None:
            if name not in STANDARD_FIELDS:
                raise ValueError(f"clinical field '{name}' is not a standard field, so it needs a spec "
                                 f"(type: number|binary|category)")
            spec = STANDARD_FIELDS[name]
        resolved[name] = spec
    return resolved
