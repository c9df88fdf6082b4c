"""3D Grad-CAM of the CT node network and its three-plane picture."""

from __future__ import annotations

import numpy as np
import torch

from lymphcast.explain.gradcam3d import PLANES, cube_heatmap, cube_picture, orthogonal_slices
from lymphcast.nets.ct_net import CtNet


def test_orthogonal_slices_follow_the_radiological_convention():
    # a (z, y, x) LPS cube: mark the superior, posterior and left faces
    v = np.zeros((8, 8, 8))
    v[-1] += 1    # head
    v[:, -1] += 10   # posterior
    v[:, :, -1] += 100  # patient's left
    planes = orthogonal_slices(v)
    assert planes["axial"][-1, 0] >= 10 and planes["axial"][0, 0] < 10        # posterior at the bottom
    assert planes["axial"][0, -1] >= 100 and planes["axial"][0, 0] < 100      # the left on the image's right
    assert planes["coronal"][0, 0] % 10 == 1 and planes["coronal"][-1, 0] % 10 == 0  # head at the top
    assert planes["sagittal"][0, 0] % 10 == 1 and planes["sagittal"][4, -1] >= 10   # head up, posterior right


def test_heatmap_has_the_cube_shape_and_unit_range_and_leaves_the_net_untouched():
    torch.manual_seed(0)
    net = CtNet(n_inputs=2, channels=(4, 8)).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    crop = np.random.default_rng(0).normal(60, 30, (2, 16, 16, 16)).astype(np.float32)
    heat = cube_heatmap(net, crop, np.array([True, True]))
    assert heat.shape == (16, 16, 16) and heat.min() >= 0 and heat.max() <= 1
    assert not net._forward_hooks and all(not m._forward_hooks for m in net.modules())
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_picture_has_two_rows_of_three_planes():
    hu = np.random.default_rng(1).normal(40, 50, (16, 16, 16))
    pic = cube_picture(hu, np.zeros_like(hu), panel_px=32)
    assert pic.dtype == np.uint8 and pic.shape == (2 * 32 + 4, 3 * 32 + 8, 3) and len(PLANES) == 3
