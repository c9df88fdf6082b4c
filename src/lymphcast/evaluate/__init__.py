"""Evaluation of risk predictions: statistics as pure functions on arrays, plots, and an HTML report.

Plots (matplotlib) and the report import their heavy dependencies only when called.
"""

from .bootstrap import RocBand, bootstrap_ci, bootstrap_indices, roc_band
from .calibration import brier_score, calibration_curve, calibration_intercept_slope
from .classification import ThresholdMetrics, threshold_metrics, wilson_ci
from .decision_curve import CLINICAL_RANGE, net_benefit_curve
from .discrimination import DelongTest, auc_ci, auc_score, delong_test, roc_curve
from .groups import metrics_by_group
from .report import ReportInputError, write_report
from .summary import summarize
from .thresholds import threshold_for_sensitivity, threshold_for_specificity, youden_threshold

__all__ = [
    "CLINICAL_RANGE", "DelongTest", "ReportInputError", "RocBand", "ThresholdMetrics", "auc_ci", "auc_score",
    "bootstrap_ci", "bootstrap_indices", "brier_score", "calibration_curve", "calibration_intercept_slope",
    "delong_test", "metrics_by_group", "net_benefit_curve", "roc_band", "roc_curve", "summarize",
    "threshold_for_sensitivity", "threshold_for_specificity", "threshold_metrics", "wilson_ci",
    "write_report", "youden_threshold",
]
