"""The cine-clip model against single frames, on the same patients of a held-out centre.

    .venv/bin/python benchmarks/bench_us_video.py [COHORT_FOLDER] [--patients N] [--seed S] [--threads T]
                                                  [--epochs N] [--no-image-model]

Trained on centres A-C, scored on the last centre. Without a folder, a synthetic cohort (`--patients`, 4
centres, clinical + ultrasound images + cine clips) is generated in a temporary folder first. Compared, each with
its patient-level AUC (DeLong 95% CI), node-level AUC and a paired DeLong test of the clip model against it:
- the clip model (UsVideoModel, default settings);
- the single-frame model: the same network, data, training and roll-up, but it sees only the annotated key frame
  of each clip (sampling="key", one frame) — the best single frame, the one a sonographer freezes;
- the ultrasound-image model (UsImageModel, trained on the stills of the same training patients, no detector)
  scoring the clip frames one at a time: its key-frame score, the mean of its per-frame scores and their maximum
  (us_video_baselines), through its own roll-up.
The AUC of the exact synthetic ultrasound risk `risk_us` on the same patients is the ceiling (it also knows
the long/short ratio and the Doppler vascularity, which a transverse B-mode sweep shows only partly or not at all).
Below the table, the exact risks from what a B-mode sweep shows (`risk_us_sweep`) and from what its key frame
shows (`risk_us_key`) are compared the same way: the most any clip model can gain over a key-frame model there.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cohort_args import parser, run_on_cohort
from lymphcast.cohort import read_cohort
from lymphcast.evaluate.discrimination import auc_ci, auc_score, delong_test
from lymphcast.modalities.us_video import UsVideoModel

SINGLE_FRAME = {"sampling": "key", "frames": 1, "train_frames": 1}


def main() -> None:
    ap = parser(__doc__, seed=7, epochs_help="clip-model epochs (default: the model's)")
    ap.add_argument("--no-image-model", action="store_true", help="skip the image model on frames")
    run_on_cohort(ap.parse_args(), ["clinical", "us_image", "us_video"], run)


def _fit(name: str, make, train):
    t0 = time.perf_counter()
    model = make().fit(train)
    print(f"{name}: trained in {time.perf_counter() - t0:.0f} s")
    return model


def run(folder: Path, args) -> None:
    cohort = read_cohort(folder)
    centres = sorted(cohort.patients["centre"].unique())
    train, test = cohort.in_centres(centres[:-1]), cohort.in_centres(centres[-1:])
    y = test.labels().astype(int)
    truth = pd.read_csv(folder / "truth" / "patients.csv", dtype={"patient_id": str}).set_index("patient_id")
    node_truth = pd.read_csv(folder / "truth" / "nodes.csv", dtype={"node_id": str}).set_index("node_id")
    epochs = {"epochs": args.epochs} if args.epochs else {}
    scores: dict[str, tuple[pd.Series, pd.Series | None]] = {}

    video = _fit("clip model", lambda: UsVideoModel(seed=0, **epochs), train)
    levels = video.predict_levels(test)
    scores["clip model (16 frames, both directions)"] = (levels["patients"], levels["nodes"])
    single = _fit("single-frame model", lambda: UsVideoModel(seed=0, **epochs, **SINGLE_FRAME), train)
    levels = single.predict_levels(test)
    scores["single-frame model (key frame)"] = (levels["patients"], levels["nodes"])
    if not args.no_image_model and "us_image_file" in cohort.nodes:
        from lymphcast.modalities.us_image import UsImageModel
        from lymphcast.modalities.us_video_baselines import SUMMARIES, frame_scores, rolled_up

        image = _fit("image model (stills)", lambda: UsImageModel(seed=0, detector="off"), train)
        per_node = frame_scores(image, test, frames=video.frames)
        for summary in SUMMARIES:
            scores[f"image model on frames: {summary}"] = (rolled_up(image, test, per_node[summary]),
                                                           per_node[summary])

    table = pd.DataFrame({name: p.reindex(y.index) for name, (p, _) in scores.items()}).assign(label=y)
    table.to_csv(Path(tempfile.gettempdir()) / "bench_us_video_patients.csv")  # to re-test without retraining
    oracle = truth.loc[y.index, "risk_us"].to_numpy()
    oracle_auc = auc_score(y.to_numpy(), oracle)
    reference = next(iter(scores))
    p_ref = scores[reference][0].loc[y.index].to_numpy()
    print(f"\nheld-out centre {centres[-1]}: {len(y)} patients, {int(y.sum())} N1b; "
          f"risk_us AUC {oracle_auc:.3f} (the ceiling)")
    print(f"{'model':44s} {'patient AUC (95% CI)':>24s} {'x risk_us':>9s} {'node AUC':>8s} "
          f"{'clip - this (95% CI)':>24s} {'p':>7s}")
    for name, (patients, nodes) in scores.items():
        p = patients.loc[y.index].to_numpy()
        auc, low, high = auc_ci(y.to_numpy(), p)
        node_auc = (auc_score(node_truth.loc[nodes.index, "metastatic_true"].to_numpy(), nodes.to_numpy())
                    if nodes is not None else np.nan)
        if name == reference:
            versus = f"{'':>24s} {'':>7s}"
        else:
            test_ = delong_test(y.to_numpy(), p_ref, p)
            versus = (f"{test_.difference:+.3f} ({test_.difference_ci_low:+.3f}, {test_.difference_ci_high:+.3f})"
                      f" {test_.p_value:7.4f}")
        print(f"{name:44s} {auc:.3f} ({low:.3f}-{high:.3f}){'':>5s} {auc / oracle_auc:9.3f} {node_auc:8.3f} "
              f"{versus}")
    bound = exact_sweep_over_key(truth, y)
    if bound:
        print(bound)


def exact_sweep_over_key(truth: pd.DataFrame, y: pd.Series) -> str:
    """The exact sweep risk against the exact key-frame risk on the same patients (cohorts written before these
    truth columns existed: empty)."""
    if not {"risk_us_sweep", "risk_us_key"} <= set(truth.columns):
        return ""
    v = delong_test(y.to_numpy(), truth.loc[y.index, "risk_us_sweep"].to_numpy(),
                    truth.loc[y.index, "risk_us_key"].to_numpy())
    return (f"exact risks, what the sweep shows {v.auc1:.3f} vs what its key frame shows {v.auc2:.3f}: "
            f"{v.difference:+.3f} ({v.difference_ci_low:+.3f}, {v.difference_ci_high:+.3f}), p {v.p_value:.4f} "
            "(the most a clip model can add over a key-frame model on these patients)")


if __name__ == "__main__":
    main()
