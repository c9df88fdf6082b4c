"""Evaluation report: metrics.json plus a self-contained report.html, both written atomically."""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..cohort.errors import LymphCastError
from .bootstrap import roc_band
from .decision_curve import CLINICAL_RANGE, DEFAULT_THRESHOLDS, net_benefit_curve
from .discrimination import auc_ci, delong_test
from .groups import metrics_by_group
from .summary import summarize

log = logging.getLogger(__name__)
REQUIRED_COLUMNS = ("patient_id", "probability", "label", "centre")


class ReportInputError(LymphCastError, ValueError):
    """The frame handed to write_report cannot be evaluated (missing column, bad values)."""


def _prepare(frame: pd.DataFrame, oracle_column: str | None, group_columns) -> tuple[pd.DataFrame, dict]:
    """Check columns and values; drop rows that cannot be evaluated and count them by reason."""
    wanted = [*REQUIRED_COLUMNS, *([oracle_column] if oracle_column else []), *group_columns]
    missing = [c for c in dict.fromkeys(wanted) if c not in frame.columns]
    if missing:
        raise ReportInputError(f"the evaluation frame lacks required column(s): {', '.join(missing)}")
    data = frame.copy()
    for column in ("label", "probability", *([oracle_column] if oracle_column else [])):
        numeric = pd.to_numeric(data[column], errors="coerce")
        bad = int((numeric.isna() & data[column].notna()).sum())
        if bad:
            raise ReportInputError(f"column '{column}' has {bad} non-numeric value(s)")
        data[column] = numeric
    if not data["label"].dropna().isin([0, 1]).all():
        raise ReportInputError("column 'label' must hold 0, 1 or a blank")
    prob = data["probability"].dropna()
    if ((prob < 0) | (prob > 1)).any():
        raise ReportInputError("column 'probability' must lie between 0 and 1")
    excluded = {"missing label": int(data["label"].isna().sum())}
    data = data[data["label"].notna()]
    excluded["missing probability"] = int(data["probability"].isna().sum())
    data = data[data["probability"].notna()].reset_index(drop=True)
    data["label"] = data["label"].astype(int)
    if data.empty or data["label"].nunique() < 2:
        raise ReportInputError(f"after exclusions {len(data)} rows remain with {int(data['label'].sum())} "
                               "events; an evaluation needs both events and non-events")
    return data, excluded


def _patient_clusters(data: pd.DataFrame):
    """Patient ids when a patient has several rows (e.g. one per node): those rows are resampled together."""
    return data["patient_id"].astype(str).to_numpy() if data["patient_id"].duplicated().any() else None


def build_metrics(data: pd.DataFrame, *, threshold, oracle_column, group_columns, seed: int,
                  n_boot: int) -> dict:
    y, p = data["label"].to_numpy(), data["probability"].to_numpy()
    clusters = _patient_clusters(data)
    metrics = summarize(y, p, threshold=threshold, clusters=clusters, seed=seed, n_boot=n_boot)
    metrics["seed"] = seed
    if oracle_column:
        both = data[data[oracle_column].notna()]
        y_o, oracle = both["label"].to_numpy(), both[oracle_column].to_numpy()
        metrics.update(oracle_column=oracle_column, oracle_n=len(both))
        if 0 < y_o.sum() < y_o.size:
            auc, low, high = auc_ci(y_o, oracle)
            metrics.update(oracle_auc=auc, oracle_auc_ci_low=low, oracle_auc_ci_high=high,
                           model_vs_oracle=delong_test(y_o, both["probability"].to_numpy(), oracle)._asdict())
        else:
            metrics["oracle_note"] = "reference risk missing or covering only one outcome class: not compared"
    metrics["per_centre"] = metrics_by_group(y, p, data["centre"], clusters=clusters, seed=seed)
    metrics["subgroups"] = [{"variable": column, **row} for column in group_columns
                            for row in metrics_by_group(y, p, data[column], clusters=clusters, seed=seed)]
    curve = net_benefit_curve(y, p, DEFAULT_THRESHOLDS)
    metrics["decision_curve"] = {name: values.tolist() for name, values in curve._asdict().items()}
    return metrics


def _figures(data: pd.DataFrame, metrics: dict, oracle_column, seed: int, n_boot: int) -> dict[str, str]:
    from . import plots

    y, p = data["label"].to_numpy(), data["probability"].to_numpy()
    band = roc_band(y, p, n_boot=n_boot, seed=seed, clusters=_patient_clusters(data))
    roc = plots.plot_roc(None, y, p, band=band, label=f"model (AUC {metrics['auc']:.2f})")
    calibration = plots.plot_calibration(None, y, p)
    decision = plots.plot_decision_curve(None, y, p, shade=CLINICAL_RANGE)
    if "oracle_auc" in metrics:
        both = data[data[oracle_column].notna()]
        y_o, oracle = both["label"].to_numpy(), both[oracle_column].to_numpy()
        plots.plot_roc(roc.axes[0], y_o, oracle, label=f"{oracle_column} (AUC {metrics['oracle_auc']:.2f})")
        if oracle.min() >= 0 and oracle.max() <= 1:  # a risk, not just a score: net benefit is defined
            plots.plot_decision_curve(decision.axes[0], y_o, oracle, label=oracle_column, references=False,
                                      shade=None)
    figures = {"roc": roc, "calibration": calibration, "decision": decision}
    if data["centre"].nunique() > 1:
        figures["roc_by_centre"] = plots.plot_roc_by_group(None, y, p, data["centre"], title="By centre")
    return {name: plots.figure_to_base64_png(fig) for name, fig in figures.items()}


