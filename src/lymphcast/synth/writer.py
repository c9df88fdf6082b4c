"""Append rows to the cohort's CSV files chunk by chunk, so memory stays bounded by one chunk."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


class TableWriter:
    """Writes each named CSV under `folder`; the first chunk fixes the header, later chunks must match it."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._headers: dict[str, list[str]] = {}

    def append(self, name: str, frame: pd.DataFrame) -> None:
        first = name not in self._headers
        if first:
            self._headers[name] = list(frame.columns)
            (self.folder / name).parent.mkdir(parents=True, exist_ok=True)
        elif list(frame.columns) != self._headers[name]:
            raise RuntimeError(f"chunk columns of {name} changed: {list(frame.columns)} vs {self._headers[name]}")
        # Same conventions as lymphcast.cohort.io: blanks for missing values, 6 significant digits.
        frame.to_csv(self.folder / name, mode="w" if first else "a", header=first, index=False, na_rep="",
                     float_format="%.6g")
