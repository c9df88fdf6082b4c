"""Ultrasound-image node model against MONAI's DenseNet121 trained the same way: accuracy and inference speed.

    .venv/bin/python benchmarks/bench_us_image.py [COHORT_FOLDER] [--epochs N] [--patients N] [--threads T]

Both models are UsImageModel with the same data, split, augmentation, class weights, early stopping,
calibration and roll-up; only the encoder differs (backbone "residual", ours, or "densenet121"). Trained on
centres A-C, scored on the held-out last centre. Without a folder, a synthetic cohort (`--patients`, 4 centres)
is generated in a temporary folder first. Prints, for each model and as ratios ours / DenseNet121:
- patient-level AUC (with DeLong 95% CI) next to the AUC of the exact synthetic risk `risk_us`;
- node-level AUC;
- inference throughput in node regions per second (two views each, batches of 512, `--threads` torch threads,
  default 2 = the target machine), measured on the same regions in this process after a warm-up;
- training time;
- the roll-up comparison (noisy-OR, max, learned) measured on the validation patients.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lymphcast.cohort import read_cohort
from lymphcast.evaluate.discrimination import auc_ci as delong_auc_ci
from lymphcast.modalities.us_image import UsImageModel
from lymphcast.modalities.us_regions import node_regions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cohort", nargs="?", type=Path, help="cohort folder (default: generate one)")
    ap.add_argument("--patients", type=int, default=600)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.cohort
        if folder is None:
            from lymphcast.synth import generate_cohort

            folder = generate_cohort(Path(tmp) / "cohort", patients=args.patients, centres=4, seed=21,
                                     modalities=["clinical", "us_image"])
        run(Path(folder), args)


def throughput(model: UsImageModel, regions, repeats: int = 3) -> float:
    """Node regions per second through the calibrated node model (the network in eval mode, batches of 512)."""
    model._logits(regions)  # warm-up (allocations, thread pool)
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        model._calibrated(model._logits(regions))
        best = max(best, len(regions) / (time.perf_counter() - t0))
    return best


def run(folder: Path, args) -> None:
    cohort = read_cohort(folder)
    centres = list(cohort.meta.centre_ids)
    train, test = cohort.in_centres(centres[:-1]), cohort.in_centres(centres[-1:])
    y = test.labels().astype(int)
    truth = pd.read_csv(folder / "truth" / "patients.csv", dtype={"patient_id": str}).set_index("patient_id")
    oracle = delong_auc_ci(y.to_numpy(), truth.loc[y.index, "risk_us"].to_numpy())
    regions = node_regions(test, size=64, margin=0.25, progress=False)
    node_labels = test.nodes.set_index("node_id").loc[regions.node_ids, "metastatic"]
    rows = {}
    for backbone in ("residual", "densenet121"):
        model = UsImageModel(seed=args.seed, epochs=args.epochs, backbone=backbone, detector="off")
        t0 = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - t0
        p = model.predict_proba(test).loc[y.index]
        auc = delong_auc_ci(y.to_numpy(), p.to_numpy())
        pn = model.predict_nodes(test).loc[regions.node_ids]
        known = node_labels.notna().to_numpy()
        node_auc = delong_auc_ci(node_labels[known].astype(int).to_numpy(), pn[known].to_numpy())
        rows[backbone] = {"patient AUC": auc[0], "95% CI": f"{auc[1]:.3f}-{auc[2]:.3f}", "node AUC": node_auc[0],
                          "regions/s": throughput(model, regions), "training s": fit_s,
                          "best epoch": model.best_epoch_, "roll-up": model.rollup_,
                          "parameters": sum(v.numel() for v in model.state_dict_.values())}
        print(f"\n{backbone}: roll-up comparison on the validation patients\n{model.rollup_scores_.round(4)}")
    table = pd.DataFrame(rows).T
    print(f"\ncohort {folder}: train centres {','.join(centres[:-1])}, test centre {centres[-1]} "
          f"({len(y)} patients, {int(y.sum())} N1b, {len(regions)} node regions); torch threads {args.threads}")
    print(f"risk_us (exact synthetic ultrasound risk) AUC on the same patients: {oracle[0]:.3f} "
          f"({oracle[1]:.3f}-{oracle[2]:.3f})")
    print(table.to_string())
    ours, ref = rows["residual"], rows["densenet121"]
    print(f"\nratios ours / DenseNet121: patient AUC {ours['patient AUC'] / ref['patient AUC']:.3f}, "
          f"node AUC {ours['node AUC'] / ref['node AUC']:.3f}, throughput {ours['regions/s'] / ref['regions/s']:.1f}x, "
          f"training time {ours['training s'] / ref['training s']:.2f}")
    print(f"ours / risk_us patient AUC: {ours['patient AUC'] / oracle[0]:.3f} (acceptance: >= 0.95)")
    print(f"ours: {ours['regions/s']:.0f} node regions/s on {args.threads} threads (acceptance: >= 200)")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
