"""Accuracy of the clinical model on the real UCI thyroid table, next to a plain logistic regression.

Imports examples/uci_dtc with its mapping, then runs repeated stratified 5-fold cross-validation of
ClinicalModel (logistic and gbm) for N1b and, on the very same folds, scikit-learn's LogisticRegression with
one-hot encoding and default settings on the same preoperative source columns. Prints figures only.

    .venv/bin/python benchmarks/bench_uci_clinical.py [--repeats 10]

Intervals: '95% over repeats' is the 2.5-97.5 percentile of the per-repeat mean AUC, i.e. how much the
figure moves with the choice of folds; it is not a confidence interval for a new population. The fold range
shows how much one test fold of about 46 patients varies.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from lymphcast.cohort import read_cohort
from lymphcast.cohort.import_table import import_table
from lymphcast.cohort.mapping import load_mapping
from lymphcast.evaluate import calibration_intercept_slope
from lymphcast.modalities.clinical import ClinicalModel

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "uci_dtc"
SOURCE = EXAMPLE / "uci_dtc_dev.csv"
PLAIN_CATEGORIES = ["Gender", "Smoking", "Hx Smoking", "Hx Radiothreapy", "Thyroid Function",
                    "Physical Examination", "Adenopathy", "Pathology", "Focality", "T"]


def import_uci(folder: Path, *, all_pathologies: bool = False):
    mapping = EXAMPLE / "mapping.yaml"
    if all_pathologies:  # the same mapping without the PTC filter, for the filter comparison
        data = load_mapping(mapping).model_dump(mode="json", by_alias=True, exclude_none=True)
        data["filters"] = []
        data["fields"]["pathology"]["spec"]["values"] += ["Follicular", "Hurthel cell"]
        mapping = folder / "mapping_all.yaml"
        mapping.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return read_cohort(import_table(SOURCE, mapping, folder / ("all" if all_pathologies else "ptc")))


def plain_logistic():
    encode = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), PLAIN_CATEGORIES),
                                ("age", "passthrough", ["Age"])])
    return make_pipeline(encode, LogisticRegression(max_iter=1000))  # defaults, but enough iterations


def source_rows(patient_ids) -> pd.DataFrame:
    """The source rows of the imported patients (generated ids number the source rows)."""
    source = pd.read_csv(SOURCE, dtype=str, keep_default_na=False)
    source["Age"] = source["Age"].astype(float)
    return source.iloc[[int(pid.split("-")[1]) - 1 for pid in patient_ids]].reset_index(drop=True)


def cross_validate(cohort, repeats: int, models: dict, evaluate_on=None):
    """Fold AUCs (repeats × 5) and per-repeat calibration slopes on pooled out-of-fold probabilities."""
    y = cohort.labels().to_numpy(dtype=int)
    ids = cohort.patients["patient_id"].to_numpy()
    source = source_rows(ids)
    scored = np.ones(len(y), bool) if evaluate_on is None else evaluate_on
    aucs = {name: np.zeros((repeats, 5)) for name in models}
    slopes = {name: np.zeros(repeats) for name in models}
    on_cohort = {name: isinstance(make(), ClinicalModel) for name, (make, _) in models.items()}
    for r in range(repeats):
        oof = {name: np.full(len(y), np.nan) for name in models}
        for f, (train, test) in enumerate(StratifiedKFold(5, shuffle=True, random_state=r).split(ids, y)):
            test = test[scored[test]]
            for name, (make, train_mask) in models.items():
                fit_on = train if train_mask is None else train[train_mask[train]]
                if on_cohort[name]:
                    model = make().fit(cohort.subset(ids[fit_on]))
                    oof[name][test] = model.predict_proba(cohort.subset(ids[test])).loc[ids[test]].to_numpy()
                else:
                    model = make().fit(source.iloc[fit_on], y[fit_on])
                    oof[name][test] = model.predict_proba(source.iloc[test])[:, 1]
                aucs[name][r, f] = roc_auc_score(y[test], oof[name][test])
        for name in models:
            slopes[name][r] = calibration_intercept_slope(y[scored], oof[name][scored]).slope[0]
    return aucs, slopes


def report(aucs, slopes, baseline: str) -> None:
    print(f"{'model':<28}{'AUC':>7}  {'95% over repeats':<16}  {'fold range':<13}  {'cal. slope':>10}  "
          f"{'95% over repeats':<16}  AUC ratio to {baseline}")
    base = aucs[baseline].mean()
    for name in aucs:
        a, s = aucs[name], slopes[name]
        lo, hi = np.percentile(a.mean(axis=1), [2.5, 97.5])
        flo, fhi = np.percentile(a, [2.5, 97.5])
        slo, shi = np.percentile(s, [2.5, 97.5])
        print(f"{name:<28}{a.mean():7.3f}  {lo:.3f}-{hi:.3f}       {flo:.3f}-{fhi:.3f}    {s.mean():10.2f}  "
              f"{slo:.2f}-{shi:.2f}         {a.mean() / base:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    repeats = parser.parse_args().repeats
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ptc = import_uci(Path(tmp))
        everyone = import_uci(Path(tmp), all_pathologies=True)
    y = ptc.labels().astype(int)
    print(f"UCI DTC, PTC only: {len(y)} patients, {y.sum()} N1b; {repeats} x stratified 5-fold CV, "
          "same folds for every model\n")
    aucs, slopes = cross_validate(ptc, repeats, {
        "ClinicalModel(logistic)": (lambda: ClinicalModel(kind="logistic"), None),
        "ClinicalModel(gbm)": (lambda: ClinicalModel(kind="gbm"), None),
        "plain LogisticRegression": (plain_logistic, None)})
    report(aucs, slopes, "plain LogisticRegression")

    # Does training on follicular/Hurthle tumours too help predict PTC patients? Same folds, PTC test patients.
    is_ptc = everyone.patients["pathology"].isin(["Papillary", "Micropapillary"]).to_numpy()
    print(f"\nPTC filter: trained on all {len(is_ptc)} patients or on the {is_ptc.sum()} PTC patients only, "
          "scored on PTC patients (logistic)")
    aucs, slopes = cross_validate(everyone, repeats, {
        "trained on PTC only": (lambda: ClinicalModel(kind="logistic"), is_ptc),
        "trained on all pathologies": (lambda: ClinicalModel(kind="logistic"), None)}, evaluate_on=is_ptc)
    report(aucs, slopes, "trained on PTC only")
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
