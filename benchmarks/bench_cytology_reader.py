"""How close the cytology measurement reader comes to the cytology features the generator drew, split by split.

    .venv/bin/python benchmarks/bench_cytology_reader.py COHORT [--splits 30] [--save CSV | --measurements CSV]

COHORT: a synthetic cohort with cytology and its truth tables, Diff-Quik at centre A (e.g. `lymphcast synth --out
DIR --patients 800 --seed 67 --modalities clinical,cytology`). Every patient's smear is tiled, normalised to a
stain reference fitted on the Papanicolaou centres' tiles and measured once (modalities.cytology_measure); then,
for each stratified split of the Pap centres B–D into training and a quarter kept back (split 0 is the acceptance
check's):
- reader: the measurement reader (fit_reader) fitted on the training patients; its AUC on centre A over
  `risk_cytology`'s AUC on the same patients (the acceptance bar is 0.95);
- latent: the same reader fitted on the cytology features the generator drew (truth/cytology.csv): what a
  perfect counter would reach with these training patients;
- gap: `risk_cytology`'s own AUC on the kept-back quarter minus its AUC on centre A (case mix and sampling: the
  exact risk does not see the stain).
Printed: one line per split, then means and the share of splits meeting each bar. About 4 minutes for 800 patients
on 2 cores, most of it measuring the smears (--save keeps the measurements, --measurements reads them back).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from lymphcast.cohort import read_cohort
from lymphcast.evaluate.discrimination import auc_score
from lymphcast.modalities.cytology_bags import read_bags, normalise_bags
from lymphcast.modalities.cytology_measure import fit_reader, measure_bags, reader_log_odds
from lymphcast.modalities.cytology_stain import fit_reference

# Each drawn feature under the name of the measurement that counts it, so the reader's own fit reads them
# (fractions as logits; a binary feature's clipped logit is an affine map of it, which scaling undoes).
LATENT = {"hobnail_fraction": "hobnail_like", "tall_cell_fraction": "tall_like", "loss_of_cohesion": "dispersed",
          "micropapillary": "small_clusters"}
PAP_CENTRES, OTHER_STAIN = ["B", "C", "D"], "A"


def measure_cohort(cohort) -> pd.DataFrame:
    """Every patient's smear measurements, normalised to the Pap centres' stains (the model's default tiling)."""
    raw = read_bags(cohort, tile_px=32, mpp=1.0, max_tiles=1024, min_tissue=0.05, progress=True)
    pap = raw.patient_ids.isin(cohort.in_centres(PAP_CENTRES).patients["patient_id"])
    reference = fit_reference(raw.tiles[np.isin(raw.owner, np.flatnonzero(pap))], 0)
    return measure_bags(normalise_bags(raw, reference), reference["he"], 1.0, progress=True)


def latent_frame(folder: Path) -> pd.DataFrame:
    """The drawn cytology features (truth/cytology.csv) as a frame fit_reader takes."""
    lat = pd.read_csv(folder / "truth" / "cytology.csv", dtype={"patient_id": str}).set_index("patient_id")
    return lat[list(LATENT)].astype(float).rename(columns=LATENT)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cohort", type=Path)
    ap.add_argument("--splits", type=int, default=30)
    ap.add_argument("--save", type=Path, help="write the measurements to this CSV")
    ap.add_argument("--measurements", type=Path, help="read the measurements from this CSV instead of the smears")
    args = ap.parse_args()
    cohort = read_cohort(args.cohort)
    truth = pd.read_csv(args.cohort / "truth" / "patients.csv", dtype={"patient_id": str}).set_index("patient_id")
    if args.measurements:
        measured = pd.read_csv(args.measurements, dtype={"patient_id": str}).set_index("patient_id")
    else:
        measured = measure_cohort(cohort.labelled())
        if args.save:
            measured.rename_axis("patient_id").to_csv(args.save)
    latent = latent_frame(args.cohort)
    pap = cohort.in_centres(PAP_CENTRES).labelled()
    pap = pap.subset(pap.patients["patient_id"][pap.patients["patient_id"].isin(measured.index)])
    ids, y = pap.patients["patient_id"].to_numpy(), pap.labels().astype(int).to_numpy()
    outside = cohort.in_centres([OTHER_STAIN]).labelled().labels().astype(int)
    outside = outside[outside.index.isin(measured.index)]
    exact_out = auc_score(outside, truth.loc[outside.index, "risk_cytology"])
    print(f"{args.cohort}: {len(ids)} Pap patients ({int(y.sum())} N1b), centre {OTHER_STAIN} {len(outside)} "
          f"({int(outside.sum())} N1b), risk_cytology AUC there {exact_out:.3f}")
    rows = []
    for split in range(args.splits):
        train, kept = train_test_split(ids, test_size=0.25, random_state=split, stratify=y)
        y_train = pap.subset(train).labels().astype(int).reindex(train).to_numpy()
        reader = fit_reader(measured.loc[train], y_train)
        perfect = fit_reader(latent.loc[train], y_train)
        inside = pap.subset(kept).labels().astype(int)
        row = {"split": split,
               "reader": auc_score(outside, reader_log_odds(reader, measured.loc[outside.index])) / exact_out,
               "latent": auc_score(outside, reader_log_odds(perfect, latent.loc[outside.index])) / exact_out,
               "gap": auc_score(inside, truth.loc[inside.index, "risk_cytology"]) - exact_out}
        rows.append(row)
        print(f"split {split:2d}: reader {row['reader']:.3f} x, latent features {row['latent']:.3f} x, "
              f"risk_cytology internal - {OTHER_STAIN} {row['gap']:+.3f}", flush=True)
    table = pd.DataFrame(rows)
    print(f"means over {len(table)} splits: reader {table['reader'].mean():.3f} x (>= 0.95 in "
          f"{(table['reader'] >= 0.95).mean():.0%}), latent features {table['latent'].mean():.3f} x (>= 0.95 in "
          f"{(table['latent'] >= 0.95).mean():.0%}); risk_cytology's own gap {table['gap'].mean():+.3f} "
          f"(<= 0.03 in {(table['gap'] <= 0.03).mean():.0%})")


if __name__ == "__main__":
    main()
