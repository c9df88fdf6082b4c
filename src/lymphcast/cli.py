"""The `lymphcast` command line: one Typer app; every command catches user errors and exits 2."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .cohort.errors import LymphCastError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="LymphCast: preoperative risk of lateral neck lymph node metastasis (N1b) in papillary "
                       "thyroid carcinoma, per node, neck side and patient.")
err = Console(stderr=True)
out = Console()


def user_errors(func):
    """Turn a LymphCastError into a clear message and exit code 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except LymphCastError as exc:
            err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted; nothing half-written was kept")
            raise typer.Exit(130) from None
        except Exception as exc:  # a bug: say so plainly; LYMPHCAST_DEBUG=1 shows the traceback
            if os.environ.get("LYMPHCAST_DEBUG"):
                raise
            err.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc}\n"
                      "This is a bug in LymphCast; rerun with LYMPHCAST_DEBUG=1 for details.", highlight=False)
            raise typer.Exit(1) from None

    return wrapper


def _split_list(value: Optional[str]) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _pairs(value: Optional[str], option: str) -> dict[str, str]:
    """NAME=VALUE,NAME=VALUE → {NAME: VALUE}; anything else is a clear error naming the option."""
    out = {}
    for item in _split_list(value) or []:
        name, sep, text = item.partition("=")
        if not sep or not name.strip() or not text.strip():
            raise LymphCastError(f"{option}: expected NAME=VALUE pairs separated by commas, got '{item}'")
        out[name.strip()] = text.strip()
    return out


@app.command()
@user_errors
def synth(out_dir: Path = typer.Option(..., "--out", help="Folder to create (must not exist or be empty)."),
          patients: int = typer.Option(1000, help="Number of patients."),
          centres: int = typer.Option(4, help="Number of centres (1–26)."),
          seed: int = typer.Option(0, help="Random seed; the same seed gives the same cohort."),
          modalities: Optional[str] = typer.Option(None, help="Comma-separated modalities to render (default: all "
                                                    "available except us_video, which is slow and large: ask for "
                                                    "it by name)."),
          coverage: Optional[str] = typer.Option(None, help="Modalities only some patients have, as "
                                                 "NAME=SHARE pairs, e.g. us_video=0.4 (default: everyone)."),
          overwrite: bool = typer.Option(False, help="Replace an existing folder.")):
    """Generate a synthetic multi-centre cohort (with exact risks in truth/)."""
    from .synth import generate_cohort

    path = generate_cohort(out_dir, patients=patients, centres=centres, seed=seed,
                           modalities=_split_list(modalities), overwrite=overwrite,
                           coverage=_pairs(coverage, "--coverage"))
    out.print(f"synthetic cohort written to {path}")


@app.command()
@user_errors
def validate(cohort_dir: Path = typer.Argument(..., help="Cohort folder to check.")):
    """Check a cohort folder; list every problem (file, line, column, expected) and exit 2 if any."""
    from .cohort import check_cohort

    problems = check_cohort(cohort_dir).problems
    if problems:
        raise LymphCastError(f"cohort '{cohort_dir}' has {len(problems)} problem(s)", problems)
    out.print(f"cohort '{cohort_dir}' is valid")


@app.command("import-table")
@user_errors
def import_table(table: Path = typer.Argument(..., help="Source CSV (one row per patient)."),
                 mapping: Path = typer.Option(..., help="Mapping YAML: columns, value maps, filters, leaks."),
                 out_dir: Path = typer.Option(..., "--out", help="Cohort folder to create."),
                 overwrite: bool = typer.Option(False, help="Replace an existing folder.")):
    """Turn a hospital's clinical table into a cohort folder through a column mapping."""
    from .cohort.import_table import import_table as run

    path = run(table, mapping, out_dir, overwrite=overwrite)
    out.print(f"cohort written to {path}")


