"""Reader-study input: the CSV of reader calls, read and checked line by line.

Format: a UTF-8 CSV, header on line 1, one row per reader x case x aided:

    reader      required  name or id of the reader (any non-empty text)
    patient_id  required  the patient, spelled as in the cohort
    side        optional  left/right: the row is a call on that neck side (side-level study). Without the
                          column every row is a patient-level call (e.g. "lateral N1b suspected"). When the
                          column is present every row needs a side: a file is one level or the other.
    call        required  1 = suspicious (the reader calls the case positive), 0 = not
                          (yes/no and true/false are accepted too)
    aided       optional  1 = read with the model's output shown, 0 = without; an absent column or an empty
                          cell means 0

Other columns (notes, confidence) are ignored. A reader may appear unaided only, aided only or both;
the same reader, case and aided value may appear only once.

    reader,patient_id,side,call,aided
    R1,P001,left,1,0
    R1,P001,left,1,1
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..cohort import LymphCastError, Problem
from ..cohort.schema import SIDES
from ..cohort.tables import read_raw_table

REQUIRED = ("reader", "patient_id", "call")
_CALLS = {"1": 1, "0": 0, "yes": 1, "no": 0, "true": 1, "false": 0}
_AIDED = {"1": 1, "0": 0, "yes": 1, "no": 0, "true": 1, "false": 0, "": 0}


class ReaderStudyError(LymphCastError):
    """A reader-calls file or reader-study input that cannot be used as given."""


def read_reader_calls(path) -> pd.DataFrame:
    """Read and check a reader-calls CSV (see the module docstring).

    Returns columns reader, patient_id (str), side (only for side-level files), call and aided (int 0/1),
    in file order. Raises ReaderStudyError listing every problem with its line and column.
    """
    path = Path(path)
    label = str(path)
    problems: list[Problem] = []
    table = read_raw_table(path, label, problems)
    if table is None:
        raise ReaderStudyError(f"cannot read reader calls from {label}", problems)
    missing = [name for name in REQUIRED if name not in table.header]
    for name in missing:
        problems.append(Problem(label, f"missing required column '{name}' (expected columns "
                                "reader, patient_id, call and optionally side, aided)", line=1, column=name))
    if missing:  # other problems (ragged rows) are reported with the row checks below
        raise ReaderStudyError(f"{label} is not a valid reader-calls file", problems)

    has_side = "side" in table.header
    has_aided = "aided" in table.header
    col = {name: table.header.index(name) for name in (*REQUIRED, "side", "aided") if name in table.header}
    records, seen = [], {}
    for row, line in zip(table.rows, table.lines):
        before = len(problems)

        def bad(column: str, message: str) -> None:
            problems.append(Problem(label, message, line=line, column=column))

        reader, patient = row[col["reader"]], row[col["patient_id"]]
        if not reader:
            bad("reader", "reader is empty; expected the reader's name or id")
        if not patient:
            bad("patient_id", "patient_id is empty")
        raw_call = row[col["call"]]
        call = _CALLS.get(raw_call.lower())
        if call is None:
            bad("call", f"call {raw_call!r} is not valid; expected 1 (suspicious) or 0 (not suspicious)")
        side = None
        if has_side:
            side = row[col["side"]].lower()
            if side not in SIDES:
                bad("side", f"side {row[col['side']]!r} is not valid; expected one of {', '.join(SIDES)} "
                            "(a file with a side column holds side-level calls only)")
        aided = 0
        if has_aided:
            aided = _AIDED.get(row[col["aided"]].lower())
            if aided is None:
                bad("aided", f"aided {row[col['aided']]!r} is not valid; expected 1 (read with the model's "
                             "output) or 0 (without), or empty for 0")
        if len(problems) > before:
            continue  # a bad row is reported, not also checked for duplicates
        key = (reader, patient, side, aided)
        if key in seen:
            case = f"patient {patient}" + (f" side {side}" if has_side else "")
            bad("patient_id", f"reader {reader} already called {case} "
                              f"({'aided' if aided else 'unaided'}) on line {seen[key]}; expected one call "
                              "per reader, case and aided")
            continue
        seen[key] = line
        records.append(key + (call,))
    if problems:
        raise ReaderStudyError(f"{label} is not a valid reader-calls file", problems)
    if not records:
        raise ReaderStudyError(f"{label} has no reader calls",
                               [Problem(label, "no rows after the header; expected one row per reader x case")])
    frame = pd.DataFrame(records, columns=["reader", "patient_id", "side", "aided", "call"])
    frame = frame[["reader", "patient_id", "side", "call", "aided"]]
    if not has_side:
        frame = frame.drop(columns="side")
    frame.attrs["source"] = label
    return frame
