"""Check a cohort folder and list every problem with its file, line, column and what was expected."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from .errors import Problem
from .fields import FieldSpec, resolve_fields
from .schema import (CYTOLOGY_COLUMNS, CYTOLOGY_FIELDS, LATERAL_LEVELS, LEVELS, MEDIA_SUFFIX, NODE_COLUMNS,
                     OPTIONAL_PATIENT_LABELS, PATIENT_COLUMNS, SIDES, CohortMeta)
from .tables import RawTable, read_raw_table
from .values import cell_problem, did_you_mean, label_problem


@dataclass
class Checked:
    """What validation read: the metadata and raw tables, plus every problem found."""

    meta: CohortMeta | None
    fields: dict[str, FieldSpec]
    patients: RawTable | None
    nodes: RawTable | None
    cytology: RawTable | None
    problems: list[Problem]


def read_meta(root: Path, problems: list[Problem]) -> CohortMeta | None:
    path = root / "cohort.yaml"
    if not path.is_file():
        problems.append(Problem("cohort.yaml", "file not found; every cohort folder starts with cohort.yaml"))
        return None
    try:
        # libyaml's safe loader when present: the same result, ten times faster (the service reads one per case)
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except UnicodeDecodeError:
        problems.append(Problem("cohort.yaml", "not UTF-8 text"))
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.append(Problem("cohort.yaml", f"not valid YAML: {getattr(exc, 'problem', exc)}",
                                line=mark.line + 1 if mark else None))
        return None
    if not isinstance(data, dict):
        problems.append(Problem("cohort.yaml", "expected a mapping with name, schema_version and centres"))
        return None
    try:
        return CohortMeta.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            problems.append(Problem("cohort.yaml", f"{err['msg']}", column=loc))
        return None


def _check_header(table: RawTable, required, allowed: set[str], problems: list[Problem]) -> bool:
    missing = [c for c in required if c not in table.header]
    for col in missing:
        problems.append(Problem(table.file, f"required column '{col}' is missing" +
                                did_you_mean(col, table.header), line=1))
    for col in table.header:
        if col not in allowed and not col.endswith(MEDIA_SUFFIX):
            problems.append(Problem(table.file, f"column '{col}' is not part of the format and not declared in "
                                    f"cohort.yaml" + did_you_mean(col, allowed), line=1, column=col))
    return not missing


def _check_ids(table: RawTable, column: str, problems: list[Problem]) -> set[str]:
    ids = table.column(column)
    seen: Counter[str] = Counter()
    for value, line in zip(ids, table.lines):
        if value == "":
            problems.append(Problem(table.file, "expected an identifier, found a blank", line, column))
        elif seen[value]:
            problems.append(Problem(table.file, f"duplicate id '{value}'", line, column))
        seen[value] += 1
    return set(seen)


def _check_cells(table: RawTable, specs: dict[str, FieldSpec], problems: list[Problem]) -> None:
    for name, spec in specs.items():
        if name in table.header:
            for value, line in zip(table.column(name), table.lines):
                msg = cell_problem(spec, value)
                if msg:
                    problems.append(Problem(table.file, msg, line, name))


def _check_labels(table: RawTable, columns, problems: list[Problem]) -> None:
    for name in columns:
        if name in table.header:
            for value, line in zip(table.column(name), table.lines):
                msg = label_problem(value)
                if msg:
                    problems.append(Problem(table.file, msg, line, name))


def _check_choice(table: RawTable, column: str, choices, problems: list[Problem]) -> None:
    for value, line in zip(table.column(column), table.lines):
        if value not in choices:
            problems.append(Problem(table.file, f"expected one of {', '.join(choices)}, found '{value}'" +
                                    did_you_mean(value, choices), line, column))


def _check_parents(table: RawTable, patient_ids: set[str], problems: list[Problem]) -> None:
    for value, line in zip(table.column("patient_id"), table.lines):
        if value and value not in patient_ids:
            problems.append(Problem(table.file, f"patient '{value}' is not in patients.csv", line, "patient_id"))


def _check_media(root: Path, table: RawTable, problems: list[Problem]) -> None:
    resolved_root = root.resolve()
    for col in (c for c in table.header if c.endswith(MEDIA_SUFFIX)):
        for value, line in zip(table.column(col), table.lines):
            for ref in filter(None, (v.strip() for v in value.split(";"))):
                path = (root / ref).resolve()
                if not path.is_relative_to(resolved_root):
                    problems.append(Problem(table.file, f"media path '{ref}' points outside the cohort folder",
                                            line, col))
                elif path.is_dir():  # a folder is a study of many files (a CT series per sub-folder)
                    if not any(p.is_file() for p in path.rglob("*")):
                        problems.append(Problem(table.file, f"media folder '{ref}' holds no files", line, col))
                elif not path.is_file():
                    problems.append(Problem(table.file, f"media file '{ref}' does not exist", line, col))


def _check_patients(t: RawTable, meta: CohortMeta, fields, problems) -> set[str]:
    allowed = set(PATIENT_COLUMNS) | set(OPTIONAL_PATIENT_LABELS) | set(fields)
    if not _check_header(t, PATIENT_COLUMNS, allowed, problems):
        return set(t.column("patient_id")) if "patient_id" in t.header else set()
    ids = _check_ids(t, "patient_id", problems)
    _check_choice(t, "centre", meta.centre_ids, problems)
    _check_labels(t, ("n1b",) + OPTIONAL_PATIENT_LABELS, problems)
    _check_cells(t, fields, problems)
    for side in (c for c in OPTIONAL_PATIENT_LABELS if c in t.header):  # a positive side implies N1b
        for n1b, lat, line in zip(t.column("n1b"), t.column(side), t.lines):
            if n1b == "0" and lat == "1":
                problems.append(Problem(t.file, f"impossible labels: n1b is 0 but {side} is 1", line, side))
    return ids


def _check_nodes(root: Path, t: RawTable, meta: CohortMeta, patient_ids, n1b_negative, problems) -> None:
    allowed = set(NODE_COLUMNS) | set(meta.node_fields)
    if not _check_header(t, NODE_COLUMNS, allowed, problems):
        return
    _check_ids(t, "node_id", problems)
    _check_parents(t, patient_ids, problems)
    _check_choice(t, "side", SIDES, problems)
    _check_choice(t, "level", LEVELS, problems)
    _check_labels(t, ("metastatic",), problems)
    _check_cells(t, dict(meta.node_fields), problems)
    _check_media(root, t, problems)
    for pid, level, met, line in zip(t.column("patient_id"), t.column("level"), t.column("metastatic"), t.lines):
        if met == "1" and level in LATERAL_LEVELS and pid in n1b_negative:
            problems.append(Problem(t.file, f"impossible labels: a metastatic level {level} node but the "
                                    f"patient's n1b is 0", line, "metastatic"))


def check_cohort(root: Path) -> Checked:
    """Read and check everything; never raises for bad content (only returns problems)."""
    root = Path(root)
    problems: list[Problem] = []
    if not root.is_dir():
        return Checked(None, {}, None, None, None, [Problem(str(root), "not a folder")])
    meta = read_meta(root, problems)
    fields: dict[str, FieldSpec] = {}
    if meta is not None:
        try:
            fields = resolve_fields(meta.clinical_fields)
        except ValueError as exc:
            problems.append(Problem("cohort.yaml", str(exc), column="clinical_fields"))
    patients = read_raw_table(root / "patients.csv", "patients.csv", problems)
    nodes = cytology = None
    if (root / "nodes.csv").exists():
        nodes = read_raw_table(root / "nodes.csv", "nodes.csv", problems)
    if (root / "cytology.csv").exists():
        cytology = read_raw_table(root / "cytology.csv", "cytology.csv", problems)
    if meta is None or patients is None:
        return Checked(meta, fields, patients, nodes, cytology, problems)
    ids = _check_patients(patients, meta, fields, problems)
    negative = set()
    if "n1b" in patients.header and "patient_id" in patients.header:
        negative = {p for p, y in zip(patients.column("patient_id"), patients.column("n1b")) if y == "0"}
    if nodes is not None:
        _check_nodes(root, nodes, meta, ids, negative, problems)
    if cytology is not None and _check_header(cytology, CYTOLOGY_COLUMNS,
                                              set(CYTOLOGY_COLUMNS) | set(CYTOLOGY_FIELDS), problems):
        _check_ids(cytology, "image_id", problems)
        _check_cells(cytology, CYTOLOGY_FIELDS, problems)
        _check_parents(cytology, ids, problems)
        _check_media(root, cytology, problems)
    return Checked(meta, fields, patients, nodes, cytology, problems)
