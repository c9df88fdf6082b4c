"""The report's fusion sections: each modality against the fused model, neck sides and levels, the rule
"dissect the side where ultrasound is suspicious", the literature panel and, given reader calls, the readers.

Every comparison is paired on the patients (or sides) that have both scores, with DeLong's test for AUCs and
McNemar's at matched sensitivity for yes/no calls (evaluate.readers), so a modality that only some patients have
is compared on those patients alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..cohort import Cohort
from ..evaluate.discrimination import auc_ci, delong_test
from ..modalities.node_training import side_labels
from .design import level_labels

US_RULE = "ultrasound-suspicious side"


def _auc_row(name: str, y: np.ndarray, p: np.ndarray) -> dict:
    row = {"name": name, "n": int(len(y)), "events": int(y.sum())}
    if 0 < y.sum() < len(y):
        row["auc"], row["auc_ci_low"], row["auc_ci_high"] = auc_ci(y, p)
    return row


def modality_rows(fused: pd.Series, modalities: pd.DataFrame, labels: pd.Series) -> list[dict]:
    """AUC (DeLong CI) of the fused model and of each modality on the patients that have it, with the paired
    DeLong test fused − modality on those patients."""
    labels = labels.dropna().astype(int)
    rows = [_auc_row("fused", labels.to_numpy(), fused.loc[labels.index].to_numpy(float))]
    for name in modalities.columns:
        p = modalities[name].reindex(labels.index)
        have = p.notna().to_numpy()
        y = labels.to_numpy()[have]
        row = _auc_row(name, y, p.to_numpy(float)[have])
        if "auc" in row and have.sum() > 2:
            test = delong_test(y, fused.loc[labels.index].to_numpy(float)[have], p.to_numpy(float)[have])
            row.update(fused_minus=test.difference, fused_minus_ci_low=test.difference_ci_low,
                       fused_minus_ci_high=test.difference_ci_high, p_value=test.p_value,
                       coverage=float(have.mean()))
        rows.append(row)
    return rows


def side_section(model, cohort: Cohort, scored: dict) -> dict | None:
    """Side-level AUC of the fused side risks, per-level AUC of the level risks, and the fused side risk against
    the ultrasound rule at matched sensitivity (McNemar)."""
    from ..evaluate.readers import versus_model

    y_sides = side_labels(cohort)
    if y_sides is None:
        return None
    y_sides = y_sides.dropna().astype(int)
    sides = scored["sides"].reindex(y_sides.index)
    out = {"auc": _auc_row("fused sides", y_sides.to_numpy(), sides.to_numpy(float))}
    threshold = getattr(model, "us_rule_threshold_", None)
    if threshold is not None and "us_image" in getattr(model, "models_", {}):
        us = scored["side_modalities"]["us_image"].reindex(y_sides.index)  # already scored: no second read
        have = us.notna()
        calls = pd.DataFrame({"reader": US_RULE, "patient_id": y_sides.index.get_level_values(0)[have],
                              "side": y_sides.index.get_level_values(1)[have],
                              "call": (us[have] >= threshold).astype(int).to_numpy(), "aided": 0})
        # versus_model's "threshold" is the fused risk's, matched to the rule's sensitivity
        out["us_rule"] = {**versus_model(calls, y_sides[have], sides[have])[0], "us_threshold": float(threshold)}
    if "levels" in scored:
        levels = scored["levels"]
        y_levels = level_labels(cohort.nodes, y_sides, levels.index).dropna().astype(int)
        rows = [_auc_row("all levels", y_levels.to_numpy(), levels.loc[y_levels.index].to_numpy(float))]
        for lv in ("II", "III", "IV", "V"):
            part = y_levels[y_levels.index.get_level_values("level") == lv]
            rows.append(_auc_row(f"level {lv}", part.to_numpy(), levels.loc[part.index].to_numpy(float)))
        out["levels"] = rows
    return out


def operating_points(model, cohort: Cohort, scored: dict, threshold: float) -> list[dict]:
    """Sensitivity and specificity (Wilson CIs) of the fused model at its threshold and of the ultrasound and CT
    models at theirs (Youden on the stacking patients, which they never trained on): the points the literature
    panel places."""
    from ..evaluate.classification import threshold_metrics

    labels = cohort.labels().dropna().astype(int)
    points = []
    candidates = [("fused model", scored["patients"], threshold)]
    for name in ("us_image", "ct"):
        own = getattr(model, "model_thresholds_", {}).get(name)
        if own is not None:
            candidates.append((f"{name} model", scored["modalities"][name], own))
    for name, p, cut in candidates:
        p = p.reindex(labels.index)
        have = p.notna().to_numpy()
        if have.sum() < 2 or labels[have].nunique() < 2:
            continue
        m = threshold_metrics(labels.to_numpy()[have], p.to_numpy(float)[have], float(cut)).to_dict()
        points.append({"name": name, "threshold": float(cut), **{k: m[k] for k in m if k.startswith(("sensitivity",
                                                                                                      "specificity"))}})
    return points


def fusion_sections(model, cohort: Cohort, threshold: float, readers_csv=None, *, intermediate=None,
                    n_failures: int = 5) -> dict:
    """Everything the report's fusion part needs, figures as base64 PNGs. `threshold` (the fused model's Youden
    threshold) also marks the failure analysis's missed patients; `intermediate`: a fitted
    fusion.intermediate.IntermediateFusion to compare stacking with (optional)."""
    from .failures import worst_false_negatives
    from ..evaluate.literature import auc_anchors, literature_figure, literature_table
    from ..evaluate.plots import figure_to_base64_png, plot_roc

    scored = model.predict_levels(cohort)
    labels = cohort.labels()
    section = {"modalities": modality_rows(scored["patients"], scored["modalities"], labels)}
    sides = side_section(model, cohort, scored)
    if sides is not None:
        section["sides"] = sides
    points = operating_points(model, cohort, scored, threshold)
    section["literature"] = {"rows": literature_table(points), "anchors": auc_anchors()}
    known = labels.dropna().astype(int)
    roc = plot_roc(None, known.to_numpy(), scored["patients"].loc[known.index].to_numpy(float), label="fused")
    for name in scored["modalities"].columns:
        p = scored["modalities"][name].reindex(known.index)
        have = p.notna().to_numpy()
        if have.sum() > 2 and 0 < known[have].sum() < have.sum():
            plot_roc(roc.axes[0], known.to_numpy()[have], p.to_numpy(float)[have], label=name)
    figures = {"roc_modalities": figure_to_base64_png(roc), "literature": figure_to_base64_png(literature_figure(points))}
    if readers_csv is not None:
        section["readers"] = reader_section(readers_csv, cohort, scored, figures)
    section["failures"], figures["failures"] = worst_false_negatives(model, cohort, threshold, scored, n=n_failures)
    if intermediate is not None:
        from .intermediate import comparison_section

        section["intermediate"] = comparison_section(scored["patients"], intermediate.predict_proba(cohort), labels,
                                                     intermediate.training_summary_)
    section["figures"] = figures
    return section


def reader_section(path, cohort: Cohort, scored: dict, figures: dict) -> dict:
    """Reader calls (evaluate.readers format) against the recorded labels and the fused model, at the calls'
    level (patient or side)."""
    from ..evaluate.plots import figure_to_base64_png
    from ..evaluate.readers import aided_vs_unaided, read_reader_calls, reader_figure, reader_metrics, versus_model

    calls = read_reader_calls(path)
    if "side" in calls.columns:
        labels, prob = side_labels(cohort), scored["sides"]
        if labels is None:
            from ..cohort import LymphCastError

            raise LymphCastError(f"{path}: reader calls are per side, but the cohort has no side labels "
                                 f"(lateral_left, lateral_right in patients.csv)")
    else:
        labels, prob = cohort.labels(), scored["patients"]
    labels = labels.astype(float)
    metrics = reader_metrics(calls, labels)
    figures["readers"] = figure_to_base64_png(reader_figure(metrics))
    return {"metrics": metrics, "versus_model": versus_model(calls, labels, prob),
            "aided": aided_vs_unaided(calls, labels), "level": "side" if "side" in calls.columns else "patient"}
