"""`lymphcast demo`: the whole path on a synthetic cohort — synthesize, train each modality on three centres,
validate externally on the fourth, write one report per modality."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .cohort import LymphCastError

TRAIN_CENTRES = ("A", "B", "C")
TEST_CENTRE = "D"
MODALITIES = ["clinical", "us_image", "us_video", "ct", "cytology"]  # each trained and validated on its own until fusion lands
# Short training keeps the demo within 10 minutes on 2 cores; cine clips and CT, the slowest to render and to
# learn from, are recorded for a share of the patients only (as in a clinic, where not every node gets a sweep and
# not every patient a CT); so is cytology (a scanned slide per patient: half a second each to draw).
DEMO_OPTIONS = {"us_image": {"epochs": 10, "detector_epochs": 8}, "us_video": {"epochs": 6, "head_epochs": 15},
                "ct": {"epochs": 8}, "cytology": {"epochs": 8}}
DEMO_COVERAGE = {"us_video": 0.15, "ct": 0.2, "cytology": 0.2}
TITLES = {"clinical": "clinical model", "us_image": "ultrasound-image model", "us_video": "ultrasound cine-clip model",
          "ct": "contrast-CT model", "cytology": "cytology model"}
ORACLE_NAMES = {"clinical": "exact clinical risk", "us_image": "exact ultrasound risk",
                "us_video": "exact ultrasound risk", "ct": "exact CT risk", "cytology": "exact cytology risk"}


def run_demo(out: Path, *, patients: int = 800, seed: int = 0, console: Console | None = None) -> dict:
    """Returns the external-validation metrics per modality."""
    from .cohort import read_cohort
    from .synth import generate_cohort

    console = console or Console()
    started = time.perf_counter()
    out = Path(out)
    if out.exists() and not (out / ".lymphcast-demo").exists() and any(out.iterdir()):
        raise LymphCastError(f"'{out}' exists and was not made by `lymphcast demo`; choose another --out")
    shutil.rmtree(out, ignore_errors=True)  # a previous demo run is replaced, never mixed with this one
    out.mkdir(parents=True)
    (out / ".lymphcast-demo").touch()

    console.rule("synthesize a 4-centre cohort (clinical data, ultrasound images; cine clips, CT and cytology for "
                 "some patients)")
    cohort_dir = generate_cohort(out / "cohort", patients=patients, centres=4, seed=seed, modalities=MODALITIES,
                                 coverage=DEMO_COVERAGE)
    console.print(f"cohort written in {time.perf_counter() - started:.0f} s")
    cohort = read_cohort(cohort_dir)
    results = {}
    for name in MODALITIES:
        begun = time.perf_counter()
        results[name] = _one_modality(name, cohort, out, seed, console)
        console.print(f"{TITLES[name]}: trained, validated and reported in {time.perf_counter() - begun:.0f} s")
    for name, (metrics, digest) in results.items():
        _summary(console, name, metrics, out, digest)
    console.print(f"demo finished in {time.perf_counter() - started:.0f} s")
    return {name: metrics for name, (metrics, _) in results.items()}


def _one_modality(name: str, cohort, out: Path, seed: int, console: Console) -> tuple[dict, str]:
    from .bundle import save_bundle
    from .evaluate_run import evaluate_predictions
    from .pipeline import predict, train
    from .predictions import level_paths, write_predictions, write_table

    console.rule(f"{TITLES[name]}: train on centres {', '.join(TRAIN_CENTRES)}")
    bundle = train(cohort, modalities=[name], centres=TRAIN_CENTRES, seed=seed, options=DEMO_OPTIONS)
    digest = save_bundle(bundle, out / f"model_{name}")
    console.rule(f"{TITLES[name]}: predict the external centre {TEST_CENTRE}, evaluate, report")
    frame, provenance, detail = predict(bundle, cohort, centres=[TEST_CENTRE], levels=True)
    csv = out / f"predictions_{name}.csv"
    write_predictions(frame, csv, provenance)
    for level, path in level_paths(csv).items():
        if level in detail:
            write_table(detail[level], path)
    metrics = evaluate_predictions(csv, cohort, out / f"report_{name}", seed=seed, model=out / f"model_{name}")
    return metrics, digest


def _summary(console: Console, name: str, m: dict, out: Path, digest: str) -> None:
    table = Table(title=f"External validation on centre {TEST_CENTRE} ({TITLES[name]})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("patients / N1b events", f"{m['n']} / {m['events']}")
    table.add_row("AUC (95% CI, DeLong)", f"{m['auc']:.3f} ({m['auc_ci_low']:.3f}–{m['auc_ci_high']:.3f})")
    if m.get("oracle_auc") is not None:
        table.add_row(f"oracle AUC ({ORACLE_NAMES[name]})", f"{m['oracle_auc']:.3f}")
    table.add_row(f"sensitivity / specificity at {m['threshold']:.2f}",
                  f"{m['sensitivity']:.2f} / {m['specificity']:.2f}")
    table.add_row("calibration intercept / slope",
                  f"{m['calibration_intercept']:.2f} / {m['calibration_slope']:.2f}")
    table.add_row("Brier score", f"{m['brier']:.3f}")
    console.print(table)
    console.print(f"model bundle sha256 {digest[:12]}: {out / f'model_{name}'}", soft_wrap=True)
    console.print(f"report: [bold]{out / f'report_{name}' / 'report.html'}[/]", soft_wrap=True)
