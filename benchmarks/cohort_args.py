"""What the model benchmarks share: the command line (a cohort folder, or the size and seed of one to generate),
the torch thread count, and the cohort itself, generated in a temporary folder when none is given."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def parser(doc: str, *, seed: int, epochs_help: str = "training epochs (default: the model's)") -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("cohort", nargs="?", type=Path, help="cohort folder (default: generate one)")
    ap.add_argument("--patients", type=int, default=800)
    ap.add_argument("--seed", type=int, default=seed, help="seed of the generated cohort")
    ap.add_argument("--epochs", type=int, default=None, help=epochs_help)
    ap.add_argument("--threads", type=int, default=2)
    return ap


def run_on_cohort(args, modalities, run, coverage: dict | None = None) -> None:
    """Set the threads, then `run(folder, args)` on args.cohort or on a cohort generated for the run."""
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.cohort
        if folder is None:
            from lymphcast.synth import generate_cohort

            folder = generate_cohort(Path(tmp) / "cohort", patients=args.patients, centres=4, seed=args.seed,
                                     modalities=list(modalities), coverage=coverage)
        run(Path(folder), args)
