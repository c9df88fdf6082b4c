"""Ultrasound augmentation: depth is never flipped, left-right flips happen, geometry is shared by both channels,
sizes are jittered only where known, shapes and dtypes are kept, and a seed replays the same draws."""

from __future__ import annotations

import torch

from lymphcast.nets.us_augment import SIZE_JITTER, AugmentParams, apply, augment, draw

N, H, W = 64, 32, 32


def _extra(n=N, known=True):
    e = torch.zeros(n, 4)
    e[:, 0], e[:, 1] = 2.0, 1.5  # log width, log height in mm
    e[:, 2] = 1.0 if known else 0.0
    e[:, 3] = 1.0
    return e


def _identity(n, flip) -> AugmentParams:
    theta = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(n, 2, 3).clone()
    return AugmentParams(flip=torch.as_tensor(flip), theta=theta, gamma=torch.ones(n), blur=torch.zeros(n),
                         noise=torch.ones(n, 1, H, W), size=torch.zeros(n, 2))


def _halves(axis: str) -> torch.Tensor:
    """Bright (200) top or left half, dark (20) elsewhere, in both channels."""
    x = torch.full((N, 2, H, W), 20.0)
    if axis == "top":
        x[:, :, : H // 2, :] = 200.0
    else:
        x[:, :, :, : W // 2] = 200.0
    return x


def _top_minus_bottom(x):
    return x[..., : H // 2, :].mean(dim=(-1, -2)) - x[..., H // 2:, :].mean(dim=(-1, -2))


def _left_minus_right(x):
    return x[..., : W // 2].mean(dim=(-1, -2)) - x[..., W // 2:].mean(dim=(-1, -2))


def test_the_top_stays_bright_in_every_draw():
    """A vertical flip would make the bottom brighter; it must happen in none of 8 x 64 draws, in either channel,
    even though the half-image contrast survives every allowed transform."""
    x, gen = _halves("top"), torch.Generator().manual_seed(0)
    for _ in range(8):
        out, _ = augment(x, _extra(), gen)
        diff = _top_minus_bottom(out)  # (N, 2)
        assert (diff > 50).all(), diff.min()
    # the check is sharp: the same picture flipped up-down fails it
    assert (_top_minus_bottom(x.flip(-2)) < -50).all()


def test_left_right_flips_happen_about_half_the_time_and_match_the_drawn_flag():
    x, gen = _halves("left"), torch.Generator().manual_seed(1)
    flipped = []
    for _ in range(6):
        p = draw(N, x.shape, gen)
        out, _ = apply(x, _extra(), p)
        lr = _left_minus_right(out)
        assert ((lr > 50) | (lr < -50)).all()  # the brightness moved to one side or the other, never smeared
        assert torch.equal(lr[:, 0] < 0, p.flip) and torch.equal(lr[:, 1] < 0, p.flip)
        flipped.append(p.flip)
    rate = torch.cat(flipped).float().mean()
    assert 0.35 < rate < 0.65  # 384 draws


def test_identity_parameters_and_a_pure_flip_are_exact():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(4, 2, H, W, generator=g) * 255
    flip = torch.tensor([True, False, True, False])
    out, extra = apply(x, _extra(4), _identity(4, flip))
    torch.testing.assert_close(out[~flip], x[~flip], atol=1e-3, rtol=0)
    torch.testing.assert_close(out[flip], x[flip].flip(-1), atol=1e-3, rtol=0)  # columns reversed, rows in place
    torch.testing.assert_close(extra, _extra(4))


def test_shapes_dtypes_and_the_input_is_not_modified():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(N, 2, H, W, generator=g) * 255
    e = _extra()
    x0, e0 = x.clone(), e.clone()
    out, extra = augment(x, e, torch.Generator().manual_seed(4))
    assert out.shape == x.shape and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert extra.shape == e.shape and extra.dtype == torch.float32
    assert torch.equal(x, x0) and torch.equal(e, e0)
    assert not torch.allclose(out, x)  # something was done
    # Doppler is moved with the picture but its values are not re-scaled: never above its input range
    assert out[:, 1].min() >= 0 and out[:, 1].max() <= 255 + 1e-3


def test_size_jitter_only_where_the_size_is_known():
    x = torch.zeros(N, 2, H, W)
    known = _extra(known=True)
    _, extra = augment(x, known, torch.Generator().manual_seed(5))
    delta = extra[:, :2] - known[:, :2]
    assert (delta.abs() <= SIZE_JITTER + 1e-6).all() and delta.abs().max() > 0
    torch.testing.assert_close(extra[:, 2:], known[:, 2:])  # flags untouched
    unknown = _extra(known=False)
    unknown[:, :2] = 0
    _, extra = augment(x, unknown, torch.Generator().manual_seed(5))
    torch.testing.assert_close(extra, unknown)


def test_same_seed_same_augmentation_and_another_seed_differs():
    x = _halves("top") + torch.rand(N, 2, H, W, generator=torch.Generator().manual_seed(6)) * 30
    a = augment(x, _extra(), torch.Generator().manual_seed(7))
    b = augment(x, _extra(), torch.Generator().manual_seed(7))
    c = augment(x, _extra(), torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.allclose(a[0], c[0])


def test_drawn_parameters_stay_in_their_small_ranges():
    p = draw(500, (500, 2, H, W), torch.Generator().manual_seed(9))
    scale = torch.linalg.det(p.theta[:, :, :2]).sqrt()  # 1 / zoom
    assert ((scale > 1 / 1.13) & (scale < 1 / 0.89)).all()
    # a rotation, never a reflection: a flip of depth would make the determinant negative
    assert (torch.linalg.det(p.theta[:, :, :2]) > 0).all()
    angle = torch.atan2(p.theta[:, 1, 0], p.theta[:, 0, 0])
    assert angle.abs().max() <= torch.deg2rad(torch.tensor(10.0)) + 1e-6
    assert (p.gamma > 0.69).all() and (p.gamma < 1.46).all()
    assert (p.blur >= 0).all() and (p.blur <= 1).all()
    assert p.noise.shape == (500, 1, H, W) and abs(float(p.noise.mean()) - 1) < 0.01
