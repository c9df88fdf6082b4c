import numpy as np
import pandas as pd
import pytest

from lymphcast.evaluate import net_benefit_curve

from .conftest import simulate


def test_net_benefit_matches_dcurves():
    dcurves = pytest.importorskip("dcurves")
    y, p, _ = simulate(400, seed=9)
    thresholds = np.round(np.arange(1, 100) / 100, 2)
    reference = dcurves.dca(data=pd.DataFrame({"n1b": y, "model": p}), outcome="n1b", modelnames=["model"],
                            thresholds=thresholds)
    ours = net_benefit_curve(y, p, thresholds)
    for name, values in (("model", ours.model), ("all", ours.treat_all), ("none", ours.treat_none)):
        expected = reference.loc[reference["model"] == name, "net_benefit"].to_numpy()
        np.testing.assert_allclose(values, expected, atol=1e-12, err_msg=name)


def test_net_benefit_by_hand():
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.6, 0.2, 0.5, 0.1, 0.05])
    curve = net_benefit_curve(y, p, [0.2])
    # Treated: p >= 0.2 -> 2 true positives, 1 false positive; odds 0.25.
    assert curve.model[0] == pytest.approx(2 / 5 - 1 / 5 * 0.25)
    assert curve.treat_all[0] == pytest.approx(2 / 5 - 3 / 5 * 0.25)
    assert curve.treat_none[0] == 0


def test_default_thresholds_span_1_to_50_percent():
    y, p, _ = simulate(100, seed=1)
    curve = net_benefit_curve(y, p)
    assert curve.thresholds[0] == 0.01 and curve.thresholds[-1] == 0.5 and curve.thresholds.size == 50
    with pytest.raises(ValueError):
        net_benefit_curve(y, p, [0.5, 1.0])
