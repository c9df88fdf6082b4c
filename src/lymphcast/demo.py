"""`lymphcast demo`: the whole path on a synthetic cohort — synthesize, train on three centres, validate
externally on the fourth, write the report."""

from __future__ import annotations

import shutil
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .cohort import LymphCastError

TRAIN_CENTRES = ("A", "B", "C")
TEST_CENTRE = "D"
MODALITIES = ["clinical"]  # the modalities the demo trains; later issues add theirs here


def run_demo(out: Path, *, patients: int = 1000, seed: int = 0, console: Console | None = None) -> dict:
    from .bundle import save_bundle
    from .cohort import read_cohort
    from .evaluate_run import evaluate_predictions
    from .pipeline import predict, train
    from .predictions import write_predictions
    from .synth import generate_cohort

    console = console or Console()
    out = Path(out)
    if out.exists() and not (out / ".lymphcast-demo").exists() and any(out.iterdir()):
        raise LymphCastError(f"'{out}' exists and was not made by `lymphcast demo`; choose another --out")
    shutil.rmtree(out, ignore_errors=True)  # a previous demo run is replaced, never mixed with this one
    out.mkdir(parents=True)
    (out / ".lymphcast-demo").touch()

    console.rule("1/4 synthesize a 4-centre cohort")
    cohort_dir = generate_cohort(out / "cohort", patients=patients, centres=4, seed=seed, modalities=MODALITIES)
    cohort = read_cohort(cohort_dir)
    console.rule(f"2/4 train the clinical model on centres {', '.join(TRAIN_CENTRES)}")
    with console.status("fitting (with 5-fold out-of-fold predictions for the thresholds)…"):
        bundle = train(cohort, modalities=MODALITIES, centres=TRAIN_CENTRES, seed=seed)
    digest = save_bundle(bundle, out / "model")
    console.rule(f"3/4 predict the external centre {TEST_CENTRE}")
    frame, provenance = predict(bundle, cohort, centres=[TEST_CENTRE])
    write_predictions(frame, out / "predictions.csv", provenance)
    console.rule("4/4 evaluate and write the report")
    metrics = evaluate_predictions(out / "predictions.csv", cohort, out / "report", seed=seed)
    _summary(console, metrics, out, digest)
    return metrics


def _summary(console: Console, m: dict, out: Path, digest: str) -> None:
    table = Table(title=f"External validation on centre {TEST_CENTRE} (clinical model)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("patients / N1b events", f"{m['n']} / {m['events']}")
    table.add_row("AUC (95% CI, DeLong)", f"{m['auc']:.3f} ({m['auc_ci_low']:.3f}–{m['auc_ci_high']:.3f})")
    if m.get("oracle_auc") is not None:
        table.add_row("oracle AUC (exact clinical risk)", f"{m['oracle_auc']:.3f}")
    table.add_row(f"sensitivity / specificity at {m['threshold']:.2f}",
                  f"{m['sensitivity']:.2f} / {m['specificity']:.2f}")
    table.add_row("calibration intercept / slope",
                  f"{m['calibration_intercept']:.2f} / {m['calibration_slope']:.2f}")
    table.add_row("Brier score", f"{m['brier']:.3f}")
    console.print(table)
    console.print(f"model bundle sha256 {digest[:12]}; nomogram: {out / 'model' / 'clinical_nomogram.png'}",
                  soft_wrap=True)
    console.print(f"report: [bold]{out / 'report' / 'report.html'}[/]", soft_wrap=True)
