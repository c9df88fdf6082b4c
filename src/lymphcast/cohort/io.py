"""Read a cohort folder (validating it first) and write one atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import yaml

from .cohort import Cohort
from .errors import CohortError, LymphCastError
from .schema import CYTOLOGY_FIELDS, OPTIONAL_PATIENT_LABELS
from .tables import RawTable
from .validate import check_cohort
from .values import LABEL_SPEC, convert_column


def _frame(table: RawTable | None, specs: dict) -> pd.DataFrame:
    if table is None:
        return pd.DataFrame()
    # the columns are new objects already: no copy (pandas copies a dict of Series by default)
    return pd.DataFrame({name: convert_column(table.column(name), specs.get(name)) for name in table.header},
                        copy=False)


def read_cohort(root: str | Path) -> Cohort:
    """Validate and load `root`; raise CohortError listing every problem if it is not a valid cohort."""
    root = Path(root)
    checked = check_cohort(root)
    if checked.problems:
        raise CohortError(f"cohort '{root}' has {len(checked.problems)} problem(s)", checked.problems)
    labels = {name: LABEL_SPEC for name in ("n1b", *OPTIONAL_PATIENT_LABELS)}
    patients = _frame(checked.patients, {**checked.fields, **labels})
    nodes = _frame(checked.nodes, {**checked.meta.node_fields, "metastatic": LABEL_SPEC})
    cytology = _frame(checked.cytology, CYTOLOGY_FIELDS)
    for frame in (patients, nodes, cytology):
        for col in ("patient_id", "node_id", "image_id", "centre", "side", "level"):
            if col in frame:
                frame[col] = frame[col].astype(str)
    return Cohort(checked.meta, checked.fields, patients, nodes, cytology, root)


@contextmanager
def atomic_dir(target: str | Path, overwrite: bool = False):
    """Yield a temporary folder beside `target`; move it into place only if the block succeeds."""
    target = Path(target)
    if target.exists() and not overwrite and any(target.iterdir()):
        raise LymphCastError(f"'{target}' exists and is not empty; choose another output folder or remove it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)


@contextmanager
def atomic_file(target: str | Path):
    """Yield a temporary path beside `target`; it takes the target's name only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _to_csv(frame: pd.DataFrame, path: Path) -> None:
    # Nullable ints print as 0/1 and missing values as blank cells, matching the format.
    frame.to_csv(path, index=False, na_rep="", float_format="%.6g")


def write_meta(meta, folder: Path) -> None:
    data = meta.model_dump(mode="json", exclude_none=False)
    # A standard field's spec is written as null, so cohort.yaml stays short and readable.
    data["clinical_fields"] = {k: (None if v is None else meta.clinical_fields[k].model_dump(mode="json",
                                                                                            exclude_none=True))
                               for k, v in meta.clinical_fields.items()}
    data["node_fields"] = {k: v.model_dump(mode="json", exclude_none=True) for k, v in meta.node_fields.items()}
    text = yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False, allow_unicode=True)
    (folder / "cohort.yaml").write_text(text, encoding="utf-8")


def write_cohort(cohort: Cohort, target: str | Path, *, overwrite: bool = False) -> Path:
    """Write tables and metadata (and copy media when the cohort came from a folder) atomically."""
    target = Path(target)
    with atomic_dir(target, overwrite=overwrite) as tmp:
        write_meta(cohort.meta, tmp)
        _to_csv(cohort.patients, tmp / "patients.csv")
        if len(cohort.nodes.columns):
            _to_csv(cohort.nodes, tmp / "nodes.csv")
        if len(cohort.cytology.columns):
            _to_csv(cohort.cytology, tmp / "cytology.csv")
        if cohort.root is not None and (cohort.root / "media").is_dir():
            shutil.copytree(cohort.root / "media", tmp / "media")
    return target
