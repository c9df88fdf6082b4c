"""Grad-CAM heat maps of the ultrasound node model: shapes and range, where the heat goes, overlays, PNGs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lymphcast.cohort import LymphCastError
from lymphcast.explain import heatmap_picture, node_heatmaps, overlay, save_heatmap_png, view_heatmaps
from lymphcast.modalities.us_regions import image_nodes


def _nodes(cohort, patients, n=6):
    nodes = image_nodes(cohort)
    return nodes.loc[nodes["patient_id"].isin(patients), "node_id"].head(n).tolist()


def test_heatmaps_have_the_region_shape_lie_in_unit_range_and_vary(us_cohort, us_model, external_ids):
    node_ids = _nodes(us_cohort, external_ids)
    maps = node_heatmaps(us_model, us_cohort, node_ids)
    assert list(maps) == node_ids
    for views in maps.values():
        assert 1 <= len(views) <= 2
        for image, heat in views:
            assert image.shape == heat.shape == (us_model.size, us_model.size)
            assert image.dtype == np.uint8 and heat.dtype == np.float32
            assert heat.min() >= 0.0 and heat.max() <= 1.0
            assert heat.max() > heat.min()


def test_heatmaps_leave_no_hooks_on_the_fitted_network(us_cohort, us_model, external_ids):
    node_heatmaps(us_model, us_cohort, _nodes(us_cohort, external_ids, 2))
    for module in us_model.network().modules():
        assert not module._forward_hooks and not module._backward_hooks


def test_node_without_image_is_a_clear_error(us_cohort, us_model):
    with pytest.raises(LymphCastError, match="no ultrasound image"):
        node_heatmaps(us_model, us_cohort, ["no-such-node"])


def _square_images(rng, n, size=32, side=8):
    """Noise; label 1 images carry a bright side x side square at a random place. Returns pixels
    (n, 2, size, size) uint8 (Doppler zero), labels, and the squares' corners."""
    pixels = np.zeros((n, 2, size, size), np.uint8)
    pixels[:, 0] = rng.integers(60, 120, (n, size, size))
    y = rng.integers(0, 2, n)
    corners = rng.integers(0, size - side, (n, 2))
    for i in np.flatnonzero(y):
        r, c = corners[i]
        pixels[i, 0, r:r + side, c:c + side] = 250
    return pixels, y, corners


def _train_square_net():
    import torch

    from lymphcast.nets.node_cnn import NodeNet, prepare

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = NodeNet(channels=(4, 8), extra=3, hidden=16, dropout=0.0)  # its own extra width: any width works
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(20):
        pixels, y, _ = _square_images(rng, 32)
        x = prepare(torch.from_numpy(pixels))[:, None]
        logit = net(x, torch.zeros(32, 1, 3), torch.ones(32, 1, dtype=torch.bool))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, torch.from_numpy(y).float())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def test_heat_concentrates_on_the_bright_square_the_decision_rests_on():
    net = _train_square_net()
    pixels = np.zeros((1, 2, 32, 32), np.uint8)
    pixels[0, 0] = np.random.default_rng(1).integers(60, 120, (32, 32))
    pixels[0, 0, 18:26, 4:12] = 250  # the square, at a known place
    [(image, heat)] = view_heatmaps(net, pixels, np.zeros((1, 3), np.float32), np.array([True]))
    assert (image == pixels[0, 0]).all()
    inside = np.zeros_like(heat, bool)
    inside[16:28, 2:14] = True  # the square and a 2-pixel rim (heat comes from a coarse 8 x 8 grid)
    assert heat[inside].mean() > 5 * heat[~inside].mean()  # typically 25-60 times
    assert inside[np.unravel_index(heat.argmax(), heat.shape)]


def test_overlay_without_heat_is_the_grey_image():
    image = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    rgb = overlay(image, np.zeros((8, 8)))
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    assert (rgb == image[..., None]).all()


def test_overlay_colours_where_the_heat_is():
    image = np.full((8, 8), 100, np.uint8)
    heat = np.zeros((8, 8))
    heat[2:4, 2:4] = 1.0
    rgb = overlay(image, heat).astype(int)
    assert (rgb[0, 0] == 100).all()
    assert np.ptp(rgb[3, 3]) > 50  # coloured, no longer grey


def test_overlay_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same shape"):
        overlay(np.zeros((8, 8), np.uint8), np.zeros((4, 4)))


def test_saved_png_shows_grey_and_overlay_per_view(tmp_path):
    views = [(np.full((16, 16), 80, np.uint8), np.linspace(0, 1, 256).reshape(16, 16))] * 2
    path = save_heatmap_png(views, tmp_path / "sub" / "node.png", panel_px=64)
    with Image.open(path) as png:
        assert png.format == "PNG" and png.mode == "RGB"
        assert png.size == (4 * 64 + 3 * 4, 64)
    assert heatmap_picture(views[:1], panel_px=16).shape == (16, 2 * 16 + 4, 3)
