"""A lymph node as a solid for a probe sweep: the cross-section cut by the scan plane at elevation z.

The node is an ellipsoid with the transverse semi-axes of the still renderer's transverse view (us_node.semi_axes,
horizontal a, vertical b) and the long semi-axis c = b x long_short_ratio along the sweep (elevation, z). The plane
at z cuts an ellipse scaled by k = sqrt(1 - (z/c)^2), with the node's lobulated contour. Its signs are 3D
structures drawn once per node from the same latent features as the stills, so a plane shows a sign only where it
cuts it:
- fatty hilum: the transverse wedge of us_node, present over |z - z_h| < w_h only, thinning towards both ends;
- cystic change: 1-3 fluid ellipsoids inside the node (anechoic, nearly no attenuation);
- microcalcifications: 4-12 point reflectors in the node; an off-plane focus echoes through the elevation beam
  (Gaussian of width `elev_sd`), so each one flashes in a few frames only, with its faint shadow;
- cortex echogenicity and (heterogeneous) texture: two smooth fields blended by angle z / TEXTURE_MM, so the
  texture drifts as the plane moves while keeping unit variance.
Coordinates are mm; (u, v) are node-aligned in-plane coordinates as in us_node.polar.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .us_node import NodeShape, polar, semi_axes
from .us_tissue import Grid

TEXTURE_MM = 1.2   # elevation distance over which the cortex texture turns over


@dataclass(frozen=True)
class Solid:
    shape: NodeShape        # the section at z = 0 (centre at the reference position)
    c: float                # long semi-axis along the sweep, mm
    cortex: float           # mean reflectivity of the cortex
    heterogeneous: bool
    hilum: tuple | None     # (z_h, half length w_h, reflectivity) or None when lost
    cysts: np.ndarray       # (k, 6): cu, cv, cz, ra, rb, rc
    foci: np.ndarray        # (k, 6): pu, pv, pz, amplitude, shadow dB, echo phase


@dataclass(frozen=True)
class Section:
    inside: np.ndarray      # bool crop mask
    refl: np.ndarray        # reflectivity inside (float32)
    atten: np.ndarray       # attenuation inside, dB/cm/MHz (float32)
    hilum_px: int           # pixels of hilum (soft mask > 0.5) in the section
    cyst_px: int            # fluid pixels in the section
    k: float                # section scale (0: the plane misses the node)


def draw_solid(feats: dict, shape: NodeShape, ratio: float, rng: np.random.Generator) -> Solid:
    """The node's 3D signs; `shape` is its transverse section at z = 0, `ratio` its long/short ratio."""
    c = shape.b * ratio
    cortex = rng.uniform(0.8, 1.2) if feats["hyperechoic"] else rng.uniform(0.025, 0.06)
    hilum = None
    if feats["hilum_present"]:
        hilum = (c * rng.uniform(-0.3, 0.3), c * rng.uniform(0.35, 0.55), rng.uniform(1.6, 2.6))
    cysts = np.zeros((0, 6))
    if feats["cystic_change"]:
        k = int(rng.integers(1, 4))
        r, t = rng.uniform(0.2, 0.6, k), rng.uniform(0, 2 * np.pi, k)
        cysts = np.column_stack([r * 0.5 * shape.a * np.cos(t), r * 0.5 * shape.b * np.sin(t),
                                 c * rng.uniform(-0.45, 0.45, k), shape.a * rng.uniform(0.3, 0.55, k),
                                 shape.b * rng.uniform(0.35, 0.6, k), c * rng.uniform(0.25, 0.5, k)])
    foci = np.zeros((0, 6))
    if feats["calcification"]:
        k = int(rng.integers(4, 13))
        d = rng.standard_normal((k, 3))
        d *= (0.8 * rng.random(k) ** (1 / 3) / np.linalg.norm(d, axis=1))[:, None]  # uniform in the 0.8 ball
        shadow = np.where(rng.random(k) < 0.4, rng.uniform(2.0, 5.0, k), rng.uniform(0.2, 1.0, k))
        foci = np.column_stack([d[:, 0] * shape.a, d[:, 1] * shape.b, d[:, 2] * c, rng.uniform(20.0, 40.0, k),
                                shadow, rng.uniform(0, 2 * np.pi, k)])
    return Solid(shape, c, float(cortex), bool(feats["heterogeneous"]), hilum, cysts, foci)


def scale_at(solid: Solid, z: float) -> float:
    q = 1.0 - (z / solid.c) ** 2
    return float(np.sqrt(q)) if q > 0 else 0.0


def _soft(x: np.ndarray, width: float) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(np.clip(x / width, -30, 30)))).astype(np.float32)


def _hilum(u, v, s: NodeShape, strength: float) -> np.ndarray:
    """The transverse wedge of us_node.hilum_map, its thickness scaled by sqrt(strength)."""
    vc = v - s.hilum_offset * s.b
    t = np.clip(s.hilum_side * u / s.a + 0.15, 0.0, None)
    half = np.where(t > 0, (0.14 + 0.3 * np.clip(t, 0, 1.2)) * s.b * np.sqrt(strength), 0.0)
    return _soft(np.abs(vc) - half, 0.08 * s.b) * (half > 0)


