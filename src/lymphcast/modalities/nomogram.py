"""Nomogram of a logistic clinical model: points per feature value and the total-points → risk scale.

Each feature's term of the linear predictor is shifted so its lowest value scores 0 points; one log-odds unit
is worth the same number of points on every axis, fixed so the feature with the widest range of terms spans
100 points. Total points then map back to the probability exactly:
    logit P = intercept + total_points * log_odds_per_point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit, logit

DEFAULT_RISKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)


@dataclass(frozen=True)
class Nomogram:
    """`table` has one row per axis tick: feature, value (None for 'missing'), log_odds (above the feature's
    lowest term) and points."""

    table: pd.DataFrame
    offsets: dict[str, float]  # each feature's lowest term, the 0-point mark of its axis
    log_odds_per_point: float
    intercept: float  # log-odds at 0 total points

    def points(self, terms: pd.DataFrame) -> pd.DataFrame:
        """Per-patient points from the model's uncentred terms (ClinicalModel.log_odds_terms)."""
        return (terms[list(self.offsets)] - pd.Series(self.offsets)) / self.log_odds_per_point

    def probability(self, total_points) -> np.ndarray:
        return expit(self.intercept + np.asarray(total_points, dtype=float) * self.log_odds_per_point)

    @property
    def max_total(self) -> float:
        return float(self.table.groupby("feature", sort=False)["points"].max().sum())


def nice_ticks(lo: float, hi: float, n: int = 6) -> np.ndarray:
    """Round tick values (steps of 1, 2, 2.5 or 5 × 10^k) covering [lo, hi]."""
    if not hi > lo:
        return np.array([lo])
    raw = (hi - lo) / n
    magnitude = 10 ** np.floor(np.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return np.arange(np.floor(lo / step) * step, np.ceil(hi / step) * step + step / 2, step)


def _axis_values(step, field_type: str, value_range) -> list:
    if field_type == "number":
        values = [float(v) for v in nice_ticks(*value_range)]
    elif field_type == "binary":
        values = [0, 1]
    else:
        values = list(step[-1].categories_[0])
    if len(step[0].indicator_.features_):  # missing values were seen in training, so they have a term
        values.append(None)
    return values


def build_nomogram(transformer, coef: np.ndarray, intercept: float, types: dict[str, str],
                   number_ranges: dict[str, tuple[float, float]]) -> Nomogram:
    """Evaluate every feature's term on its axis values through the fitted per-field transformers."""
    rows, offsets = [], {}
    for name, field_type in types.items():
        step = transformer.named_transformers_[name]
        values = _axis_values(step, field_type, number_ranges.get(name))
        column = pd.Series([np.nan if v is None else v for v in values],
                           dtype=object if field_type == "category" else float)
        terms = step.transform(pd.DataFrame({name: column})) @ coef[transformer.output_indices_[name]]
        offsets[name] = float(terms.min())
        rows += [(name, v, t - offsets[name]) for v, t in zip(values, terms)]
    table = pd.DataFrame(rows, columns=["feature", "value", "log_odds"])
    widest = table.groupby("feature", sort=False)["log_odds"].max().max()
    per_point = widest / 100 if widest > 0 else 1.0  # an all-zero model still gets a usable (flat) scale
    table["points"] = table["log_odds"] / per_point
    return Nomogram(table, offsets, per_point, intercept + sum(offsets.values()))


def _label_rows(positions, labels, char_width: float = 1.1) -> list[int]:
    """Greedy stacking of labels that would overlap: row 0 below the axis, 1 above, 2 further below, ..."""
    ends: list[float] = []  # right end of the last label in each row
    rows = [0] * len(labels)
    for i in sorted(range(len(labels)), key=lambda k: positions[k]):
        half = len(labels[i]) * char_width / 2
        row = next((r for r, end in enumerate(ends) if positions[i] - half > end + 1), len(ends))
        if row == len(ends):
            ends.append(0.0)
        ends[row] = positions[i] + half
        rows[i] = row
    return rows


ROW_PT = 9  # vertical step between stacked label rows, in points


def _draw_axis(ax, label: str, positions, labels, rows) -> None:
    ax.set_xlim(-5, 105)
    ax.set_ylim(-1, 1)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_position(("data", 0))
    if len(positions):
        ax.spines["bottom"].set_bounds(min(positions), max(positions))
    ax.set_xticks(positions, [""] * len(positions))
    for x, text, row in zip(positions, labels, rows):
        below = row % 2 == 0
        offset = -(4 + ROW_PT * (row // 2)) if below else 2 + ROW_PT * (row // 2)
        ax.annotate(text, (x, 0), xytext=(0, offset), textcoords="offset points", ha="center",
                    va="top" if below else "bottom", fontsize=7, annotation_clip=False)
    ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    ax.set_facecolor("none")


def _label(value) -> str:
    if value is None:
        return "missing"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _axes_content(nomogram: Nomogram, risks) -> list[tuple[str, list[float], list[str]]]:
    """(title, positions on the 0-100 ruler, labels) of every axis, top to bottom."""
    ruler = np.arange(0, 101, 10)
    axes = [("Points", list(ruler), [f"{p:g}" for p in ruler])]
    for name in nomogram.offsets:
        rows = nomogram.table[nomogram.table["feature"] == name]
        merged: dict[float, list[str]] = {}  # levels with the same points share one tick
        for value, points in zip(rows["value"], rows["points"]):
            merged.setdefault(round(float(points), 6), []).append(_label(value))
        axes.append((name, list(merged), ["/".join(v) for v in merged.values()]))
    total = nomogram.max_total or 1.0
    ticks = nice_ticks(0, total)
    ticks = ticks[ticks <= total + 1e-9]
    axes.append(("Total points", list(ticks * 100 / total), [f"{t:g}" for t in ticks]))
    at = (logit(np.asarray(risks, dtype=float)) - nomogram.intercept) / nomogram.log_odds_per_point
    keep = (at >= 0) & (at <= total)
    axes.append(("Risk of N1b", list(at[keep] * 100 / total), [f"{r:g}" for r in np.asarray(risks)[keep]]))
    return axes


def plot_nomogram(nomogram: Nomogram, *, risks=DEFAULT_RISKS, title: str | None = None):
    """The classic drawing: a points ruler, one axis per predictor, a total-points axis and a risk axis."""
    from matplotlib.figure import Figure

    content = _axes_content(nomogram, risks)
    rows = [_label_rows(positions, labels) for _, positions, labels in content]
    heights = [0.45 + ROW_PT / 72 * max(r, default=0) / 2 + 0.1 for r in rows]  # inches, grows with stacking
    fig = Figure(figsize=(9, sum(heights) + (0.5 if title else 0.2)))
    axes = fig.subplots(len(content), 1, gridspec_kw={"height_ratios": heights, "hspace": 0.0})
    fig.subplots_adjust(left=0.27, right=0.97, top=1 - (0.5 if title else 0.1) / fig.get_figheight(),
                        bottom=0.15 / fig.get_figheight())
    for ax, (name, positions, labels), label_rows in zip(axes, content, rows):
        _draw_axis(ax, name, positions, labels, label_rows)
    if title:
        fig.suptitle(title)
    return fig
