"""Reader-study statistics: readers' calls against the truth, against the model at matched sensitivity,
and read with vs without the model's help. The CSV format is documented in `readers_io`.

Conventions shared by every function here:

- `calls` is what `read_reader_calls` returns (or any DataFrame with its columns). It is patient-level, or
  side-level when it has a `side` column. `labels` (0/1, NaN = unknown) and `model_prob` must be at the same
  level: a Series indexed by patient_id for patient-level calls (e.g. N1b), or by a (patient_id, side)
  MultiIndex for side-level calls (lateral status per side). Patient ids are matched as text and sides in
  lower case, so 17 and "17" are the same patient.
- A case without a label (missing from `labels`, or NaN) is left out and counted.
- Paired comparisons use an exact McNemar test on the same cases, split into the positives (sensitivity)
  and the negatives (specificity). b counts cases the first rater (the reader; or the unaided read) got
  right and the second (the model; or the aided read) got wrong, c the reverse; p is the two-sided binomial
  test of min(b, c) out of b + c (1 when b + c is 0, NaN when there are no such cases).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..cohort.schema import SIDES
from .classification import wilson_ci
from .readers_io import ReaderStudyError, read_reader_calls

__all__ = ["ReaderStudyError", "aided_vs_unaided", "matched_threshold", "read_reader_calls", "reader_figure",
           "reader_metrics", "versus_model"]

_NAN = float("nan")


def _prepare(calls: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """A normalised copy of the calls with a hashable `case` key column, and the level."""
    missing = [c for c in ("reader", "patient_id", "call") if c not in calls.columns]
    if missing:
        raise ReaderStudyError(f"reader calls lack column(s) {', '.join(missing)}; expected reader, "
                               "patient_id, call and optionally side, aided")
    calls = calls.copy()
    calls["aided"] = calls["aided"].fillna(0) if "aided" in calls else 0
    for column in ("call", "aided"):
        if not calls[column].isin((0, 1)).all():
            raise ReaderStudyError(f"reader calls: column '{column}' must hold 0/1 only")
        calls[column] = calls[column].astype(int)
    calls["patient_id"] = calls["patient_id"].astype(str)
    level = "side" if "side" in calls.columns else "patient"
    if level == "side":
        calls["side"] = calls["side"].astype(str).str.lower()
        if not calls["side"].isin(SIDES).all():
            raise ReaderStudyError(f"reader calls: column 'side' must hold {' or '.join(SIDES)} on every row")
        calls["case"] = list(zip(calls["patient_id"], calls["side"]))
    else:
        calls["case"] = calls["patient_id"]
    if calls.duplicated(["reader", "case", "aided"]).any():
        raise ReaderStudyError("reader calls hold more than one call for the same reader, case and aided"
                               + ("" if level == "side" else " (side-level calls need a side column)"))
    return calls, level


def _lookup(series: pd.Series, calls: pd.DataFrame, level: str, what: str, *, binary: bool) -> np.ndarray:
    """Values of `series` for each call's case (NaN where absent), after checking it is at the calls' level."""
    if not isinstance(series, pd.Series):
        raise ReaderStudyError(f"{what} must be a pandas Series indexed by patient_id or (patient_id, side)")
    index = series.index
    series_level = ("side" if isinstance(index, pd.MultiIndex) and index.nlevels == 2 else
                    "patient" if not isinstance(index, pd.MultiIndex) else None)
    if series_level != level:
        have = (f"side-level (indexed by (patient_id, side))" if series_level == "side" else
                "patient-level (indexed by patient_id)" if series_level == "patient" else
                f"indexed by a {index.nlevels}-level MultiIndex")
        need = ("side-level: the reader calls have a side column, so pass a Series indexed by "
                "(patient_id, side)" if level == "side" else
                "patient-level: the reader calls have no side column, so pass a Series indexed by patient_id")
        raise ReaderStudyError(f"{what} are {have} but must be {need}")
    if level == "side":
        keys = list(zip(index.get_level_values(0).astype(str), index.get_level_values(1).astype(str).str.lower()))
    else:
        keys = list(index.astype(str))
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    if len(set(keys)) != len(keys):
        raise ReaderStudyError(f"{what} list some case more than once")
    if binary and not np.isin(values[~np.isnan(values)], (0, 1)).all():
        raise ReaderStudyError(f"{what} must be 0/1 (NaN where unknown)")
    found = dict(zip(keys, values))
    out = np.array([found.get(case, _NAN) for case in calls["case"]], dtype=float)
    if np.isnan(out).all():
        raise ReaderStudyError(f"none of the {calls['case'].nunique()} cases in the reader calls has {what}; "
                               f"check the patient ids match (calls have e.g. {calls['case'].iloc[0]!r}, "
                               f"{what} e.g. {keys[0] if keys else None!r})")
    return out


def _rate(name: str, k: int, n: int, alpha: float) -> dict:
    estimate, low, high = wilson_ci(int(k), int(n), alpha)
    return {name: estimate, f"{name}_ci_low": low, f"{name}_ci_high": high}


def _mcnemar(name: str, first_right, second_right) -> dict:
    """Exact McNemar on paired right/wrong: b = first right & second wrong, c = the reverse."""
    first, second = np.asarray(first_right, bool), np.asarray(second_right, bool)
    b, c = int(np.sum(first & ~second)), int(np.sum(~first & second))
    p = _NAN
    if first.size:
        from statsmodels.stats.contingency_tables import mcnemar  # slow import, only when needed

        table = [[int(np.sum(first & second)), b], [c, int(np.sum(~first & ~second))]]
        p = float(mcnemar(table, exact=True).pvalue)
    return {f"{name}_b": b, f"{name}_c": c, f"{name}_pvalue": p}


def reader_metrics(calls: pd.DataFrame, labels: pd.Series, alpha: float = 0.05) -> list[dict]:
    """Sensitivity and specificity (Wilson CIs) per reader and aided/unaided.

    Keys: reader, aided (bool), level, n_cases (labelled, used), n_unlabelled (left out), n_positive,
    n_negative, tp, fn, tn, fp, sensitivity, specificity, each with _ci_low and _ci_high.
    """
    calls, level = _prepare(calls)
    calls["label"] = _lookup(labels, calls, level, "labels", binary=True)
    out = []
    for (reader, aided), group in calls.groupby(["reader", "aided"], sort=True):
        known = group[group["label"].notna()]
        y, call = known["label"].to_numpy(int), known["call"].to_numpy(int)
        tp, fn = int(np.sum((y == 1) & (call == 1))), int(np.sum((y == 1) & (call == 0)))
        tn, fp = int(np.sum((y == 0) & (call == 0))), int(np.sum((y == 0) & (call == 1)))
        out.append({"reader": reader, "aided": bool(aided), "level": level, "n_cases": len(known),
                    "n_unlabelled": len(group) - len(known), "n_positive": tp + fn, "n_negative": tn + fp,
                    "tp": tp, "fn": fn, "tn": tn, "fp": fp,
                    **_rate("sensitivity", tp, tp + fn, alpha), **_rate("specificity", tn, tn + fp, alpha)})
    return out


def matched_threshold(y, p, target_tp: int) -> float:
    """Largest threshold on the grid (every distinct score, plus one just above the top) at which at least
    `target_tp` positives score >= it: the model's sensitivity reaches the reader's with as few extra
    positive calls, and so as high a specificity, as the grid allows."""
    y, p = np.asarray(y, int), np.asarray(p, float)
    candidates = np.r_[np.unique(p), np.nextafter(p.max(), np.inf)]
    pos = np.sort(p[y == 1])
    tp = pos.size - np.searchsorted(pos, candidates, side="left")
    return float(candidates[tp >= target_tp].max())


def versus_model(calls: pd.DataFrame, labels: pd.Series, model_prob: pd.Series,
                 alpha: float = 0.05) -> list[dict]:
    """Each reader (unaided and aided reads separately) against the model at matched sensitivity.

    On the cases with a label and a model probability, the model's threshold is `matched_threshold`: the
    largest one whose sensitivity is at least the reader's. Tied model scores can make the model's
    sensitivity jump past the reader's; it is then matched from above (model_sensitivity is reported), which
    costs the model specificity and so favours the reader. The threshold is chosen on the very cases
    compared, so the model's specificity is somewhat optimistic; a prespecified threshold avoids that.

    Keys: reader, aided, level, n_cases, n_excluded (no label or no model probability), n_positive,
    n_negative, reader_sensitivity, reader_specificity, threshold, model_sensitivity, model_specificity
    (each rate with _ci_low and _ci_high), and McNemar sensitivity_b/_c/_pvalue on the positives and
    specificity_b/_c/_pvalue on the negatives (b: reader right, model wrong; c: the reverse).
    Model values are NaN where there are no positives to match.
    """
    calls, level = _prepare(calls)
    calls["label"] = _lookup(labels, calls, level, "labels", binary=True)
    calls["prob"] = _lookup(model_prob, calls, level, "model probabilities", binary=False)
    out = []
    for (reader, aided), group in calls.groupby(["reader", "aided"], sort=True):
        used = group[group["label"].notna() & group["prob"].notna()]
        y, call, p = used["label"].to_numpy(int), used["call"].to_numpy(int) == 1, used["prob"].to_numpy(float)
        pos, neg = y == 1, y == 0
        reader_tp, reader_tn = int(np.sum(call & pos)), int(np.sum(~call & neg))
        threshold = matched_threshold(y, p, reader_tp) if pos.any() else _NAN
        model = p >= threshold  # all False when the threshold is NaN
        matched = not np.isnan(threshold)
        model_tp = int(np.sum(model & pos)) if matched else 0
        model_tn = int(np.sum(~model & neg)) if matched else 0
        row = {"reader": reader, "aided": bool(aided), "level": level, "n_cases": len(used),
               "n_excluded": len(group) - len(used), "n_positive": int(pos.sum()), "n_negative": int(neg.sum()),
               **_rate("reader_sensitivity", reader_tp, pos.sum(), alpha),
               **_rate("reader_specificity", reader_tn, neg.sum(), alpha), "threshold": threshold,
               **_rate("model_sensitivity", model_tp, pos.sum() if matched else 0, alpha),
               **_rate("model_specificity", model_tn, neg.sum() if matched else 0, alpha),
               **_mcnemar("sensitivity", call[pos], model[pos]),
               **_mcnemar("specificity", ~call[neg], ~model[neg])}
        if not matched:
            row.update({k: _NAN for k in row if k.endswith(("_b", "_c", "_pvalue"))})
        out.append(row)
    return out


def aided_vs_unaided(calls: pd.DataFrame, labels: pd.Series) -> list[dict]:
    """For each reader with both aided and unaided reads: the change with the model's help, paired on the
    cases read both ways that have a label.

    Keys: reader, level, n_cases, n_unpaired (cases read only one way), n_unlabelled, n_positive,
    n_negative, sensitivity_unaided, sensitivity_aided, sensitivity_change, sensitivity_b/_c/_pvalue
    (McNemar on the positives), and the same for specificity on the negatives. b: unaided right, aided
    wrong (lost with help); c: unaided wrong, aided right (gained with help).
    """
    calls, level = _prepare(calls)
    calls["label"] = _lookup(labels, calls, level, "labels", binary=True)
    label_of = dict(zip(calls["case"], calls["label"]))
    out = []
    for reader, group in calls.groupby("reader", sort=True):
        reads = {a: dict(zip(g["case"], g["call"])) for a, g in group.groupby("aided")}
        if set(reads) != {0, 1}:
            continue
        both = [case for case in reads[0] if case in reads[1]]
        known = [case for case in both if not np.isnan(label_of[case])]
        y = np.array([label_of[case] for case in known], int)
        unaided = np.array([reads[0][case] for case in known], int) == 1
        aided = np.array([reads[1][case] for case in known], int) == 1
        pos, neg = y == 1, y == 0
        row = {"reader": reader, "level": level, "n_cases": len(known),
               "n_unpaired": len(reads[0]) + len(reads[1]) - 2 * len(both), "n_unlabelled": len(both) - len(known),
               "n_positive": int(pos.sum()), "n_negative": int(neg.sum())}
        for name, mask, right_unaided, right_aided in (("sensitivity", pos, unaided, aided),
                                                       ("specificity", neg, ~unaided, ~aided)):
            n = int(mask.sum())
            before = int(right_unaided[mask].sum()) / n if n else _NAN
            after = int(right_aided[mask].sum()) / n if n else _NAN
            row.update({f"{name}_unaided": before, f"{name}_aided": after, f"{name}_change": after - before,
                        **_mcnemar(name, right_unaided[mask], right_aided[mask])})
        out.append(row)
    return out


def reader_figure(metrics: list[dict], model_roc=None):
    """Readers' operating points in ROC space (unaided: open circle, aided: filled square, an arrow from
    one to the other) with Wilson 95% CI crosses, over the model's ROC curve when `model_roc` = (fpr, tpr)
    is given (roc_curve's (fpr, tpr, thresholds) works too). `metrics` is what reader_metrics returns."""
    from .plots import _axes, _roc_frame  # matplotlib, only when drawing

    fig, ax = _axes(None, size=(5.5, 5.0))
    if model_roc is not None:
        ax.plot(np.asarray(model_roc[0], float), np.asarray(model_roc[1], float), color="black", lw=1.5,
                label="model", zorder=1)
    by_reader: dict = {}
    for m in metrics:
        by_reader.setdefault(m["reader"], {})[bool(m["aided"])] = m
    for i, (reader, reads) in enumerate(by_reader.items()):
        colour, points = f"C{i % 10}", {}
        for aided, m in sorted(reads.items()):
            x, y = 1 - m["specificity"], m["sensitivity"]
            if not (np.isfinite(x) and np.isfinite(y)):
                continue  # no positives or no negatives: no operating point
            xerr = [[x - (1 - m["specificity_ci_high"])], [(1 - m["specificity_ci_low"]) - x]]
            yerr = [[y - m["sensitivity_ci_low"]], [m["sensitivity_ci_high"] - y]]
            ax.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="s" if aided else "o", color=colour,
                        mfc=colour if aided else "white", ms=6, capsize=2, lw=1, zorder=3,
                        label=None if points else str(reader))
            points[aided] = (x, y)
        if len(points) == 2:
            ax.annotate("", xy=points[True], xytext=points[False], zorder=2,
                        arrowprops={"arrowstyle": "->", "color": colour, "lw": 1.5})
    if any(True in reads for reads in by_reader.values()):
        # Marker key, so open/filled is readable without the docstring.
        ax.plot([], [], "o", color="grey", mfc="white", label="unaided")
        ax.plot([], [], "s", color="grey", label="aided")
    level = metrics[0]["level"] if metrics else None
    ax.set_title(f"Readers{f' ({level} level)' if level else ''}", fontsize=10)
    _roc_frame(ax)
    return fig
