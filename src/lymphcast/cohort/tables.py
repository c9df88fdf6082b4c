"""Raw reading of a cohort CSV: bytes → header + rows of strings, with line numbers for error messages.

The csv module is used rather than pandas because validation must point at the exact line of each problem,
and pandas loses line numbers (quoted newlines, skipped rows).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from .errors import Problem


@dataclass
class RawTable:
    file: str
    header: list[str]
    rows: list[list[str]]
    lines: list[int]  # 1-based line of each row in the file

    def column(self, name: str) -> list[str]:
        i = self.header.index(name)
        return [r[i] for r in self.rows]


def read_raw_table(path: Path, label: str, problems: list[Problem]) -> RawTable | None:
    """Read `path`; append problems (missing, empty, not UTF-8, ragged rows) and return None if unusable."""
    if not path.is_file():
        problems.append(Problem(label, "file not found"))
        return None
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problems.append(Problem(label, f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
                                line=line))
        return None
    if not text.strip():
        problems.append(Problem(label, "file is empty; expected a header line and one row per record"))
        return None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
        rows, lines = [], []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue  # blank lines are harmless
            if len(row) != len(header):
                problems.append(Problem(label, f"has {len(row)} fields but the header has {len(header)}",
                                        line=reader.line_num))
                continue
            rows.append([cell.strip() for cell in row])
            lines.append(reader.line_num)
    except csv.Error as exc:
        problems.append(Problem(label, f"is not valid CSV: {exc}", line=reader.line_num))
        return None
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        problems.append(Problem(label, f"header repeats column(s) {', '.join(dupes)}", line=1))
        return None
    if "" in header:
        problems.append(Problem(label, "header has an empty column name", line=1))
        return None
    return RawTable(label, header, rows, lines)
