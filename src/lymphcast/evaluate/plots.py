"""Figures for the report. Each function draws on `ax` (or a new figure) and returns the Figure.

matplotlib is imported inside the functions so that importing lymphcast stays fast, and figures are built
on the Agg canvas directly (not pyplot), so no global backend or open-figure state is touched.
"""

from __future__ import annotations

import base64
import io

import numpy as np

from .bootstrap import RocBand
from .calibration import calibration_curve
from .decision_curve import CLINICAL_RANGE, net_benefit_curve
from .discrimination import auc_score, roc_curve
from .groups import group_label


def _axes(ax, size=(5.0, 4.5)):
    if ax is not None:
        return ax.figure, ax
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def plot_roc(ax, y, p, *, band: RocBand | None = None, label: str = "model", color: str | None = None):
    """ROC curve with an optional bootstrap band and the chance diagonal."""
    fig, ax = _axes(ax)
    fpr, tpr, _ = roc_curve(y, p)
    line, = ax.plot(fpr, tpr, color=color, lw=2, label=label)
    if band is not None:
        ax.fill_between(band.fpr, band.low, band.high, color=line.get_color(), alpha=0.2, lw=0,
                        label="95% bootstrap band")
    _roc_frame(ax)
    return fig


def _roc_frame(ax) -> None:
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 - specificity", ylabel="Sensitivity", aspect="equal")
    ax.legend(loc="lower right", fontsize="small")


def plot_roc_by_group(ax, y, p, groups, *, title: str | None = None):
    """One ROC curve per group level (levels with only one outcome class are skipped)."""
    fig, ax = _axes(ax)
    y, p = np.asarray(y), np.asarray(p, dtype=float)
    labels = np.array([group_label(v) for v in groups], dtype=object)
    for level in sorted(set(labels)):
        mask = labels == level
        if 0 < y[mask].sum() < mask.sum():
            fpr, tpr, _ = roc_curve(y[mask], p[mask])
            ax.plot(fpr, tpr, lw=1.5, label=f"{level} (n={mask.sum()}, AUC {auc_score(y[mask], p[mask]):.2f})")
    if title:
        ax.set_title(title)
    _roc_frame(ax)
    return fig


def plot_calibration(ax, y, p, *, n_bins: int = 10, strategy: str = "quantile", label: str = "model",
                     color: str | None = None):
    """Observed vs predicted risk per bin with Wilson intervals, a smooth-free reading of calibration."""
    fig, ax = _axes(ax)
    bins = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    # clip: Wilson bounds can sit a rounding error past the estimate when a bin is all 0 or all 1
    err = np.clip(np.vstack([bins.observed - bins.observed_low, bins.observed_high - bins.observed]), 0, None)
    ax.errorbar(bins.mean_predicted, bins.observed, yerr=err, fmt="o-", color=color, capsize=3, label=label)
    top = float(min(1.0, max(bins.observed_high.max(), bins.mean_predicted.max()) * 1.1 + 0.02))
    ax.plot([0, top], [0, top], ls=":", color="grey", lw=1, label="perfect calibration")
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="Predicted risk", ylabel="Observed fraction with N1b")
    ax.legend(loc="upper left", fontsize="small")
    return fig


def plot_decision_curve(ax, y, p, *, thresholds=None, label: str = "model", color: str | None = None,
                        references: bool = True, shade=CLINICAL_RANGE):
    """Net benefit against threshold risk; call again on the same axes with references=False to add a model."""
    fig, ax = _axes(ax, size=(6.0, 4.5))
    curve = net_benefit_curve(y, p, thresholds)
    ax.plot(curve.thresholds, curve.model, lw=2, color=color, label=label)
    if references:
        ax.plot(curve.thresholds, curve.treat_all, color="grey", lw=1, label="dissect all")
        ax.plot(curve.thresholds, curve.treat_none, color="black", lw=1, ls="--", label="dissect none")
        # Net benefit of treat-all plunges at high thresholds; keep the interesting part in view.
        prevalence = float(np.mean(y))
        ax.set_ylim(-0.05 * max(prevalence, 0.1), max(prevalence, 0.01) * 1.1)
        ax.set(xlabel="Threshold risk for lateral neck dissection", ylabel="Net benefit")
    if shade is not None:
        ax.axvspan(*shade, color="tab:green", alpha=0.08, lw=0,
                   label=f"usual decision range ({shade[0]:.0%}-{shade[1]:.0%})")
    ax.legend(loc="upper right", fontsize="small")
    return fig


def figure_to_base64_png(fig, dpi: int = 110) -> str:
    """PNG bytes of `fig`, base64-encoded for an <img src="data:image/png;base64,..."> tag."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
