"""Synthetic cohort generation speed: patients per second for each renderable modality, and peak memory.

Run: .venv/bin/python benchmarks/bench_synth.py [--patients 1500]
Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from lymphcast.synth import generate_cohort
from lymphcast.synth.renderers import available_renderers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"{'modality':<12} {'patients':>9} {'seconds':>9} {'patients/s':>11} {'MiB written':>12}")
    for modality in available_renderers():
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            out = generate_cohort(Path(tmp) / "c", patients=args.patients, centres=4, seed=args.seed,
                                  modalities=[modality], progress=False)
            seconds = time.perf_counter() - start
            size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
        print(f"{modality:<12} {args.patients:>9} {seconds:>9.2f} {args.patients / seconds:>11.0f} {size:>12.1f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
