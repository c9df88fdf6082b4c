import numpy as np
import pytest

from lymphcast.evaluate import auc_ci, metrics_by_group, summarize, youden_threshold
from lymphcast.evaluate.groups import group_label
from lymphcast.evaluate.summary import GIVEN_RULE, YOUDEN_RULE

from .conftest import simulate

REQUIRED = {"n", "events", "auc", "auc_ci_low", "auc_ci_high", "sensitivity", "specificity", "ppv", "npv",
            "accuracy", "threshold", "threshold_rule", "brier", "calibration_intercept", "calibration_slope",
            "sensitivity_ci_low", "specificity_ci_high", "calibration_slope_ci_low", "calibration_intercept_ci_high"}


def test_summary_has_the_headline_keys_and_uses_the_given_threshold():
    y, p, _ = simulate(300, seed=1)
    out = summarize(y, p, threshold=0.25)
    assert REQUIRED <= set(out)
    assert out["n"] == 300 and out["events"] == int(y.sum())
    assert out["threshold"] == 0.25 and out["threshold_rule"] == GIVEN_RULE
    assert (out["auc"], out["auc_ci_low"], out["auc_ci_high"]) == pytest.approx(auc_ci(y, p))
    assert out["sensitivity"] == pytest.approx(np.mean(p[y == 1] >= 0.25))
    assert [r["target_sensitivity"] for r in out["rule_out"]] == [0.90, 0.95]
    assert all(r["sensitivity"] >= r["target_sensitivity"] for r in out["rule_out"])


def test_without_a_threshold_youden_is_used_and_flagged():
    y, p, _ = simulate(300, seed=2)
    out = summarize(y, p)
    assert out["threshold"] == youden_threshold(y, p)
    assert out["threshold_rule"] == YOUDEN_RULE and "optimistic" in out["threshold_rule"]


def test_clustered_rows_get_a_cluster_bootstrap_interval():
    y, p, _ = simulate(200, seed=3)
    out = summarize(y, p, clusters=np.arange(200) // 2, n_boot=200)
    assert out["n_clusters"] == 100 and "bootstrap" in out["auc_ci_method"]
    assert out["auc_ci_low"] < out["auc"] < out["auc_ci_high"]


def test_group_labels_are_readable():
    assert [group_label(v) for v in (1.0, 0, "F", float("nan"), None, 2.5)] == ["1", "0", "F", "missing",
                                                                                "missing", "2.5"]


def test_groups_with_one_class_are_reported_not_fatal():
    y, p, _ = simulate(200, seed=4)
    groups = np.where(np.arange(200) < 150, "big", "small").astype(object)
    y = y.copy()
    y[150:] = 0
    rows = {r["group"]: r for r in metrics_by_group(y, p, groups)}
    assert rows["small"]["auc"] is None and "one outcome class" in rows["small"]["note"]
    assert rows["big"]["auc"] == pytest.approx(auc_ci(y[:150], p[:150])[0])
    assert rows["big"]["n"] == 150 and rows["small"]["events"] == 0
