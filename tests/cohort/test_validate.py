"""Every kind of malformed cohort is reported with file, line, column and what was expected."""

from __future__ import annotations

import pytest

from lymphcast.cohort import CohortError, check_cohort, read_cohort

from .conftest import NODES, PATIENTS, write_tiny


def problems(root):
    return [str(p) for p in check_cohort(root).problems]


def only(root, *fragments):
    found = problems(root)
    assert found, "expected a problem"
    for fragment in fragments:
        assert any(fragment in p for p in found), (fragment, found)
    return found


def test_valid_cohort_has_no_problems(tiny):
    assert problems(tiny) == []
    cohort = read_cohort(tiny)
    assert list(cohort.patients["patient_id"]) == ["P1", "P2", "P3", "P4"]
    assert cohort.patients["n1b"].isna().sum() == 1
    assert cohort.patients["age"].dtype == "float64"


def test_duplicate_patient_id(tmp_path):
    root = write_tiny(tmp_path, **{"patients.csv": PATIENTS + "P2,A,0,40,F,5,0,T1a\n"})
    only(root, "patients.csv, line 6, column 'patient_id': duplicate id 'P2'")


def test_duplicate_node_id(tmp_path):
    root = write_tiny(tmp_path, **{"nodes.csv": NODES + "N1,P2,left,II,0,\n"})
    only(root, "nodes.csv, line 5, column 'node_id': duplicate id 'N1'")


def test_node_of_unknown_patient(tmp_path):
    root = write_tiny(tmp_path, **{"nodes.csv": NODES + "N9,P99,left,II,0,\n"})
    only(root, "nodes.csv, line 5, column 'patient_id': patient 'P99' is not in patients.csv")


def test_missing_media_file(tmp_path):
    root = write_tiny(tmp_path, **{"nodes.csv": NODES + "N9,P2,left,II,0,media/absent.png\n"})
    only(root, "line 5, column 'us_image_file': media file 'media/absent.png' does not exist")


def test_media_path_cannot_escape_the_folder(tmp_path):
    root = write_tiny(tmp_path / "c", **{"nodes.csv": NODES + "N9,P2,left,II,0,../../etc/passwd\n"})
    only(root, "points outside the cohort folder")


def test_label_outside_0_1_blank(tmp_path):
    root = write_tiny(tmp_path, **{"patients.csv": PATIENTS.replace("P2,A,0,", "P2,A,yes,")})
    only(root, "patients.csv, line 3, column 'n1b': expected a label 0, 1 or blank, found 'yes'")


def test_impossible_values(tmp_path):
    root = write_tiny(tmp_path, **{"patients.csv": PATIENTS.replace("P2,A,0,51", "P2,A,0,-4")})
    only(root, "line 3, column 'age': value -4 is outside the possible range 0–120 years")


def test_impossible_label_combination(tmp_path):
    root = write_tiny(tmp_path, **{"nodes.csv": NODES.replace("N3,P2,left,II,0", "N3,P2,left,II,1")})
    only(root, "impossible labels: a metastatic level II node but the patient's n1b is 0")


def test_unknown_centre(tmp_path):
    root = write_tiny(tmp_path, **{"patients.csv": PATIENTS.replace("P4,B,", "P4,Z,")})
    only(root, "line 5, column 'centre': expected one of A, B, found 'Z'")


def test_wrong_types(tmp_path):
    text = PATIENTS.replace("P1,A,1,34,F,14,1,T2", "P1,A,1,thirty,female,14,2,T9")
    found = only(write_tiny(tmp_path, **{"patients.csv": text}),
                 "column 'age': expected a number in years, found 'thirty'",
                 "column 'sex': expected one of F, M or blank, found 'female'",
                 "column 'palpable_adenopathy': expected 0, 1 or blank, found '2'",
                 "column 't_stage': expected one of")
    assert len(found) == 4  # all problems at once, not only the first


def test_bad_side_and_level(tmp_path):
    root = write_tiny(tmp_path, **{"nodes.csv": NODES.replace("N2,P1,right,III", "N2,P1,rigth,VII")})
    only(root, "expected one of left, right, found 'rigth' (did you mean 'right'?)",
         "column 'level': expected one of II, III, IV, V, VI, found 'VII'")


def test_missing_required_column(tmp_path):
    text = "\n".join(",".join(r.split(",")[:2] + r.split(",")[3:]) for r in PATIENTS.splitlines()) + "\n"
    root = write_tiny(tmp_path, **{"patients.csv": text})
    only(root, "patients.csv, line 1: required column 'n1b' is missing")


def test_undeclared_column_suggests_a_name(tmp_path):
    root = write_tiny(tmp_path, **{"patients.csv": PATIENTS.replace("tumour_size_mm", "tumor_size_mm")})
    only(root, "column 'tumor_size_mm' is not part of the format", "did you mean 'tumour_size_mm'")


def test_empty_file(tmp_path):
    root = write_tiny(tmp_path, **{"patients.csv": ""})
    only(root, "patients.csv: file is empty")


def test_not_utf8(tmp_path):
    root = write_tiny(tmp_path)
    (root / "patients.csv").write_bytes(PATIENTS.replace("P3", "Pé").encode("latin-1"))
    only(root, "patients.csv, line 4: not UTF-8 text")


def test_missing_cohort_yaml_and_bad_yaml(tmp_path):
    root = write_tiny(tmp_path / "a", **{"cohort.yaml": None})
    only(root, "cohort.yaml: file not found")
    root = write_tiny(tmp_path / "b", **{"cohort.yaml": "name: x\ncentres: [\n"})
    only(root, "cohort.yaml")
    root = write_tiny(tmp_path / "c", **{"cohort.yaml": "name: x\nschema_version: 7\ncentres: [{id: A}]\n"})
    only(root, "reads schema_version 1, not 7")


def test_ragged_row(tmp_path):
    root = write_tiny(tmp_path, **{"patients.csv": PATIENTS + "P5,A,0\n"})
    only(root, "patients.csv, line 6: has 3 fields but the header has 8")


def test_read_cohort_raises_with_all_problems(tmp_path):
    root = write_tiny(tmp_path, **{"patients.csv": PATIENTS.replace("P2,A,0,51", "P2,Q,7,51")})
    with pytest.raises(CohortError) as info:
        read_cohort(root)
    assert len(info.value.problems) == 2
    assert "line 3" in str(info.value)
