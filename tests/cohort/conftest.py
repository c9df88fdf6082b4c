"""A small hand-written cohort folder that each test then breaks in one way."""

from __future__ import annotations

from pathlib import Path

import pytest

COHORT_YAML = """\
name: tiny
schema_version: 1
centres:
  - id: A
  - id: B
clinical_fields:
  age: null
  sex: null
  tumour_size_mm: null
  palpable_adenopathy: null
  t_stage: {type: category, values: [T1a, T1b, T2, T3a, T3b, T4a]}
"""

PATIENTS = """\
patient_id,centre,n1b,age,sex,tumour_size_mm,palpable_adenopathy,t_stage
P1,A,1,34,F,14,1,T2
P2,A,0,51,M,6.5,0,T1a
P3,B,,45,F,,0,T1b
P4,B,0,67,F,9,,T1a
"""

NODES = """\
node_id,patient_id,side,level,metastatic,us_image_file
N1,P1,left,IV,1,media/n1.png
N2,P1,right,III,0,
N3,P2,left,II,0,media/n3.png
"""

CYTOLOGY = """\
image_id,patient_id,image_file
C1,P1,media/c1.png
"""


def write_tiny(root: Path, **override: str) -> Path:
    files = {"cohort.yaml": COHORT_YAML, "patients.csv": PATIENTS, "nodes.csv": NODES, "cytology.csv": CYTOLOGY}
    files.update(override)
    (root / "media").mkdir(parents=True, exist_ok=True)
    for name in ("n1.png", "n3.png", "c1.png"):
        (root / "media" / name).write_bytes(b"\x89PNG fake")
    for name, text in files.items():
        if text is not None:
            (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_tiny(tmp_path / "tiny")