@app.command("import-images")
@user_errors
def import_images(labels: Path = typer.Argument(..., help="Labels CSV: image, label and optional patient_id, centre, "
                                                          "mask, box (x0,y0,x1,y1), side, level."),
                  out_dir: Path = typer.Option(..., "--out", help="Cohort folder to create."),
                  strict: bool = typer.Option(False, "--strict", help="Abort on any problem instead of skipping "
                                                                      "the bad rows."),
                  centre: Optional[str] = typer.Option(None, help="Centre id of rows without one (default: site)."),
                  overwrite: bool = typer.Option(False, help="Replace an existing folder.")):
    """Turn your own node images (PNG/JPEG/DICOM) and their 0/1 labels into a cohort folder."""
    from rich.markup import escape

    from .cohort.import_images import REPORT
    from .cohort.import_images import import_images as run

    result = run(labels, out_dir, strict=strict, centre=centre, overwrite=overwrite)
    if result.problems:
        err.print(f"[yellow]warning:[/] {result.rows_skipped} of {result.rows_read} row(s) skipped, "
                  f"{len(result.problems)} problem(s); all listed in {escape(str(result.out_dir / REPORT))}",
                  highlight=False)
        for p in result.problems[:10]:
            err.print(f"  - {escape(str(p))}", highlight=False)
        if len(result.problems) > 10:
            err.print(f"  ... and {len(result.problems) - 10} more", highlight=False)
    out.print(f"cohort written to {escape(str(result.out_dir))}: {result.nodes} node image(s) of "
              f"{result.patients} patient(s)", highlight=False)


@app.command()
@user_errors
def train(cohort_dir: Path = typer.Argument(..., help="Cohort folder."),
          model_dir: Path = typer.Option(..., "--out", help="Model bundle folder to create."),
          modalities: str = typer.Option("clinical", help="Comma-separated modalities, or all (every modality the "
                                                          "cohort has data for); several are fused."),
          centres: Optional[str] = typer.Option(None, help="Train only on these centres (comma-separated)."),
          kind: Optional[str] = typer.Option(None, help="Clinical model: logistic (nomogram; the default) or "
                                                        "gbm."),
          epochs: Optional[int] = typer.Option(None, help="Image models: most training epochs (early stopping "
                                                          "may end sooner)."),
          checkpoint: Optional[Path] = typer.Option(None, help="Image models: checkpoint file; an interrupted run "
                                                               "resumes from it."),
          weights: Optional[Path] = typer.Option(None, help="Image models: local file of starting weights."),
          detector_epochs: Optional[int] = typer.Option(None, help="Ultrasound images: training epochs of the "
                                                                   "full-field node detector (0: no detector)."),
          ct_energy: Optional[str] = typer.Option(None, help="CT: dual (iodine map as a second channel where a "
                                                             "study has one; the default) or single."),
          ct_measurements: Optional[bool] = typer.Option(None, "--ct-measurements/--ct-cnn-only",
                                                         help="CT: add the measurement reader (node size, "
                                                              "attenuation, iodine) beside the CNN; on by default."),
          stain_norm: Optional[bool] = typer.Option(None, "--stain-norm/--no-stain-norm",
                                                    help="Cytology: map every image onto the training stains "
                                                         "(Macenko) before the network; on by default."),
          grey_tiles: Optional[bool] = typer.Option(None, "--grey-tiles/--colour-tiles",
                                                    help="Cytology: give the network grey levels only (the stain's "
                                                         "hue left out); on by default."),
          cytology_measurements: Optional[bool] = typer.Option(
              None, "--cytology-measurements/--cytology-network-only",
              help="Cytology: add the measurement reader (hobnail-like and tall-cell-like nuclei, dispersed cells, "
                   "small clusters) beside the network; on by default."),
          settings: Optional[Path] = typer.Option(None, help="JSON file of any model setting per modality, e.g. "
                                                             "{\"cytology\": {\"ssl_steps\": 300}}; flags win."),
          seed: int = typer.Option(0, help="Random seed."),
          overwrite: bool = typer.Option(False, help="Replace an existing bundle.")):
    """Train a model on the labelled patients and save it as a bundle."""
    from .bundle import save_bundle
    from .cohort import read_cohort
    from .model_settings import merge_settings, read_model_settings
    from .pipeline import train as run

    flags = _model_options(kind=kind, epochs=epochs, checkpoint=checkpoint, weights=weights,
                           detector_epochs=detector_epochs, ct_energy=ct_energy, ct_measurements=ct_measurements,
                           stain_norm=stain_norm, grey_tiles=grey_tiles, cytology_measurements=cytology_measurements)
    options = merge_settings(read_model_settings(settings), flags) if settings else flags
    bundle = run(read_cohort(cohort_dir), modalities=_split_list(modalities), centres=_split_list(centres),
                 options=options, seed=seed)
    digest = save_bundle(bundle, model_dir, overwrite=overwrite)
    out.print(f"model saved to {model_dir} (bundle sha256 {digest[:12]})")


