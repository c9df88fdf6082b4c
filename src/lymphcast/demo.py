"""`lymphcast demo`: the whole path on a synthetic cohort — synthesize every modality, train the fused model (each
modality's model and the stackers over them) on three centres, validate externally on the fourth, write one
report with every modality, the fused risk per patient, side and level, the literature and every explanation."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .cohort import LymphCastError

TRAIN_CENTRES = ("A", "B", "C")
TEST_CENTRE = "D"
MODALITIES = ["clinical", "us_image", "us_video", "ct", "cytology"]
# Short training keeps the demo within 10 minutes on 2 cores; cine clips, CT and cytology, the slowest to render and
# to learn from, are recorded for a share of the patients only (as in a clinic, where not every node gets a sweep,
# nor every patient a CT), which the fused model handles with its missing-modality masks.
DEMO_OPTIONS = {"us_image": {"epochs": 10, "detector_epochs": 8}, "us_video": {"epochs": 6, "head_epochs": 15},
                "ct": {"epochs": 8}, "cytology": {"epochs": 3, "ssl_steps": 100}}
DEMO_COVERAGE = {"us_video": 0.15, "ct": 0.2, "cytology": 0.2}
# 600 patients (about 110 at the external centre) keep the whole demo near 8 minutes on this project's 2-core
# machine; 800 took 13 (README); `lymphcast demo --patients` takes more.
DEMO_PATIENTS = 600
NAMES = {"fused": "fused model", "clinical": "clinical model", "us_image": "ultrasound-image model",
         "us_video": "ultrasound cine-clip model", "ct": "contrast-CT model", "cytology": "cytology model"}


def run_demo(out: Path, *, patients: int = DEMO_PATIENTS, seed: int = 0, console: Console | None = None) -> dict:
    """Returns the external-validation metrics (the fused model's, with each modality's in metrics["fusion"])."""
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
    metrics, digest = _fused(read_cohort(cohort_dir), out, seed, console)
    _summary(console, metrics, out, digest)
    console.print(f"demo finished in {time.perf_counter() - started:.0f} s")
    return metrics


def _fused(cohort, out: Path, seed: int, console: Console) -> tuple[dict, str]:
    from .bundle import lock_bundle, save_bundle
    from .evaluate_run import evaluate_predictions
    from .pipeline import predict, train
    from .predictions import level_paths, write_predictions, write_table

    begun = time.perf_counter()
    console.rule(f"fused model over {', '.join(MODALITIES)}: train on centres {', '.join(TRAIN_CENTRES)}")
    bundle = train(cohort, modalities=MODALITIES, centres=TRAIN_CENTRES, seed=seed, options=DEMO_OPTIONS)
    digest = save_bundle(bundle, out / "model")
    lock_bundle(out / "model", out / "bundle", note="synthetic demo model: not for patients")
    console.print(f"trained in {time.perf_counter() - begun:.0f} s")
    begun = time.perf_counter()
    console.rule(f"predict the external centre {TEST_CENTRE} per patient, side, level and node; evaluate; report")
    frame, provenance, detail = predict(bundle, cohort, centres=[TEST_CENTRE], levels=True)
    csv = out / "predictions.csv"
    write_predictions(frame, csv, provenance)
    for level, path in level_paths(csv).items():
        if level in detail:
            write_table(detail[level], path)
    metrics = evaluate_predictions(csv, cohort, out / "report", seed=seed, model=out / "model")
    console.print(f"predicted, evaluated and reported in {time.perf_counter() - begun:.0f} s")
    return metrics, digest


def _num(value, spec: str = ".3f") -> str:
    """A metric for the console; "—" where it could not be computed (null in metrics.json)."""
    return "—" if value is None else format(value, spec)


def _summary(console: Console, m: dict, out: Path, digest: str) -> None:
    table = Table(title=f"External validation on centre {TEST_CENTRE}")
    table.add_column("model")
    table.add_column("patients (N1b)", justify="right")
    table.add_column("AUC (95% CI, DeLong)", justify="right")
    table.add_column("fused − model (p)", justify="right")
    for row in m.get("fusion", {}).get("modalities", []):
        auc = (f"{_num(row.get('auc'))} ({_num(row.get('auc_ci_low'))}–{_num(row.get('auc_ci_high'))})"
               if row.get("auc") is not None else "—")
        diff = f"{_num(row.get('fused_minus'), '+.3f')} (p {_num(row.get('p_value'))})" if "fused_minus" in row else ""
        table.add_row(NAMES.get(row["name"], row["name"]), f"{row['n']} ({row['events']})", auc, diff)
    console.print(table)
    if m.get("oracle_auc") is not None:
        console.print(f"oracle AUC (exact risk from every modality): {m['oracle_auc']:.3f}")
    console.print(f"fused: sensitivity / specificity at {_num(m.get('threshold'), '.2f')}: "
                  f"{_num(m.get('sensitivity'), '.2f')} / {_num(m.get('specificity'), '.2f')}; calibration "
                  f"intercept / slope {_num(m.get('calibration_intercept'), '.2f')} / "
                  f"{_num(m.get('calibration_slope'), '.2f')}; Brier {_num(m.get('brier'))}")
    sides = m.get("fusion", {}).get("sides", {}).get("auc", {})
    if sides.get("auc") is not None:
        console.print(f"neck sides: AUC {sides['auc']:.3f} on {sides['n']} sides ({sides['events']} involved)")
    console.print(f"model bundle sha256 {digest[:12]}: {out / 'model'}", soft_wrap=True)
    console.print(f"report: [bold]{out / 'report' / 'report.html'}[/]", soft_wrap=True)
    console.print(f"to serve the locked copy: lymphcast token --user you --role clinician --data {out / 'service'}; "
                  f"lymphcast serve {out / 'bundle'} --data {out / 'service'}", soft_wrap=True, highlight=False)
