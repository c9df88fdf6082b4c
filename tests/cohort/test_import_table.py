"""import_table: source CSV + mapping YAML → a cohort folder that read_cohort accepts, or every problem at once."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from lymphcast.cohort import LymphCastError, read_cohort
from lymphcast.cohort.import_table import import_table

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "uci_dtc"

SOURCE = """\
Record,Site,Age,Gender,Neck,Stage,N,Histology
r1,Hosp A,34,F,No,I,N0,PTC
r2,Hosp B,51,M,Yes,II,N1b,PTC
r3,Hosp A,45,F,No,I,N1a,FTC
r4,Hosp B,NA,F,Yes,I,N1b,PTC
r5,Hosp A,29,M,No,I,N0,PTC
"""

MAPPING = """\
name: mini
centre: {id: hospital}
patient_id: {prefix: "mini-", digits: 3}
missing: ["", "NA"]
filters:
  - {column: Histology, in: [PTC]}
label: {column: N, values: {N1b: 1, N1a: 0, N0: 0}}
leaking: [Stage]
fields:
  age: {column: Age}
  sex: {column: Gender}
  palpable_adenopathy: {column: Neck, values: {No: 0, Yes: 1}}
"""


def write(folder: Path, source: str = SOURCE, mapping: str = MAPPING) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "source.csv").write_text(source, encoding="utf-8")
    (folder / "mapping.yaml").write_text(mapping, encoding="utf-8")
    return folder / "source.csv", folder / "mapping.yaml"


def problems_of(err) -> list[tuple[str, int | None, str | None]]:
    return [(p.file, p.line, p.column) for p in err.value.problems]


def test_round_trip_passes_read_cohort(tmp_path):
    out = import_table(*write(tmp_path), tmp_path / "cohort")
    cohort = read_cohort(out)
    p = cohort.patients
    assert list(p["patient_id"]) == ["mini-001", "mini-002", "mini-004", "mini-005"]  # row 3 filtered out
    assert p["n1b"].tolist() == [0, 1, 1, 0]
    assert p["palpable_adenopathy"].tolist() == [0, 1, 1, 0]  # unquoted YAML No/Yes stay text
    assert p["age"].isna().tolist() == [False, False, True, False]  # 'NA' means not recorded
    assert cohort.meta.centre_ids == ("hospital",)
    assert cohort.meta.provenance["rows_read"] == 5 and cohort.meta.provenance["rows_kept"] == 4


def test_shipped_uci_example_imports_and_reads_back(tmp_path):
    out = import_table(EXAMPLE / "uci_dtc_dev.csv", EXAMPLE / "mapping.yaml", tmp_path / "uci")
    cohort = read_cohort(out)
    with open(EXAMPLE / "uci_dtc_dev.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    ptc = [r for r in rows if r["Pathology"] in ("Papillary", "Micropapillary")]
    assert len(cohort.patients) == len(ptc)
    assert int(cohort.patients["n1b"].sum()) == sum(r["N"] == "N1b" for r in ptc)
    ids = cohort.patients["patient_id"]
    assert ids.is_unique and all(re.fullmatch(r"uci-\d{4}", i) for i in ids)
    forbidden = {"Risk", "Stage", "Response", "Recurred", "M", "N"}
    assert not forbidden & {f.lower() for f in cohort.fields}
    assert set(cohort.patients["adenopathy_site"].dropna()) <= {"none", "right", "left", "bilateral",
                                                                 "extensive", "posterior"}


def test_generated_ids_follow_source_rows_and_are_unique(tmp_path):
    many = "Record,Site,Age,Gender,Neck,Stage,N,Histology\n" + "".join(
        f"r{i},Hosp A,40,F,No,I,N0,{'FTC' if i % 3 == 0 else 'PTC'}\n" for i in range(1, 1201))
    cohort = read_cohort(import_table(*write(tmp_path, source=many), tmp_path / "cohort"))
    ids = list(cohort.patients["patient_id"])
    assert len(ids) == len(set(ids)) == 800
    assert ids[:3] == ["mini-001", "mini-002", "mini-004"] and ids[-1] == "mini-1199"  # widens past 999


def test_a_leaking_column_mapped_to_a_field_is_refused(tmp_path):
    mapping = MAPPING + "  stage_group: {column: Stage, spec: {type: category, values: [I, II]}}\n" \
                        "  outcome: {column: N, spec: {type: category, values: [N0, N1a, N1b]}}\n"
    with pytest.raises(LymphCastError, match="cannot import") as err:
        import_table(*write(tmp_path, mapping=mapping), tmp_path / "cohort")
    text = str(err.value)
    assert "fields.stage_group.column" in text and "'leaking'" in text
    assert "fields.outcome.column" in text and "is the label" in text
    assert not (tmp_path / "cohort").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".cohort")]  # no partial folder left


def test_unmapped_and_invalid_values_are_reported_together_with_lines(tmp_path):
    source = SOURCE.replace("r2,Hosp B,51,M,Yes", "r2,Hosp B,51,M,Maybe").replace("r5,Hosp A,29,M,No,I,N0",
                                                                                   "r5,Hosp A,two,X,No,I,N2")
    with pytest.raises(LymphCastError) as err:
        import_table(*write(tmp_path, source=source), tmp_path / "cohort")
    found = problems_of(err)
    assert ("source.csv", 3, "Neck") in found  # header is line 1, so r2 is line 3
    assert ("source.csv", 6, "N") in found and ("source.csv", 6, "Age") in found
    assert ("source.csv", 6, "Gender") in found
    assert "value 'Maybe' is not covered by the value map 'fields.palpable_adenopathy.values'" in str(err.value)
    assert not (tmp_path / "cohort").exists()


def test_mapping_mistakes_name_the_key(tmp_path):
    mapping = MAPPING.replace("centre: {id: hospital}", "centre: {id: hospital, column: Site}") \
                     .replace("label: {column: N,", "label: {colum: N,") \
                     .replace("{column: Histology, in: [PTC]}", "{column: Histology, in: [PTC], not_in: [FTC]}")
    with pytest.raises(LymphCastError, match="mapping") as err:
        import_table(*write(tmp_path, mapping=mapping), tmp_path / "cohort")
    keys = {p.column for p in err.value.problems}
    assert "centre" in keys and "filters.0" in keys and "label.colum" in keys


def test_mapping_columns_and_fields_are_checked_against_the_table(tmp_path):
    mapping = MAPPING.replace("{column: Age}", "{column: age}") + \
        "  t_stage: {column: Histology}\n" \
        "  hashimoto: {column: Neck, values: {No: 0, Yes: 2}}\n"
    with pytest.raises(LymphCastError) as err:
        import_table(*write(tmp_path, mapping=mapping), tmp_path / "cohort")
    text = str(err.value)
    assert "column 'age' is not in source.csv (did you mean 'Age'?)" in text
    assert "fields.t_stage.spec" in text  # not a standard field, so it needs a spec
    assert "fields.hashimoto.values.Yes" in text  # 2 is not a valid binary value


def test_centres_from_a_column_and_ids_from_a_column(tmp_path):
    mapping = MAPPING.replace("centre: {id: hospital}", 'centre: {column: Site, values: {"Hosp A": a, "Hosp B": b}}') \
                     .replace('patient_id: {prefix: "mini-", digits: 3}', "patient_id: {column: Record}")
    cohort = read_cohort(import_table(*write(tmp_path, mapping=mapping), tmp_path / "cohort"))
    assert cohort.meta.centre_ids == ("a", "b")
    assert list(cohort.patients["patient_id"]) == ["r1", "r2", "r4", "r5"]


def test_duplicate_source_ids_are_reported(tmp_path):
    mapping = MAPPING.replace('patient_id: {prefix: "mini-", digits: 3}', "patient_id: {column: Record}")
    with pytest.raises(LymphCastError, match="cannot import") as err:
        import_table(*write(tmp_path, source=SOURCE.replace("r4,", "r2,"), mapping=mapping), tmp_path / "c")
    assert ("source.csv", 5, "Record") in problems_of(err)


@pytest.mark.parametrize("content, message", [(b"", "empty"), (b"Age,N\n34,N0\n\xe9t\xe9,N1b\n", "not UTF-8"),
                                              (None, "not found")])
def test_unreadable_sources_give_problems(tmp_path, content, message):
    source, mapping = write(tmp_path)
    if content is None:
        source.unlink()
    else:
        source.write_bytes(content)
    with pytest.raises(LymphCastError) as err:
        import_table(source, mapping, tmp_path / "cohort")
    assert message in str(err.value) and err.value.problems[0].file == "source.csv"
    if message == "not UTF-8":
        assert err.value.problems[0].line == 3


def test_existing_output_needs_overwrite(tmp_path):
    source, mapping = write(tmp_path)
    out = import_table(source, mapping, tmp_path / "cohort")
    with pytest.raises(LymphCastError, match="not empty"):
        import_table(source, mapping, out)
    assert import_table(source, mapping, out, overwrite=True) == out
    assert read_cohort(out).patients.shape[0] == 4