def _model_options(*, kind: str | None, epochs=None, checkpoint=None, weights=None, detector_epochs=None,
                   ct_energy=None, ct_measurements=None, stain_norm=None, grey_tiles=None,
                   cytology_measurements=None) -> dict:
    image = {k: v for k, v in {"epochs": epochs, "checkpoint": str(checkpoint) if checkpoint else None,
                               "weights": str(weights) if weights else None}.items() if v is not None}
    video = {k: v for k, v in image.items() if k != "weights"}  # the clip model has no starting-weights option
    ct = {**image, **({"energy": ct_energy} if ct_energy else {}),
          **({"measurements": ct_measurements} if ct_measurements is not None else {})}
    cytology = {**image, **({"stain_norm": stain_norm} if stain_norm is not None else {}),
                **({"grey": grey_tiles} if grey_tiles is not None else {}),
                **({"measurements": cytology_measurements} if cytology_measurements is not None else {})}
    if detector_epochs is not None:
        image.update({"detector": "off"} if detector_epochs <= 0 else {"detector_epochs": detector_epochs})
    return {"clinical": {"kind": kind} if kind else {}, "us_image": image, "us_video": video, "ct": ct,
            "cytology": cytology}


@app.command()
@user_errors
def predict(model_dir: Path = typer.Argument(..., help="Model bundle folder."),
            cohort_dir: Path = typer.Argument(..., help="Cohort folder to score."),
            out_csv: Path = typer.Option(..., "--out", help="Predictions CSV (patient_id,probability); node-level "
                                                            "models also write OUT_sides.csv and OUT_nodes.csv."),
            centres: Optional[str] = typer.Option(None, help="Score only these centres (comma-separated).")):
    """Score patients (and, for node-level models, each neck side and node) with a trained bundle."""
    from .bundle import load_bundle
    from .cohort import read_cohort
    from .pipeline import predict as run
    from .predictions import level_paths, write_predictions, write_table

    frame, provenance, detail = run(load_bundle(model_dir), read_cohort(cohort_dir), centres=_split_list(centres),
                                    levels=True)
    write_predictions(frame, out_csv, provenance)
    out.print(f"{len(frame)} patient predictions written to {out_csv}")
    for level, path in level_paths(out_csv).items():
        if level in detail:
            write_table(detail[level], path)
            out.print(f"{level} table ({len(detail[level])} rows) written to {path}")


@app.command()
@user_errors
def crossval(cohort_dir: Path = typer.Argument(..., help="Cohort folder."),
             out_csv: Path = typer.Option(..., "--out", help="Out-of-fold predictions CSV."),
             scheme: str = typer.Option("kfold", help="kfold (stratified by N1b) or loco (leave one centre out)."),
             k: int = typer.Option(5, help="Folds for kfold."),
             modalities: str = typer.Option("clinical", help="Comma-separated modalities, or all (every modality the "
                                                          "cohort has data for); several are fused."),
             kind: str = typer.Option("logistic", help="Clinical model: logistic (nomogram) or gbm."),
             seed: int = typer.Option(0, help="Random seed.")):
    """Internal validation: score every patient with a model that never saw them; evaluate the CSV after."""
    from .cohort import read_cohort
    from .pipeline import cross_validate
    from .predictions import write_predictions

    frame, provenance = cross_validate(read_cohort(cohort_dir), modalities=_split_list(modalities), scheme=scheme,
                                       k=k, options=_model_options(kind=kind), seed=seed)
    write_predictions(frame, out_csv, provenance)
    out.print(f"{len(frame)} out-of-fold predictions ({scheme}) written to {out_csv}")


