"""Node detector on full-field ultrasound frames: train on centres A-C, evaluate on held-out centre D.

    .venv/bin/python benchmarks/bench_us_detect.py [COHORT_FOLDER] [--epochs N] [--size S] [--threshold T]

Without a folder, a 600-patient synthetic cohort (4 centres, us_image only) is generated in a temporary
folder first. Prints recall, precision and F1 at IoU 0.5 on centre D (and on the training centres), the
training time and the detection speed in frames per second.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from lymphcast.cohort import read_cohort
from lymphcast.modalities.us_detect import NodeDetector
from lymphcast.modalities.us_detect_metrics import detection_metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cohort", nargs="?", type=Path, help="cohort folder (default: generate 600 patients)")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.cohort
        if folder is None:
            from lymphcast.synth import generate_cohort

            folder = generate_cohort(Path(tmp) / "cohort", patients=600, centres=4, seed=11,
                                     modalities=["us_image"])
        run(folder, args)


def run(folder: Path, args) -> None:
    cohort = read_cohort(folder)
    centres = list(cohort.meta.centre_ids)
    train, test = cohort.in_centres(centres[:-1]), cohort.in_centres(centres[-1:])
    settings = {k: v for k, v in {"epochs": args.epochs, "size": args.size, "threshold": args.threshold}.items()
                if v is not None}
    det = NodeDetector(seed=args.seed, **settings)
    t0 = time.perf_counter()
    det.fit(train)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    found = det.detect_frames(test)
    detect_s = time.perf_counter() - t0
    n_frames = test.nodes["us_frame_file"].nunique()
    held_out = detection_metrics(test, found)
    seen = detection_metrics(train, det.detect_frames(train))
    print(f"cohort {folder}: train centres {','.join(centres[:-1])} ({det.n_frames_['train']} frames, "
          f"{det.n_frames_['validation']} for early stopping), test centre {centres[-1]} ({n_frames} frames)")
    print(f"settings: {det!r}")
    print(f"training: {fit_s:.1f} s, best epoch {det.best_epoch_} of {len(det.history_)} run")
    for name, m in (("held-out centre " + centres[-1], held_out), ("training centres", seen)):
        print(f"{name:>20}: recall {m['recall']:.3f}  precision {m['precision']:.3f}  F1 {m['f1']:.3f}  "
              f"(true {m['n_true']}, predicted {m['n_pred']}, matched {m['tp']}) at IoU 0.5")
    print(f"detection: {n_frames / detect_s:.1f} frames/s (reading + network + boxes, {detect_s:.1f} s)")


if __name__ == "__main__":
    main()
