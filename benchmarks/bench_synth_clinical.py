"""Clinical model on an external synthetic centre, against the exact clinical risk (the oracle).

For each seed: synthesize a 4-centre cohort, train on A-C, score centre D, and print the AUC of the model and of
`truth/` risk_clinical on the same patients, and their ratio (1.0 = as good as any model could be).
Run: .venv/bin/python benchmarks/bench_synth_clinical.py [--patients 1000] [--seeds 1-10]
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from lymphcast.cohort import read_cohort
from lymphcast.evaluate import auc_ci, auc_score
from lymphcast.modalities.clinical import ClinicalModel
from lymphcast.synth import generate_cohort

VARIANTS = {"logistic": {"kind": "logistic"}, "logistic-linear": {"kind": "logistic", "number_scale": "linear"},
            "gbm": {"kind": "gbm"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--seeds", default="1-10", help="range like 1-10")
    args = parser.parse_args()
    lo, hi = (int(v) for v in args.seeds.split("-"))
    ratios: dict[str, list[float]] = {name: [] for name in VARIANTS}
    print(f"{'seed':>4} {'n test':>6} {'events':>6} {'oracle AUC':>16}  " +
          "  ".join(f"{name + ' AUC (ratio)':>26}" for name in VARIANTS))
    for seed in range(lo, hi + 1):
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            folder = generate_cohort(Path(tmp) / "c", patients=args.patients, centres=4, seed=seed,
                                     modalities=["clinical"], progress=False)
            cohort = read_cohort(folder)
            truth = pd.read_csv(folder / "truth" / "patients.csv", dtype={"patient_id": str}).set_index("patient_id")
            train, test = cohort.in_centres(["A", "B", "C"]), cohort.in_centres(["D"]).labelled()
            y = test.labels().astype(int)
            oracle, olo, ohi = auc_ci(y.to_numpy(), truth.loc[y.index, "risk_clinical"].to_numpy())
            cells = []
            for name, settings in VARIANTS.items():
                p = ClinicalModel(**settings).fit(train).predict_proba(test).loc[y.index]
                auc = auc_score(y.to_numpy(), p.to_numpy())
                ratios[name].append(auc / oracle)
                cells.append(f"{auc:>17.3f} ({auc / oracle:.3f})")
        print(f"{seed:>4} {len(y):>6} {int(y.sum()):>6} {oracle:>6.3f} ({olo:.2f}-{ohi:.2f})  " + "  ".join(cells))
    for name, values in ratios.items():
        v = np.array(values)
        print(f"{name:<16} ratio to oracle: mean {v.mean():.3f}, min {v.min():.3f}, "
              f"seeds at or above 0.97: {(v >= 0.97).sum()}/{len(v)}")


if __name__ == "__main__":
    main()
