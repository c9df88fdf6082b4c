import base64

import numpy as np
import pytest

from lymphcast.evaluate import plots, roc_band

from .conftest import simulate


@pytest.fixture(scope="module")
def data():
    y, p, _ = simulate(200, seed=1)
    return y, p


def test_each_plot_returns_a_figure_that_renders_to_png(data):
    from matplotlib.figure import Figure

    y, p = data
    groups = np.array(["A", "B"] * 100)
    figures = [plots.plot_roc(None, y, p, band=roc_band(y, p, n_boot=50)), plots.plot_calibration(None, y, p),
               plots.plot_decision_curve(None, y, p), plots.plot_roc_by_group(None, y, p, groups)]
    for fig in figures:
        assert isinstance(fig, Figure)
        png = base64.b64decode(plots.figure_to_base64_png(fig, dpi=40))
        assert png.startswith(b"\x89PNG")


def test_drawing_on_given_axes_adds_to_that_figure(data):
    y, p = data
    fig = plots.plot_roc(None, y, p, label="model")
    again = plots.plot_roc(fig.axes[0], y, np.sqrt(p), label="other")
    assert again is fig and len(fig.axes) == 1
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "model" in labels and "other" in labels
