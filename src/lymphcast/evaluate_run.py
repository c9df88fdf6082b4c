"""Evaluate a prediction file against a cohort's recorded labels: the glue between files and the report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .cohort import Cohort, LymphCastError
from .modalities.registry import oracle_column
from .predictions import read_predictions
from .provenance import file_sha256

MISSING_HANDLING = ("No patient is dropped for a missing predictor: the clinical model imputes the training "
                    "median (numbers) or most frequent value (binary, category) and adds a missing-value "
                    "indicator wherever training data had missing values.")

SUBGROUPS = {  # report subgroups from CLINICAL_FACTS.md: name → rule on the patients table
    "sex": lambda p: p["sex"],
    "age_lt_55": lambda p: (p["age"] < 55).where(p["age"].notna()).map({True: "yes", False: "no"}),
    "tumour_le_10mm": lambda p: (p["tumour_size_mm"] <= 10).where(p["tumour_size_mm"].notna())
    .map({True: "yes", False: "no"}),
    "hashimoto": lambda p: p["hashimoto"].map({1: "yes", 0: "no"}),
    "no_palpable_adenopathy": lambda p: p["palpable_adenopathy"].map({1: "no", 0: "yes"}),
}


def evaluation_frame(predictions: pd.DataFrame, cohort: Cohort,
                     modalities) -> tuple[pd.DataFrame, list[str], str | None]:
    """Join predictions with recorded labels, centres, subgroups and (synthetic only) the oracle risk."""
    unknown = set(predictions["patient_id"]) - set(cohort.patients["patient_id"])
    if unknown:
        raise LymphCastError(f"{len(unknown)} patient(s) in the predictions are not in cohort "
                             f"'{cohort.meta.name}'; predictions and cohort do not belong together")
    patients = cohort.patients.set_index("patient_id").loc[predictions["patient_id"]]
    frame = predictions.assign(label=patients["n1b"].to_numpy(), centre=patients["centre"].to_numpy())
    groups = []
    for name, rule in SUBGROUPS.items():
        try:
            frame[name] = rule(patients).astype("object").to_numpy()
            groups.append(name)
        except KeyError:
            continue  # the cohort does not record that field
    vendors = {c.id: c.acquisition.get("us", {}).get("vendor") for c in cohort.meta.centres}
    if any(vendors.values()):  # CLINICAL_FACTS lists the ultrasound vendor among the subgroups to report
        frame["us_vendor"] = frame["centre"].map(vendors).astype("object").to_numpy()
        groups.append("us_vendor")
    oracle = None
    truth = cohort.root / "truth" / "patients.csv" if cohort.root else None
    if truth is not None and truth.is_file() and modalities:
        column = oracle_column(modalities)
        risks = pd.read_csv(truth, dtype={"patient_id": str}).set_index("patient_id")
        if column in risks:
            frame["oracle_" + column] = risks[column].reindex(frame["patient_id"]).to_numpy()
            oracle = "oracle_" + column
    return frame, groups, oracle


def evaluate_predictions(predictions_csv: str | Path, cohort: Cohort, report_dir: str | Path, *,
                         seed: int = 0) -> dict:
    """Write report.html + metrics.json for `predictions_csv`; the threshold is the one the model chose on its
    training data (from the provenance sidecar) so the test patients do not pick their own cut-off."""
    from .evaluate.report import write_report

    predictions, provenance = read_predictions(predictions_csv)
    modalities = provenance.get("modalities", [])
    frame, groups, oracle = evaluation_frame(predictions, cohort, modalities)
    threshold = provenance.get("thresholds", {}).get("youden")
    provenance = {**provenance, "predictions_sha256": file_sha256(Path(predictions_csv)), "report_seed": seed}
    title = f"LymphCast validation: {', '.join(modalities) or 'model'} on {', '.join(sorted(frame['centre'].unique()))}"
    evaluated = cohort.patients.set_index("patient_id").loc[predictions["patient_id"]]
    missing = {name: evaluated[name].isna().mean() for name in cohort.clinical_columns}
    return write_report(frame, Path(report_dir), title=title, provenance=provenance, threshold=threshold,
                        oracle_column=oracle, group_columns=groups, seed=seed, missing_data=missing,
                        missing_data_handling=MISSING_HANDLING)
