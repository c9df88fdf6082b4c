"""The in-memory cohort: metadata plus typed tables, the one object every model and command receives."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from .errors import LymphCastError
from .fields import FieldSpec
from .schema import CohortMeta


@dataclass(frozen=True)
class Cohort:
    """A validated cohort folder.

    `patients` has one row per patient (patient_id, centre, n1b as nullable Int64, lateral_left/right when
    recorded, typed clinical fields); `nodes` and `cytology` may be empty. `root` resolves media paths.
    """

    meta: CohortMeta
    fields: dict[str, FieldSpec]
    patients: pd.DataFrame
    nodes: pd.DataFrame = field(default_factory=pd.DataFrame)
    cytology: pd.DataFrame = field(default_factory=pd.DataFrame)
    root: Path | None = None

    @property
    def patient_ids(self) -> pd.Index:
        return pd.Index(self.patients["patient_id"])

    @property
    def clinical_columns(self) -> list[str]:
        return [name for name in self.fields if name in self.patients.columns]

    def labels(self) -> pd.Series:
        """Recorded N1b (nullable Int64) indexed by patient_id."""
        return self.patients.set_index("patient_id")["n1b"]

    def labelled(self) -> "Cohort":
        """Only the patients with a recorded N1b label (models train on these)."""
        return self.subset(self.patients.loc[self.patients["n1b"].notna(), "patient_id"])

    def subset(self, patient_ids) -> "Cohort":
        """The same cohort restricted to `patient_ids` (order of the original kept)."""
        keep = set(patient_ids)
        unknown = keep - set(self.patients["patient_id"])
        if unknown:
            raise LymphCastError(f"{len(unknown)} patient id(s) are not in cohort '{self.meta.name}'")
        pick = lambda df: df[df["patient_id"].isin(keep)].reset_index(drop=True) if len(df) else df  # noqa: E731
        return replace(self, patients=pick(self.patients), nodes=pick(self.nodes), cytology=pick(self.cytology))

    def in_centres(self, centres) -> "Cohort":
        centres = list(centres)
        unknown = set(centres) - set(self.meta.centre_ids)
        if unknown:
            raise LymphCastError(f"unknown centre(s) {', '.join(sorted(unknown))}; this cohort has "
                           f"{', '.join(self.meta.centre_ids)}")
        return self.subset(self.patients.loc[self.patients["centre"].isin(centres), "patient_id"])

    def media_path(self, ref: str) -> Path:
        if self.root is None:
            raise ValueError("this cohort was not read from a folder, so media paths cannot be resolved")
        return self.root / ref
