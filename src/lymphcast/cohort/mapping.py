"""The mapping file that tells import_table how a source table becomes a cohort (YAML → pydantic).

    name: uci-dtc                            # the cohort's name
    centre: {id: uci, name: "..."}           # one centre for every row, or
    centre: {column: Hospital, values: {"Hospital A": a}}
    patient_id: {column: Record}             # ids from a column, or
    patient_id: {prefix: "uci-", digits: 4}  # uci-0001 = first data row of the source table
    missing: ["", "NA"]                      # source cells that mean 'not recorded'
    filters: [{column: Pathology, in: [Papillary]}, {column: Site, not_in: [x]}]
    label: {column: N, values: {N1b: 1, N0: 0, N1a: 0}}
    leaking: [Risk, Stage]                   # source columns that must never become predictors
    fields:                                  # target field → source column, value map, spec if not standard
      age: {column: Age}
      t_stage: {column: T, spec: {type: category, values: [T1, T2]}}

Keys are checked here; whether columns exist and values fit is checked against the source table by
import_table, so all problems of a mapping and its table are reported together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import LymphCastError, Problem
from .fields import FieldSpec

Target = Union[str, int, float, None]  # None maps a source value to 'not recorded'


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _string_keys(values):
    # Unquoted YAML keys such as 1 arrive as numbers; source cells are always text.
    return {str(k): v for k, v in values.items()} if isinstance(values, dict) else values


CENTRE_ID = r"^[A-Za-z0-9_.-]+$"  # as in cohort.yaml
CentreId = Annotated[str, Field(pattern=CENTRE_ID)]


class Centre(_Strict):
    id: CentreId | None = None
    name: str = ""
    column: str | None = None
    values: dict[str, CentreId] | None = None

    _keys = field_validator("values", mode="before")(_string_keys)

    @model_validator(mode="after")
    def _one_source(self) -> "Centre":
        if (self.id is None) == (self.column is None):
            raise ValueError("give either 'id' (one centre for all rows) or 'column' (centre per row)")
        return self


class PatientId(_Strict):
    column: str | None = None
    prefix: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]*$")
    digits: int = Field(4, ge=1, le=12)

    @model_validator(mode="after")
    def _one_source(self) -> "PatientId":
        if (self.column is None) == (self.prefix is None):
            raise ValueError("give either 'column' (ids from the table) or 'prefix' (generated ids)")
        return self


class RowFilter(_Strict):
    column: str
    in_: tuple[str, ...] | None = Field(None, alias="in")
    not_in: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> "RowFilter":
        if (self.in_ is None) == (self.not_in is None):
            raise ValueError("give exactly one of 'in' (keep rows with these values) or 'not_in' (drop them)")
        return self

    def keeps(self, value: str) -> bool:
        return value in self.in_ if self.in_ is not None else value not in self.not_in


class ValueMapped(_Strict):
    column: str
    values: dict[str, Target] | None = None  # without a map, source values are used as they are

    _keys = field_validator("values", mode="before")(_string_keys)


class Label(ValueMapped):
    @field_validator("values")
    @classmethod
    def _binary(cls, values):
        bad = [k for k, v in (values or {}).items() if v not in (0, 1, None) or isinstance(v, float)]
        if bad:
            raise ValueError(f"label values must map to 0, 1 or null; check {', '.join(map(repr, bad))}")
        return values


class FieldMap(ValueMapped):
    spec: FieldSpec | None = None  # needed for fields outside the standard dictionary


class Mapping(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    centre: Centre
    patient_id: PatientId
    missing: tuple[str, ...] = ("",)
    filters: tuple[RowFilter, ...] = ()
    label: Label
    leaking: tuple[str, ...] = ()
    fields: dict[str, FieldMap] = Field(min_length=1)


class _Loader(yaml.SafeLoader):
    """YAML without the 1.1 habit of reading yes/no/on/off as booleans: 'No' is a value in real tables."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping file; raise LymphCastError naming each offending key."""
    path = Path(path)
    label = path.name
    if not path.is_file():
        raise LymphCastError(f"mapping file '{path}' not found")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (a safe loader)
    except UnicodeDecodeError:
        raise LymphCastError(f"mapping '{path}' is not UTF-8 text", [Problem(label, "not UTF-8 text")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise LymphCastError(f"mapping '{path}' is not valid YAML",
                             [Problem(label, str(getattr(exc, "problem", exc)),
                                      line=mark.line + 1 if mark else None)]) from None
    if not isinstance(data, dict):
        raise LymphCastError(f"mapping '{path}' must be a YAML mapping with name, centre, patient_id, label "
                             "and fields")
    try:
        return Mapping.model_validate(data)
    except ValidationError as exc:
        problems = [Problem(label, err["msg"], column=".".join(str(p) for p in err["loc"]) or "(top level)")
                    for err in exc.errors()]
        raise LymphCastError(f"mapping '{path}' has {len(problems)} problem(s)", problems) from None