def _jsonable(value):
    """Plain JSON types; NaN becomes null so the file is valid JSON for any reader."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def _flatten(mapping: dict, prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for key, value in mapping.items():
        if isinstance(value, dict):
            rows += _flatten(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", str(value)))
    return rows


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}f}"


def _with_ci(row: dict, key: str, digits: int = 3) -> str:
    estimate = row.get(key)
    if estimate is None or (isinstance(estimate, float) and not math.isfinite(estimate)):
        return "—"
    low, high = _fmt(row.get(key + "_ci_low"), digits), _fmt(row.get(key + "_ci_high"), digits)
    return f"{_fmt(estimate, digits)} ({low} to {high})"


def render_html(metrics: dict, figures: dict, title: str, gallery: list[dict] | None = None,
                clips: list[dict] | None = None, ct_gallery: list[dict] | None = None,
                cytology_gallery: list[dict] | None = None, fusion_figures: dict | None = None) -> str:
    from jinja2 import Environment, StrictUndefined

    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _fmt
    env.globals["ci"] = _with_ci
    template = env.from_string((files(__package__) / "templates" / "report.html.j2").read_text("utf-8"))
    return template.render(m=metrics, figures=figures, title=title, provenance=_flatten(metrics["provenance"]),
                           clinical_range=CLINICAL_RANGE, gallery=gallery or [], clips=clips or [],
                           ct_gallery=ct_gallery or [], cytology_gallery=cytology_gallery or [],
                           fusion_figures=fusion_figures or {})


def _write_atomically(out_dir: Path, contents: dict[str, str]) -> None:
    """Write every file to a temporary name first; only when all are written do they take their names."""
    out_dir.mkdir(parents=True, exist_ok=True)
    temps = {}
    try:
        for name, text in contents.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=out_dir)
            temps[name] = tmp
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; a report is meant to be shared
        for name, tmp in temps.items():
            os.replace(tmp, out_dir / name)
    finally:
        for tmp in temps.values():
            Path(tmp).unlink(missing_ok=True)


def write_report(frame: pd.DataFrame, out_dir: str | Path, *, title: str, provenance: dict,
                 threshold: float | None = None, oracle_column: str | None = None, group_columns=(),
                 seed: int = 0, n_boot: int = 1000, missing_data: dict[str, float] | None = None,
                 missing_data_handling: str = "", node_level: dict | None = None,
                 gallery: list[dict] | None = None, clips: list[dict] | None = None,
                 ct_node_level: dict | None = None, ct_gallery: list[dict] | None = None,
                 cytology_gallery: list[dict] | None = None, fusion: dict | None = None) -> dict:
    """Evaluate patient-level predictions and write out_dir/report.html and out_dir/metrics.json.

    `frame` needs patient_id, probability, label (0/1, blank = unknown) and centre. Returns the metrics
    as written to metrics.json. `missing_data` (field → share missing) and its handling text fill the report's
    missing-data section. `node_level` (node AUC, detection; from a node-level model) goes to metrics.json and a
    report section; `gallery` (dicts with category, patient_id, probability, label, node_id, node_probability,
    png and image_base64) fills the Grad-CAM gallery; `clips` (the same plus key_frames) the cine-clip panel;
    `ct_node_level` and `ct_gallery` the CT model's node AUC and 3D Grad-CAM panel; `cytology_gallery` (category,
    patient_id, probability, label, image_id, tiles, png, image_base64) the cytology attention maps; `fusion`
    (fusion.evaluation.fusion_sections: modalities, sides, levels, literature, readers, figures) a fused
    model's sections. Nothing is written unless the
    whole evaluation succeeds.
    """
    group_columns = list(group_columns)
    data, excluded = _prepare(frame, oracle_column, group_columns)
    metrics = build_metrics(data, threshold=threshold, oracle_column=oracle_column,
                            group_columns=group_columns, seed=seed, n_boot=n_boot)
    metrics["excluded"] = excluded
    metrics["n_excluded"] = sum(excluded.values())
    metrics["missing_data"] = [{"field": k, "missing_fraction": float(v)} for k, v in (missing_data or {}).items()]
    metrics["missing_data_handling"] = missing_data_handling
    if node_level is not None:
        metrics["node_level"] = node_level
    if ct_node_level is not None:
        metrics["ct_node_level"] = ct_node_level
    fusion_figures = {}
    if fusion is not None:
        fusion = dict(fusion)
        fusion_figures = fusion.pop("figures", {})
        metrics["fusion"] = fusion
    metrics["provenance"] = {"lymphcast_version": __version__, **provenance, "seed": seed}
    metrics = _jsonable(metrics)
    figures = _figures(data, metrics, oracle_column, seed, n_boot)
    html = render_html(metrics, figures, title, gallery, clips, ct_gallery, cytology_gallery, fusion_figures)
    _write_atomically(Path(out_dir), {"metrics.json": json.dumps(metrics, indent=2, allow_nan=False),
                                      "report.html": html})
    # Counts only: patient ids never go to logs.
    log.info("evaluation report written: %d rows, %d events, %d excluded", metrics["n"], metrics["events"],
             metrics["n_excluded"])
    return metrics
