"""What the exact risks themselves reach on two acceptance criteria, over many fresh seeds of the generator.

    .venv/bin/python benchmarks/bench_exact_limits.py [--seeds 40] [--first 1000] [--patients 800]

For each seed an 800-patient cohort is generated with its truth tables only (no images: seconds per seed), split as
the acceptance checks split it, and the exact risks in truth/patients.csv stand in for perfect models:
- cytology: `risk_cytology`'s AUC on the held-back quarter of the Papanicolaou centres B–D (internal validation)
  minus its AUC on the Diff-Quik centre A. The exact risk does not see the stain, so this gap is case mix and
  sampling alone; the criterion "the other-stain centre loses at most 0.03 AUC against internal validation" asks
  that it stay below 0.03;
- fusion: `risk_all` against the best single exact risk (`risk_us`, `risk_ct`) on centre D, paired DeLong test:
  how often even the exact combined risk is above the best exact single modality with p < 0.05.
Printed: one line per seed, then the share of seeds meeting each criterion and the spread of the gap.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from lymphcast.cohort import read_cohort
from lymphcast.evaluate.discrimination import auc_score, delong_test
from lymphcast.synth import generate_cohort


def cytology_gap(cohort, truth: pd.DataFrame) -> dict:
    """risk_cytology's AUC internal (a stratified quarter of B–D, as tests/test_acceptance_cytology.py keeps back)
    and on centre A."""
    pap = cohort.in_centres(["B", "C", "D"]).labelled()
    ids, y = pap.patients["patient_id"].to_numpy(), pap.patients["n1b"].astype(int).to_numpy()
    _, internal = train_test_split(ids, test_size=0.25, random_state=0, stratify=y)
    inside = pap.subset(internal).labels().astype(int)
    outside = cohort.in_centres(["A"]).labelled().labels().astype(int)
    auc_in = auc_score(inside, truth.loc[inside.index, "risk_cytology"])
    auc_out = auc_score(outside, truth.loc[outside.index, "risk_cytology"])
    return {"cyto_internal": auc_in, "cyto_centre_A": auc_out, "cyto_gap": auc_in - auc_out,
            "events_internal": int(inside.sum()), "events_A": int(outside.sum())}


def fusion_margin(cohort, truth: pd.DataFrame) -> dict:
    """risk_all against the better of risk_us and risk_ct on centre D (paired DeLong)."""
    labels = cohort.in_centres(["D"]).labelled().labels().astype(int)
    y, t = labels.to_numpy(int), truth.loc[labels.index]
    singles = {k: auc_score(y, t[k]) for k in ("risk_us", "risk_ct")}
    best = max(singles, key=singles.get)
    test = delong_test(y, t["risk_all"].to_numpy(float), t[best].to_numpy(float))
    return {"all_D": test.auc1, "best_single": best, "best_D": test.auc2, "all_minus_best": test.difference,
            "p": test.p_value, "events_D": int(y.sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=40)
    ap.add_argument("--first", type=int, default=1000, help="first seed")
    ap.add_argument("--patients", type=int, default=800)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.first, args.first + args.seeds):
            folder = generate_cohort(Path(tmp) / f"s{seed}", patients=args.patients, centres=4, seed=seed,
                                     modalities=["clinical"], progress=False)
            cohort = read_cohort(folder)
            truth = pd.read_csv(folder / "truth" / "patients.csv", dtype={"patient_id": str}).set_index("patient_id")
            row = {"seed": seed, **cytology_gap(cohort, truth), **fusion_margin(cohort, truth)}
            rows.append(row)
            print(f"seed {seed}: risk_cytology internal {row['cyto_internal']:.3f} ({row['events_internal']} N1b), "
                  f"centre A {row['cyto_centre_A']:.3f} ({row['events_A']}), gap {row['cyto_gap']:+.3f}; "
                  f"centre D risk_all {row['all_D']:.3f} vs {row['best_single']} {row['best_D']:.3f} "
                  f"({row['events_D']} N1b), p = {row['p']:.3f}", flush=True)
            shutil.rmtree(folder)
    df = pd.DataFrame(rows)
    gap = df["cyto_gap"]
    print(f"\n{len(df)} seeds of {args.patients} patients")
    print(f"cytology, exact risk: internal − centre A gap mean {gap.mean():+.3f}, SD {gap.std():.3f}, "
          f"5–95% {np.quantile(gap, 0.05):+.3f} to {np.quantile(gap, 0.95):+.3f}; "
          f"gap <= 0.03 in {(gap <= 0.03).mean():.0%} of seeds")
    print(f"fusion, exact risks: risk_all − best single {df['all_minus_best'].mean():+.3f} on average; "
          f"p < 0.05 in {(df['p'] < 0.05).mean():.0%} of seeds (median p {df['p'].median():.2f})")


if __name__ == "__main__":
    main()
