"""Import a real clinical table (CSV) into a cohort folder, following a mapping file (mapping.py).

Every problem, in the mapping and in the table, is collected and reported at once; the folder is written
only when there is none, atomically, and checked by the cohort validator before it is moved into place.
"""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

from .. import __version__
from .errors import CohortError, LymphCastError, Problem
from .fields import STANDARD_FIELDS, FieldSpec
from .io import atomic_dir, write_meta
from .mapping import CENTRE_ID, Mapping, ValueMapped, load_mapping
from .schema import Centre, CohortMeta
from .tables import RawTable, read_raw_table
from .validate import check_cohort
from .values import cell_problem, did_you_mean, label_problem


def _text(value) -> str:
    """A value-map target as it is written to the cohort: null → blank, true/false → 1/0."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    return str(value)


def _suggest(column: str, header: list[str]) -> str:
    """A 'did you mean' that first tries the same name in other letter case (source headers vary in case)."""
    same = [h for h in header if h.lower() == column.lower()]
    return f" (did you mean '{same[0]}'?)" if same else did_you_mean(column, header)


class _Importer:
    def __init__(self, mapping: Mapping, mapping_file: str, table: RawTable):
        self.m, self.mfile, self.t = mapping, mapping_file, table
        self.problems: list[Problem] = []

    def has_column(self, column: str, key: str) -> bool:
        if column in self.t.header:
            return True
        self.problems.append(Problem(self.mfile, f"column '{column}' is not in {self.t.file}" +
                                     _suggest(column, self.t.header), column=key))
        return False

    def specs(self) -> dict[str, FieldSpec]:
        """The spec of each usable field; a field mapping a leaking column or the label is refused."""
        banned = {c: "is listed under 'leaking'" for c in self.m.leaking}
        banned[self.m.label.column] = "is the label"
        for i, column in enumerate(self.m.leaking):
            self.has_column(column, f"leaking.{i}")
        specs = {}
        for name, fmap in self.m.fields.items():
            key = f"fields.{name}"
            if fmap.column in banned:
                self.problems.append(Problem(self.mfile, f"refused: source column '{fmap.column}' {banned[fmap.column]}"
                                             " and must never be a predictor", column=f"{key}.column"))
                continue
            spec = fmap.spec or STANDARD_FIELDS.get(name)
            if spec is None:
                self.problems.append(Problem(self.mfile, f"'{name}' is not a standard field, so it needs a "
                                             "'spec' (type: number|binary|category)", column=f"{key}.spec"))
                continue
            for source, target in (fmap.values or {}).items():
                msg = cell_problem(spec, _text(target))
                if msg:
                    self.problems.append(Problem(self.mfile, msg, column=f"{key}.values.{source}"))
            specs[name] = spec
        return specs

    def cells(self, item: ValueMapped, key: str, rows, check) -> list[str] | None:
        """One source column through its value map, each result checked by `check` (text → message)."""
        if not self.has_column(item.column, f"{key}.column"):
            return None
        i = self.t.header.index(item.column)
        out = []
        for row, line in rows:
            raw = row[i]
            if item.values is not None and raw in item.values:
                out.append(_text(item.values[raw]))  # map targets were checked once, in specs()
                continue
            if raw in self.m.missing:
                out.append("")
                continue
            if item.values is not None:
                self.problems.append(Problem(self.t.file, f"value '{raw}' is not covered by the value map "
                                             f"'{key}.values' of {self.mfile}" + did_you_mean(raw, item.values),
                                             line, item.column))
                continue
            msg = check(raw)
            if msg:
                self.problems.append(Problem(self.t.file, f"{msg} (for '{key}')", line, item.column))
            out.append(raw)
        return out

    def kept_rows(self) -> list[tuple[list[str], int, int]]:
        """(row, line, 1-based data row number) of the rows every filter keeps."""
        rows = [(row, line, n) for n, (row, line) in enumerate(zip(self.t.rows, self.t.lines), start=1)]
        for k, rule in enumerate(self.m.filters):
            if self.has_column(rule.column, f"filters.{k}.column"):
                i = self.t.header.index(rule.column)
                rows = [r for r in rows if rule.keeps(r[0][i])]
        return rows

    def patient_ids(self, rows) -> list[str]:
        pid = self.m.patient_id
        if pid.prefix is not None:
            # Numbered by source row, so an id points back to its row whatever the filters keep.
            return [f"{pid.prefix}{n:0{pid.digits}d}" for _, _, n in rows]
        seen: set[str] = set()
        ids = self.cells(ValueMapped(column=pid.column), "patient_id", [(r, line) for r, line, _ in rows],
                         lambda v: None) or []
        for value, (_, line, _) in zip(ids, rows):
            if value == "" or value in seen:
                self.problems.append(Problem(self.t.file, "blank patient id" if value == "" else
                                             f"duplicate patient id '{value}'", line, pid.column))
            seen.add(value)
        return ids

    def centres(self, rows) -> list[str]:
        c = self.m.centre
        if c.id is not None:
            return [c.id] * len(rows)
        return self.cells(c, "centre", [(r, line) for r, line, _ in rows], _centre_problem) or []


def _centre_problem(value: str) -> str | None:
    if re.fullmatch(CENTRE_ID, value):
        return None
    return f"expected a centre id (letters, digits, _ . -), found '{value}'"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def import_table(csv_path: str | Path, mapping_path: str | Path, out_dir: str | Path, *,
                 overwrite: bool = False) -> Path:
    """Write the cohort folder `out_dir` (cohort.yaml + patients.csv) from a source CSV and a mapping YAML."""
    csv_path, mapping_path, out_dir = Path(csv_path), Path(mapping_path), Path(out_dir)
    mapping = load_mapping(mapping_path)
    problems: list[Problem] = []
    table = read_raw_table(csv_path, csv_path.name, problems)
    if table is None:
        raise LymphCastError(f"cannot read source table '{csv_path}'", problems)
    imp = _Importer(mapping, mapping_path.name, table)
    specs = imp.specs()
    rows = imp.kept_rows()
    pairs = [(r, line) for r, line, _ in rows]
    columns = {"patient_id": imp.patient_ids(rows), "centre": imp.centres(rows),
               "n1b": imp.cells(mapping.label, "label", pairs, label_problem)}
    for name, spec in specs.items():  # a refused field was reported once, its values are not read
        columns[name] = imp.cells(mapping.fields[name], f"fields.{name}", pairs, lambda v, s=spec: cell_problem(s, v))
    if imp.problems or not rows:
        raise LymphCastError(f"cannot import '{csv_path}' with mapping '{mapping_path}'" +
                             ("" if imp.problems else ": the filters keep no row"), imp.problems)

    centre_ids = list(dict.fromkeys(columns["centre"]))
    meta = CohortMeta(
        name=mapping.name, description=mapping.description,
        centres=[Centre(id=c, name=mapping.centre.name if mapping.centre.id else "") for c in centre_ids],
        clinical_fields={n: (None if mapping.fields[n].spec is None else s) for n, s in specs.items()},
        provenance={"imported_from": csv_path.name, "source_sha256": _sha256(csv_path),
                    "mapping": mapping_path.name, "mapping_sha256": _sha256(mapping_path),
                    "rows_read": len(table.rows), "rows_kept": len(rows),
                    "duplicate_rows_kept": len(rows) - len({tuple(r) for r, _, _ in rows}),
                    "lymphcast_version": __version__})
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        write_meta(meta, tmp)
        with open(tmp / "patients.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(list(columns))
            writer.writerows(zip(*columns.values()))
        checked = check_cohort(tmp)
        if checked.problems:  # a bug in this importer, not in the user's input; never leave such a folder
            raise CohortError("the imported cohort does not pass validation", checked.problems)
    return out_dir

