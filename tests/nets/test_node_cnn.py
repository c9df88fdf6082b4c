"""NodeNet: shapes, masking of absent views, feature-space averaging of views, OneView, and prepare()."""

from __future__ import annotations

import pytest
import torch

from lymphcast.modalities.us_regions import EXTRA
from lymphcast.nets.node_cnn import NodeNet, OneView, prepare


@pytest.fixture(scope="module")
def net() -> NodeNet:
    return _net()


def _net(seed: int = 0, **kw) -> NodeNet:
    torch.manual_seed(seed)
    net = NodeNet(**{"channels": (4, 8), "hidden": 16, **kw})
    # make batch norm's running statistics non-trivial, so eval mode is not the identity by accident
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(6, 2, 2, 32, 32), torch.randn(6, 2, EXTRA), torch.ones(6, 2, dtype=torch.bool))
    return net.eval()


def _batch(b=3, v=2, size=32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, v, 2, size, size, generator=g), torch.randn(b, v, EXTRA, generator=g)


@pytest.mark.parametrize("size", [32, 64])
def test_output_is_one_logit_per_node(net, size):
    x, e = _batch(b=5, size=size)
    out = net(x, e, torch.ones(5, 2, dtype=torch.bool))
    assert out.shape == (5,) and out.dtype == torch.float32 and torch.isfinite(out).all()
    # the nodes are scored independently in eval mode: a node's logit does not depend on the others
    alone = net(x[2:3], e[2:3], torch.ones(1, 2, dtype=torch.bool))
    torch.testing.assert_close(alone, out[2:3], rtol=1e-5, atol=1e-5)


def test_absent_view_is_ignored_whatever_it_holds(net):
    x, e = _batch(b=4)
    present = torch.tensor([[True, False], [True, False], [False, True], [True, True]])
    base = net(x, e, present)
    g = torch.Generator().manual_seed(9)
    junk_x, junk_e = x.clone(), e.clone()
    absent = ~present
    junk_x[absent] = torch.rand(int(absent.sum()), 2, 32, 32, generator=g) * 500 - 100
    junk_e[absent] = torch.rand(int(absent.sum()), EXTRA, generator=g) * 50
    torch.testing.assert_close(net(junk_x, junk_e, present), base, rtol=1e-5, atol=1e-5)
    # ...while changing a present view does change the score (the check above could not pass trivially)
    changed = x.clone()
    changed[3, 1] = junk_x[0, 1]
    assert not torch.allclose(net(changed, e, present)[3], base[3], atol=1e-4)
    # and a node with one present view scores like the same node given as a single-view input
    torch.testing.assert_close(net(x[:2, :1], e[:2, :1], present[:2, :1]), base[:2], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(net(x[2:3, 1:], e[2:3, 1:], present[2:3, 1:]), base[2:3], rtol=1e-5, atol=1e-5)


def test_views_are_averaged_in_feature_space_and_their_order_does_not_matter(net):
    x, e = _batch(b=2)
    both = torch.ones(2, 2, dtype=torch.bool)
    out = net(x, e, both)
    with torch.no_grad():
        f0, f1 = net.embed(x[:, 0], e[:, 0]), net.embed(x[:, 1], e[:, 1])
        expected = net.out((f0 + f1) / 2).squeeze(-1)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(net(x.flip(1), e.flip(1), both), out, rtol=1e-5, atol=1e-5)


def test_extra_numbers_reach_the_score(net):
    x, e = _batch(b=2)
    both = torch.ones(2, 2, dtype=torch.bool)
    assert not torch.allclose(net(x, e + 3.0, both), net(x, e, both), atol=1e-4)


def test_one_view_equals_node_net_with_a_single_present_view(net):
    x, e = _batch(b=1)
    for v in (0, 1):
        present = torch.zeros(1, 2, dtype=torch.bool)
        present[0, v] = True
        one = OneView(net, e[0, v:v + 1]).eval()
        out = one(x[0, v:v + 1])
        assert out.shape == (1, 1)
        torch.testing.assert_close(out.squeeze(-1), net(x, e, present), rtol=1e-5, atol=1e-5)
    # the extra row is broadcast over a batch of images of the same view (as Grad-CAM calls it)
    many = OneView(net, e[0, 0:1])(x[0, 0:1].expand(3, -1, -1, -1))
    torch.testing.assert_close(many, many[:1].expand(3, 1))


def test_one_view_gradients_reach_the_image(net):
    x, e = _batch(b=1)
    img = x[0, 0:1].clone().requires_grad_(True)
    OneView(net, e[0, 0:1])(img).sum().backward()
    assert img.grad is not None and img.grad.abs().sum() > 0


def test_no_present_view_gives_a_finite_logit(net):
    x, e = _batch(b=2)
    out = net(x, e, torch.zeros(2, 2, dtype=torch.bool))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0], out[1])  # nothing is seen, so every such node scores the same


def test_unknown_backbone_is_a_clear_error():
    with pytest.raises(ValueError, match="backbone"):
        NodeNet(backbone="resnet")


# --- prepare ---------------------------------------------------------------------------------------------

def _pixels(n=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    bmode = torch.randint(20, 200, (n, 2, 1, size, size), generator=g, dtype=torch.uint8)
    doppler = torch.randint(0, 256, (n, 2, 1, size, size), generator=g, dtype=torch.uint8)
    return torch.cat([bmode, doppler], dim=2)  # (n, views, 2, H, W)


def test_prepare_standardises_bmode_per_image_and_scales_doppler():
    px = _pixels()
    px[1, 0, 0] = px[1, 0, 0] // 4  # images of very different gain and contrast
    out = prepare(px)
    assert out.shape == px.shape and out.dtype == torch.float32
    bmode = out[..., 0, :, :]
    torch.testing.assert_close(bmode.mean(dim=(-1, -2)), torch.zeros(4, 2), atol=1e-5, rtol=0)
    torch.testing.assert_close(bmode.std(dim=(-1, -2)), torch.ones(4, 2), atol=1e-4, rtol=0)
    torch.testing.assert_close(out[..., 1, :, :], px[..., 1, :, :].float() / 255.0)
    assert out[..., 1, :, :].min() >= 0 and out[..., 1, :, :].max() <= 1


def test_prepare_is_invariant_to_bmode_gain_offset_and_contrast():
    px = _pixels()
    brighter = px.clone()
    brighter[..., 0, :, :] += 40  # ≤ 239 + 40 would overflow; _pixels keeps B-mode below 200
    torch.testing.assert_close(prepare(brighter), prepare(px), atol=1e-5, rtol=0)
    half = px.clone()
    half[..., 0, :, :] = px[..., 0, :, :] // 2 * 2  # same picture; only the scale changes below
    doubled = half.clone()
    doubled[..., 0, :, :] = half[..., 0, :, :] // 2
    torch.testing.assert_close(prepare(doubled)[..., 0, :, :], prepare(half)[..., 0, :, :], atol=1e-5, rtol=0)


def test_prepare_leaves_a_flat_image_flat_instead_of_dividing_by_zero():
    px = torch.full((1, 2, 16, 16), 90, dtype=torch.uint8)  # B-mode and Doppler both flat
    out = prepare(px)
    assert torch.isfinite(out).all() and out[0, 0].abs().max() == 0