def section(solid: Solid, z: float, g: Grid, centre: tuple[float, float], texture: np.ndarray,
            patches: np.ndarray) -> Section:
    """The node's section at elevation z on the crop grid `g`, centred at `centre` (cy, cx) in g's mm.

    `texture`, `patches`: the crop's two pairs of smooth unit fields (2, h, w), blended by z.
    """
    k = scale_at(solid, z)
    rows, cols = g.y.shape[0], g.x.shape[1]
    if k < 0.05:
        empty = np.zeros((rows, cols), np.float32)
        return Section(np.zeros((rows, cols), bool), empty, empty, 0, 0, 0.0)
    s0 = solid.shape
    wob = (s0.wobble[0], s0.wobble[1] + 0.6 * z / solid.c, s0.wobble[2], s0.wobble[3] - 0.4 * z / solid.c)
    s = replace(s0, cy=centre[0], cx=centre[1], a=s0.a * k, b=s0.b * k, wobble=wob)
    u, v, rho, _ = polar(g, s)
    inside = rho < 1.0
    theta = z / TEXTURE_MM
    ct, st = np.float32(np.cos(theta)), np.float32(np.sin(theta))
    tex = ct * texture[0] + st * texture[1]
    if solid.heterogeneous:
        refl = solid.cortex * np.exp(1.1 * tex)
        refl *= np.where(ct * patches[0] + st * patches[1] > 1.0, np.float32(0.25), np.float32(1.0))
    else:
        refl = solid.cortex * np.exp(0.15 * tex)
    refl = refl.astype(np.float32)
    hilum_px = 0
    if solid.hilum is not None:
        z_h, w_h, bright = solid.hilum
        strength = 1.0 - ((z - z_h) / w_h) ** 2
        if strength > 0:
            h = _hilum(u, v, s, strength) * inside
            refl = refl * (1 - h) + np.float32(bright) * h
            hilum_px = int((h > 0.5).sum())
    atten = np.full((rows, cols), 0.5, np.float32)
    cyst_px = 0
    if len(solid.cysts):
        fluid = np.zeros((rows, cols), bool)
        for cu, cv, cz, ra, rb, rc in solid.cysts:
            q = 1.0 - ((z - cz) / rc) ** 2
            if q > 0:
                fluid |= ((u - cu) / ra) ** 2 + ((v - cv) / rb) ** 2 < q
        fluid &= rho < 0.9
        refl = np.where(fluid, np.float32(0.0008), refl)
        atten = np.where(fluid, np.float32(0.01), atten)
        cyst_px = int(fluid.sum())
    refl = refl + np.float32(0.25) * np.exp(-0.5 * ((rho - 1.0) / np.float32(0.04)) ** 2)
    return Section(inside, refl.astype(np.float32), atten, hilum_px, cyst_px, k)


def foci_at(solid: Solid, z: float, centre: tuple[float, float], elev_sd: float) -> tuple[np.ndarray, ...]:
    """Foci echoing at z: in-plane positions (y, x mm), complex echo amplitudes (re, im), shadow dB, beam weights."""
    f = solid.foci
    w = np.exp(-0.5 * ((z - f[:, 2]) / elev_sd) ** 2)
    keep = w > 0.05
    f, w = f[keep], w[keep]
    c, sn = np.cos(solid.shape.angle), np.sin(solid.shape.angle)
    y = centre[0] + sn * f[:, 0] + c * f[:, 1]
    x = centre[1] + c * f[:, 0] - sn * f[:, 1]
    amp = f[:, 3] * w
    return y, x, amp * np.cos(f[:, 5]), amp * np.sin(f[:, 5]), f[:, 4] * w, w


def node_shape(feats: dict, extent: float, rng: np.random.Generator) -> tuple[NodeShape, float]:
    """Transverse section at z = 0 placed as the still renderer places it, and the long/short ratio."""
    short, ratio = float(feats["short_axis_mm"]), float(feats["long_short_ratio"])
    b = min(short / 2.0, 0.3 * extent)
    a, b = semi_axes(2 * b, ratio, 0)
    cy = extent * rng.uniform(0.5, 0.6)
    cy = float(np.clip(cy, b + 0.25 * extent, extent - b - 0.06 * extent))
    cx = extent * (0.5 + rng.uniform(-0.05, 0.05))
    wobble = (rng.uniform(0, 0.05), rng.uniform(0, 6.3), rng.uniform(0, 0.04), rng.uniform(0, 6.3))
    shape = NodeShape(cy, cx, a, b, rng.uniform(-0.2, 0.2), wobble, rng.uniform(-0.3, 0.3), int(rng.choice([-1, 1])))
    return shape, ratio
