"""The fused model on a held-out centre: against the exact combined risk, against every single modality, and with
modalities missing for some patients.

    .venv/bin/python benchmarks/bench_fusion.py [COHORT_FOLDER] [--patients N] [--seed S]
                                                [--modalities clinical,us_image,ct,cytology]
                                                [--coverage ct=0.7,cytology=0.5]

Trained on centres A-C (FusionModel over the modalities, default settings), scored on D. Without a folder, a
synthetic cohort is generated first with the given coverage (share of patients with each modality). Printed: the
fused AUC (DeLong 95% CI) against `risk_all` on the same patients (ratio); each modality's AUC on the patients who
have it and the paired DeLong test fused − modality there; the best single modality; the calibration intercept and
slope of the fused risk; intermediate (feature-level) fusion on the same stacking patients against stacking;
side- and level-level AUCs.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from cohort_args import parser, run_on_cohort
from lymphcast.cohort import read_cohort
from lymphcast.evaluate.calibration import calibration_intercept_slope
from lymphcast.evaluate.discrimination import auc_ci, auc_score
from lymphcast.fusion.evaluation import modality_rows, side_section
from lymphcast.fusion.model import FusionModel, available_modalities


def _coverage(text: str | None) -> dict[str, float]:
    if not text:
        return {}
    return {k: float(v) for k, v in (part.split("=") for part in text.split(","))}


def main() -> None:
    ap = parser(__doc__, seed=37, epochs_help="unused (each modality trains with its defaults)")
    ap.add_argument("--modalities", default="clinical,us_image,ct,cytology")
    ap.add_argument("--coverage", default="ct=0.7,cytology=0.5")
    args = ap.parse_args()
    run_on_cohort(args, args.modalities.split(","), run, coverage=_coverage(args.coverage))


def run(folder: Path, args=None) -> None:
    cohort = read_cohort(folder)
    names = available_modalities(cohort)
    train, test = cohort.in_centres(["A", "B", "C"]), cohort.in_centres(["D"])
    t0 = time.perf_counter()
    model = FusionModel(modalities=tuple(names), seed=0).fit(train)
    print(f"fused {', '.join(names)}: trained in {time.perf_counter() - t0:.0f} s; {model.training_summary_}")
    scored = model.predict_levels(test)
    labels = test.labels().dropna().astype(int)
    y, p = labels.to_numpy(), scored["patients"].loc[labels.index].to_numpy(float)
    truth = pd.read_csv(folder / "truth" / "patients.csv", dtype={"patient_id": str}).set_index("patient_id")
    oracle = auc_score(y, truth.loc[labels.index, "risk_all"].to_numpy())
    auc, low, high = auc_ci(y, p)
    print(f"centre D: {len(y)} patients, {y.sum()} N1b; fused AUC {auc:.3f} ({low:.3f}-{high:.3f}), risk_all "
          f"{oracle:.3f}, ratio {auc / oracle:.3f} (target >= 0.95)")
    rows = modality_rows(scored["patients"], scored["modalities"], test.labels())
    for row in rows[1:]:
        if "auc" in row:
            print(f"  {row['name']:<10} n={row['n']:4d} ({row['coverage']:.0%} of patients)  AUC {row['auc']:.3f}  "
                  f"fused − it {row['fused_minus']:+.3f} ({row['fused_minus_ci_low']:+.3f} to "
                  f"{row['fused_minus_ci_high']:+.3f}), DeLong p = {row['p_value']:.4f}")
    best = max((r for r in rows[1:] if "auc" in r), key=lambda r: r["auc"])
    print(f"best single modality: {best['name']} (AUC {best['auc']:.3f}); fused − best p = {best['p_value']:.4f}")
    fit = calibration_intercept_slope(y, p)
    print(f"calibration on D: intercept {fit.intercept[0]:.2f}, slope {fit.slope[0]:.2f} "
          f"({fit.slope[1]:.2f}-{fit.slope[2]:.2f}; target slope 0.8-1.2)")
    intermediate_comparison(model, train, test, scored, labels)
    sides = side_section(model, test, scored)
    if sides:
        print(f"sides: AUC {sides['auc'].get('auc', float('nan')):.3f} on {sides['auc']['n']} sides")
        for row in sides.get("levels", []):
            print(f"  {row['name']:<10} AUC {row.get('auc', float('nan')):.3f} ({row['events']} involved of {row['n']})")


def intermediate_comparison(model, train, test, scored, labels) -> None:
    """Intermediate (feature-level) fusion fitted on the same stacking patients, against stacking, on D."""
    from lymphcast.fusion.intermediate import IntermediateFusion, comparison_section

    t0 = time.perf_counter()
    other = IntermediateFusion(model).fit(train)
    section = comparison_section(scored["patients"], other.predict_proba(test), labels, other.training_summary_)
    print(f"intermediate fusion fitted in {time.perf_counter() - t0:.0f} s (components {other.training_summary_['components']})")
    for row in section["rows"]:
        slope = f", calibration slope {row['slope']:.2f}" if "slope" in row else ""
        print(f"  {row['name']:<34} AUC {row['auc']:.3f} ({row['auc_ci_low']:.3f}-{row['auc_ci_high']:.3f}){slope}")
    if "p_value" in section:
        print(f"  stacking − intermediate {section['late_minus']:+.3f} ({section['late_minus_ci_low']:+.3f} to "
              f"{section['late_minus_ci_high']:+.3f}), paired DeLong p = {section['p_value']:.4f}")


if __name__ == "__main__":
    main()
