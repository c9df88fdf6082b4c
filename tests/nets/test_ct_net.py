"""CtNet, its input scaling and the 3D augmentation, on 16^3 cubes."""

from __future__ import annotations

import numpy as np
import torch

from lymphcast.nets.ct_augment import augment
from lymphcast.nets.ct_net import CtNet, in_channels, prepare


def _cubes(b=4, c=2, s=16):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(b, c, s, s, s, generator=gen) * 40 + 40
    if c > 1:
        x[:, 1] = x[:, 1].abs() / 20  # iodine, mg/mL
    return x, torch.ones(b, c, dtype=torch.bool)


def test_prepare_windows_hu_and_zeroes_an_absent_iodine_map():
    x, present = _cubes()
    present[1, 1] = False
    out = prepare(x, present)
    assert out.shape == (4, in_channels(2), 16, 16, 16)
    assert out[:, 0].min() >= -1 and out[:, 0].max() <= 1  # the soft-tissue window
    assert torch.all(out[1, 2] == 0) and torch.any(out[0, 2] != 0)


def test_network_gives_one_logit_per_cube_and_ignores_absent_channel_values():
    x, present = _cubes()
    present[:, 1] = False
    net = CtNet(n_inputs=2, channels=(4, 8)).eval()
    with torch.no_grad():
        a = net(prepare(x, present), present)
        x2 = x.clone()
        x2[:, 1] = 99.0  # whatever an absent iodine channel holds, it never reaches the network
        b = net(prepare(x2, present), present)
    assert a.shape == (4,)
    torch.testing.assert_close(a, b)


def test_single_energy_network_takes_one_input():
    x, present = _cubes(c=1)
    net = CtNet(n_inputs=1, channels=(4, 8)).eval()
    with torch.no_grad():
        assert net(prepare(x, present), present).shape == (4,)


def test_augmentation_is_replayable_and_keeps_shapes():
    x, present = _cubes(b=8)
    a, pa = augment(x, present, torch.Generator().manual_seed(5), drop_iodine=0.5)
    b, pb = augment(x, present, torch.Generator().manual_seed(5), drop_iodine=0.5)
    torch.testing.assert_close(a, b)
    assert torch.equal(pa, pb) and a.shape == x.shape
    assert torch.all(a[~pa[:, 1], 1] == 0)  # a dropped iodine map is zeros, flagged absent
    assert not torch.equal(a, x)


def test_augmentation_never_invents_an_iodine_map():
    x, present = _cubes(b=8)
    present[:, 1] = False
    x[:, 1] = 0
    _, pa = augment(x, present, torch.Generator().manual_seed(1), drop_iodine=0.0)
    assert not pa[:, 1].any()


def test_a_centred_blob_stays_near_the_centre_after_augmentation():
    s = 16
    z, y, xx = np.meshgrid(*[np.arange(s)] * 3, indexing="ij")
    blob = torch.from_numpy(((z - 8) ** 2 + (y - 8) ** 2 + (xx - 8) ** 2 <= 9).astype(np.float32) * 100)
    x = blob[None, None].repeat(6, 1, 1, 1, 1)
    out, _ = augment(x, torch.ones(6, 1, dtype=torch.bool), torch.Generator().manual_seed(2))
    for cube in out[:, 0].numpy():
        w = np.clip(cube - 50, 0, None)
        centre = [(w * g).sum() / w.sum() for g in (z, y, xx)]
        assert np.all(np.abs(np.array(centre) - 8) <= 2.6)  # shifts of at most 2 voxels (+ interpolation)


def test_centre_means_weigh_the_middle_of_the_cube():
    from lymphcast.nets.ct_net import CENTRE_RADII, centre_means

    flat = torch.full((2, 3, 16, 16, 16), 7.0)
    torch.testing.assert_close(centre_means(flat), torch.full((2, 3 * len(CENTRE_RADII)), 7.0))
    blob = torch.zeros(1, 1, 16, 16, 16)
    blob[0, 0, 7:10, 7:10, 7:10] = 1.0  # a 3-voxel node at the centre
    means = centre_means(blob)[0]
    assert means[0] > means[1] > means[2] > 0  # the tightest radius sees most of the node


def test_reconstruction_augmentation_thickens_slices_and_adds_noise():
    from lymphcast.nets.ct_augment import SLAB_WIDTHS, _reconstruction

    s, b = 16, 64
    x = torch.zeros(b, 2, s, s, s)
    x[:, 0, 8] = 300.0  # one bright axial plane
    x[:, 1, 8] = 3.0
    out = _reconstruction(x, torch.Generator().manual_seed(4))
    profile = out[:, 0, :, 4:12, 4:12].mean(dim=(2, 3))  # mean over the plane's middle, per z
    spread = (profile[:, 7] > 30).float()  # the plane leaked into its neighbour: a thicker slab
    assert 0 < spread.mean() < 1  # some cubes kept their slices, some were thickened
    thick = profile[spread.bool()]
    assert torch.all(thick[:, 8] < 300.0 * 0.5) and torch.all(thick[:, 8] > 300.0 / max(SLAB_WIDTHS) * 0.7)
    assert torch.allclose(out[:, 0].mean(dim=(1, 2, 3)), x[:, 0].mean(dim=(1, 2, 3)), atol=3.0)  # no bias
    noise = out[:, 0, 0].std(dim=(1, 2))  # far from the plane: only the added noise
    assert noise.max() > 3.0 and noise.min() < noise.max()
    again = _reconstruction(x, torch.Generator().manual_seed(4))
    torch.testing.assert_close(out, again)


def test_augment_leaves_reconstruction_off_unless_asked():
    x, present = _cubes(b=8)
    a, _ = augment(x, present, torch.Generator().manual_seed(5), drop_iodine=0.0)
    b, _ = augment(x, present, torch.Generator().manual_seed(5), drop_iodine=0.0, reconstruction=True)
    assert a.shape == b.shape and not torch.equal(a, b)
