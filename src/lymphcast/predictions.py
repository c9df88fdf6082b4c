"""Prediction files: `patient_id,probability` CSV plus a `.provenance.json` sidecar, written atomically and
read back with line-precise errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from .cohort import LymphCastError, Problem
from .cohort.io import atomic_file
from .cohort.tables import read_raw_table


def sidecar_path(csv_path: Path) -> Path:
    return csv_path.with_suffix(".provenance.json")


def level_paths(csv_path: str | Path) -> dict[str, Path]:
    """Where the side-, level- and node-level tables of a prediction file go: OUT_sides.csv, OUT_levels.csv (fused
    models: per side and level II-V), OUT_nodes.csv, and OUT_modalities.csv (fused models: what each modality
    said about each patient)."""
    csv_path = Path(csv_path)
    return {level: csv_path.with_name(f"{csv_path.stem}_{level}.csv")
            for level in ("sides", "levels", "nodes", "modalities")}


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    path = Path(path)
    with atomic_file(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6f")
    return path


def write_predictions(frame: pd.DataFrame, path: str | Path, provenance: dict) -> Path:
    path = Path(path)
    with atomic_file(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6f")
    with atomic_file(sidecar_path(path)) as tmp:
        tmp.write_text(json.dumps(provenance, indent=2, sort_keys=True), encoding="utf-8")
    return path


def read_predictions(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """Read a patient-level prediction file; every malformed row is reported at once. A blank probability is
    kept as NaN: no prediction for that patient (the report counts such patients as excluded)."""
    path = Path(path)
    problems: list[Problem] = []
    table = read_raw_table(path, str(path), problems)
    if table is not None:
        for col in ("patient_id", "probability"):
            if col not in table.header:
                problems.append(Problem(str(path), f"required column '{col}' is missing", line=1))
    if problems:
        raise LymphCastError(f"cannot read predictions '{path}'", problems)
    seen = set()
    for pid, prob, line in zip(table.column("patient_id"), table.column("probability"), table.lines):
        if not pid:
            problems.append(Problem(str(path), "expected a patient id, found a blank", line, "patient_id"))
        elif pid in seen:
            problems.append(Problem(str(path), f"duplicate patient '{pid}'", line, "patient_id"))
        seen.add(pid)
        if not prob.strip():  # a blank: the model had nothing to go on for this patient (e.g. no clip)
            continue
        try:
            value = float(prob)
            ok = math.isfinite(value) and 0.0 <= value <= 1.0
        except ValueError:
            ok = False
        if not ok:
            problems.append(Problem(str(path), f"expected a probability between 0 and 1 or a blank, found '{prob}'",
                                    line, "probability"))
    if problems:
        raise LymphCastError(f"cannot read predictions '{path}'", problems)
    frame = pd.DataFrame({"patient_id": table.column("patient_id"),
                          "probability": pd.to_numeric(pd.Series(table.column("probability")))})
    side = sidecar_path(path)
    provenance = json.loads(side.read_text(encoding="utf-8")) if side.is_file() else {}
    return frame, provenance