@app.command("ct-series")
@user_errors
def ct_series(study: Path = typer.Argument(..., help="CT study folder (or one DICOM file of a series).")):
    """List a CT study's series and the ones the CT model reads (conventional, iodine map, low-keV VMI)."""
    from rich.markup import escape
    from rich.table import Table

    from .io.ct_select import choose_series
    from .io.ct_series import scan_study

    found = scan_study(study)
    try:
        chosen, problem = choose_series(found), None
    except LymphCastError as error:  # still show what is there, then the reason none fits
        chosen, problem = None, error
    roles = {s.uid: role for role in ("conventional", "iodine", "vmi_low")
             if chosen is not None and (s := chosen.get(role)) is not None}
    table = Table(title=f"CT study {study}")
    for column in ("no.", "folder", "description", "kind", "phase", "kernel", "thickness", "files", "model reads"):
        table.add_column(column)
    for s in found:
        thick = "?" if s.slice_thickness_mm is None else f"{s.slice_thickness_mm:g} mm"
        table.add_row(str(s.series_number or ""), escape(s.folder.name), escape(s.description), s.kind, s.phase,
                      escape(s.kernel), thick, str(len(s.slices)), roles.get(s.uid, ""))
    Console(width=max(out.width, 150)).print(table)  # whole series descriptions, even when piped
    if found.skipped:
        out.print(f"{len(found.skipped)} file(s) skipped as not images, e.g. {escape(found.skipped[0])}",
                  highlight=False)
    if problem is not None:
        raise problem


@app.command()
@user_errors
def evaluate(predictions: Path = typer.Argument(..., help="Predictions CSV from `lymphcast predict`."),
             cohort_dir: Path = typer.Argument(..., help="Cohort folder with the recorded labels."),
             report_dir: Path = typer.Option(..., "--out", help="Report folder to create."),
             seed: int = typer.Option(0, help="Seed for bootstrap intervals."),
             model: Optional[Path] = typer.Option(None, "--model", help="Model bundle that made the predictions: "
                                                  "an ultrasound node model adds node AUC, node detection and a "
                                                  "Grad-CAM gallery of its most confident calls; a fused model "
                                                  "adds each modality, sides, levels and the literature."),
             readers: Optional[Path] = typer.Option(None, help="CSV of reader calls (reader, patient_id, [side], "
                                                    "call, [aided]) to compare with the fused model (needs "
                                                    "--model with a fused bundle)."),
             intermediate_from: Optional[Path] = typer.Option(
                 None, "--intermediate-from", help="Training cohort folder of the fused --model bundle: the report "
                 "then compares its stacking with intermediate (feature-level) fusion fitted on the same stacking "
                 "patients (re-reads their media: minutes for CT).")):
    """Write report.html and metrics.json: discrimination, calibration, decision curve, per centre."""
    from .cohort import read_cohort
    from .evaluate_run import evaluate_predictions

    metrics = evaluate_predictions(predictions, read_cohort(cohort_dir), report_dir, seed=seed, model=model,
                                   readers=readers, intermediate_from=intermediate_from)
    out.print(f"AUC {metrics['auc']:.3f} (95% CI {metrics['auc_ci_low']:.3f}–{metrics['auc_ci_high']:.3f}); "
              f"report: {report_dir / 'report.html'}")


@app.command()
@user_errors
def demo(out_dir: Path = typer.Option(Path("demo-output"), "--out", help="Folder for cohort, model and report."),
         patients: int = typer.Option(600, help="Synthetic patients (the demo's DEMO_PATIENTS)."),
         seed: int = typer.Option(0, help="Random seed.")):
    """Synthesize a 4-centre cohort, train on three centres, validate on the fourth, write the report."""
    from .demo import run_demo

    run_demo(out_dir, patients=patients, seed=seed, console=out)


