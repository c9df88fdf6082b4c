"""A lymph node's sonographic signs as reflectivity, attenuation and point reflectors, from its latent features.

Shape: an ellipse with a slightly lobulated contour; the longitudinal view shows long x short axis
(long = short x long_short_ratio), the transverse view short x a little more than short. Cortex: hypoechoic
(normal) or hyperechoic thyroid-like; heterogeneous echotexture mixes bright and dark patches. The fatty hilum
is an echogenic stripe (longitudinal) or wedge reaching the border (transverse), absent when lost. Cystic
change: anechoic fluid pockets with almost no attenuation (posterior enhancement follows from the physics).
Microcalcifications: strong point reflectors, each with a little extra attenuation (faint shadow for some).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .us_tissue import Grid, smooth_field


@dataclass(frozen=True)
class NodeShape:
    cy: float          # centre, mm
    cx: float
    a: float           # horizontal semi-axis, mm
    b: float           # vertical semi-axis, mm
    angle: float       # radians
    wobble: tuple      # contour harmonics (eps2, psi2, eps3, psi3)
    hilum_offset: float  # eccentricity of the hilum, fraction of b
    hilum_side: int      # +1/-1: side the hilum reaches the border in the transverse view


def semi_axes(short_mm: float, ratio: float, view: int) -> tuple[float, float]:
    """(horizontal, vertical) semi-axes in mm; view 0 transverse, 1 longitudinal."""
    b = short_mm / 2.0
    if view == 1:
        return b * ratio, b
    return b * float(np.clip(1.0 + 0.3 * (ratio - 1.0), 1.0, 1.6)), b


def polar(g: Grid, s: NodeShape) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(u, v, rho, phi): node-aligned coordinates in mm, normalised radius (1 on the contour) and angle."""
    dy, dx = g.y - s.cy, g.x - s.cx
    c, sn = np.float32(np.cos(s.angle)), np.float32(np.sin(s.angle))
    u, v = c * dx + sn * dy, -sn * dx + c * dy
    phi = np.arctan2(v / s.b, u / s.a)
    e2, p2, e3, p3 = s.wobble
    contour = 1.0 + e2 * np.cos(2 * phi + p2) + e3 * np.cos(3 * phi + p3)
    rho = np.sqrt((u / s.a) ** 2 + (v / s.b) ** 2) / contour
    return u, v, rho.astype(np.float32), phi


def _soft(x: np.ndarray, width: float) -> np.ndarray:
    """1 where x < 0, 0 where x > 0, smooth over `width`."""
    return (1.0 / (1.0 + np.exp(np.clip(x / width, -30, 30)))).astype(np.float32)


def hilum_map(u: np.ndarray, v: np.ndarray, s: NodeShape, view: int) -> np.ndarray:
    """Soft mask (0..1) of the echogenic fatty hilum."""
    vc = v - s.hilum_offset * s.b
    if view == 1:  # central stripe along the long axis, tapering to the ends
        along = np.clip(1.0 - (u / (0.75 * s.a)) ** 2, 0.0, 1.0)
        half = 0.28 * s.b * np.sqrt(along)
    else:          # wedge from the centre to the border on one side
        t = np.clip(s.hilum_side * u / s.a + 0.15, 0.0, None)
        half = np.where(t > 0, (0.14 + 0.3 * np.clip(t, 0, 1.2)) * s.b, 0.0)
    return _soft(np.abs(vc) - half, 0.08 * s.b) * (half > 0)


def node_maps(g: Grid, s: NodeShape, feats: dict, view: int, rng: np.random.Generator, frequency_mhz: float = 12.0):
    """Node contribution: (inside mask, reflectivity inside, attenuation inside, point reflectors, hilum mask,
    (u, v, rho, phi))."""
    shape = (g.y.shape[0], g.x.shape[1])
    u, v, rho, phi = polar(g, s)
    inside = rho < 1.0
    px = g.spacing
    if feats["hyperechoic"]:
        cortex = rng.uniform(0.8, 1.2)
    else:
        cortex = rng.uniform(0.025, 0.06)
    if feats["heterogeneous"]:
        het = smooth_field(shape, max(0.5 / px, 1.5), rng)
        refl = cortex * np.exp(1.1 * het)
        refl *= np.where(smooth_field(shape, max(0.8 / px, 2.0), rng) > 1.0, 0.25, 1.0)  # hypoechoic patches
    else:
        refl = cortex * np.exp(0.15 * smooth_field(shape, 2.0, rng))
    refl = refl.astype(np.float32)
    hilum = np.zeros(shape, np.float32)
    if feats["hilum_present"]:
        hilum = hilum_map(u, v, s, view) * inside
        refl = refl * (1 - hilum) + np.float32(rng.uniform(1.6, 2.6)) * hilum
    atten = np.full(shape, 0.5, np.float32)
    if feats["cystic_change"]:
        fluid = np.zeros(shape, bool)
        for _ in range(int(rng.integers(1, 4))):
            r = rng.uniform(0.2, 0.6)
            t = rng.uniform(0, 2 * np.pi)
            cu, cv = r * 0.5 * s.a * np.cos(t), r * 0.5 * s.b * np.sin(t)
            ra, rb = s.a * rng.uniform(0.3, 0.55), s.b * rng.uniform(0.35, 0.6)
            fluid |= ((u - cu) / ra) ** 2 + ((v - cv) / rb) ** 2 < 1.0
        fluid &= rho < 0.9
        refl = np.where(fluid, np.float32(0.0008), refl)
        atten = np.where(fluid, np.float32(0.01), atten)
    # thin echogenic capsule
    refl = refl + np.float32(0.25) * np.exp(-0.5 * ((rho - 1.0) / np.float32(0.04)) ** 2)
    points = (np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.float32))
    if feats["calcification"]:
        k = int(rng.integers(4, 13))
        r, t = 0.8 * np.sqrt(rng.random(k)), rng.uniform(0, 2 * np.pi, k)
        pu, pv = r * s.a * np.cos(t), r * s.b * np.sin(t)
        c, sn = np.cos(s.angle), np.sin(s.angle)
        rows = np.clip(np.round((s.cy + sn * pu + c * pv) / px - 0.5).astype(int), 0, shape[0] - 1)
        cols = np.clip(np.round((s.cx + c * pu - sn * pv) / px - 0.5).astype(int), 0, shape[1] - 1)
        amp = rng.uniform(20.0, 40.0, k).astype(np.float32)
        points = (rows, cols, amp)
        # two-way loss behind each focus: a faint shadow (2-5 dB) for some, barely any for the others
        shadow_db = np.where(rng.random(k) < 0.4, rng.uniform(2.0, 5.0, k), rng.uniform(0.2, 1.0, k))
        per_unit = 2.0 * frequency_mhz * px / 10.0  # dB lost per unit of attenuation in one pixel
        for dc, w in ((-1, 0.5), (0, 1.0), (1, 0.5)):  # as wide as the focus's echo
            np.add.at(atten, (rows, np.clip(cols + dc, 0, shape[1] - 1)), (w * shadow_db / per_unit).astype(np.float32))
    return inside, refl.astype(np.float32), atten, points, hilum, (u, v, rho, phi)