@app.command()
@user_errors
def stream(model_dir: Path = typer.Argument(..., metavar="MODEL", help="Model bundle folder holding a us_video "
                                                                       "model."),
           video: str = typer.Argument(..., metavar="VIDEO", help="Cine clip (MP4/AVI/MOV/MKV or DICOM), or with "
                                       "--device a capture device FORMAT:DEVICE such as v4l2:/dev/video0."),
           box: Optional[str] = typer.Option(None, help="Node box X0,Y0,X1,Y1 in pixels of the frame (default: the "
                                                        "whole frame)."),
           spacing_mm: Optional[float] = typer.Option(None, "--spacing-mm", help="Pixel size in mm (default: the "
                                                      "file's own, DICOM, when it records one)."),
           window: Optional[int] = typer.Option(None, min=1, help="Use only the last N frames (default: every "
                                                                  "frame seen so far)."),
           realtime: bool = typer.Option(True, "--realtime/--fast", help="Play a file at its own frame rate, or "
                                                                          "as fast as it decodes."),
           device: bool = typer.Option(False, "--device", help="VIDEO is a capture device, read through PyAV."),
           max_frames: Optional[int] = typer.Option(None, "--max-frames", min=1, help="Stop after N frames."),
           out_csv: Optional[Path] = typer.Option(None, "--out", help="CSV of every update: frame,time_s,risk,"
                                                                      "latency_ms.")):
    """Stream a cine sweep frame by frame: the node risk after every frame, with its latency (Ctrl-C ends)."""
    import time

    from rich.live import Live
    from rich.markup import escape

    from .bundle import load_bundle
    from .stream import ClipStream, device_frames, file_frames, summarise

    coords = _box_option(box)
    bundle = load_bundle(model_dir)
    if bundle.component("us_video") is None:
        has = ", ".join(bundle.modalities) or "none"
        raise LymphCastError(f"model '{model_dir}' holds no us_video model (it has: {has}); train one with "
                             "`lymphcast train COHORT --modalities us_video`")
    fps = None
    if device:
        frames = device_frames(video, max_frames=max_frames)
    else:
        from .io.video import open_video

        info = open_video(video)  # a missing or unreadable file fails here, before anything is shown
        fps, spacing_mm = info.fps, spacing_mm if spacing_mm is not None else info.spacing_mm
        frames = file_frames(video, realtime, max_frames=max_frames)
    clip = ClipStream(bundle.component("us_video"), box=coords, spacing_mm=spacing_mm, window=window, fps=fps)
    updates, first, done = [], None, None
    with Live(console=out, refresh_per_second=8, transient=True) as live:
        try:
            for pixels, time_s, released_at in frames:
                first = released_at if first is None else first
                u = clip.push(pixels, time_s, released_at)
                done = time.perf_counter()
                updates.append(u)
                live.update(f"frame {u.index}  risk {u.risk:.3f}  latency {u.latency_ms:.1f} ms", refresh=False)
        except KeyboardInterrupt:  # the operator ends a live stream: summarise what was seen
            pass
        finally:
            frames.close()
    if not updates:
        raise LymphCastError(f"no frame was streamed from {video}")
    s = summarise(updates, first, done)
    out.print(f"{s.frames} frames in {s.seconds:.2f} s: {s.fps:.1f} frames/s sustained "
              f"({'device' if device else 'real time' if realtime else 'as fast as possible'}); "
              f"latency median {s.latency_median_ms:.1f} ms, p95 {s.latency_p95_ms:.1f} ms", highlight=False,
              soft_wrap=True)
    out.print(f"final node risk {s.final_risk:.3f} from {updates[-1].frames_used} frame(s); key frames "
              f"{', '.join(map(str, clip.key_frames(3)))}", highlight=False, soft_wrap=True)
    if out_csv is not None:
        import pandas as pd

        from .cohort import atomic_file

        rows = pd.DataFrame({"frame": [u.index for u in updates], "time_s": [u.time_s for u in updates],
                             "risk": [u.risk for u in updates], "latency_ms": [u.latency_ms for u in updates]})
        with atomic_file(out_csv) as tmp:
            rows.to_csv(tmp, index=False, float_format="%.6g")
        out.print(f"{len(rows)} updates written to {escape(str(out_csv))}", highlight=False, soft_wrap=True)


def _box_option(text: Optional[str]) -> tuple[float, ...] | None:
    import math

    if text is None:
        return None
    try:
        box = tuple(float(v) for v in text.split(","))
    except ValueError:
        box = ()
    if len(box) != 4 or not all(map(math.isfinite, box)) or not (box[2] > box[0] and box[3] > box[1]):
        raise LymphCastError(f"--box must be X0,Y0,X1,Y1: four numbers in pixels with X1 > X0 and Y1 > Y0, got "
                             f"'{text}'")
    return box


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())

from . import cli_service  # noqa: E402,F401  (registers bundle and serve)
