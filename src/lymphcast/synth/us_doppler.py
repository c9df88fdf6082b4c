"""Colour (power) Doppler flow map of a node on the B-mode geometry: 0 = no flow, 1-255 = flow power.

Vascularity (CLINICAL_FACTS): none; hilar (normal: flow entering at the hilum and branching along the long
axis); peripheral (abnormal, metastatic: flow fragments along the capsule and short radial vessels).
Flow in a vessel lumen (jugular/carotid) in the field of view is shown too.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .us_node import NodeShape
from .us_tissue import smooth_field

VASCULARITY = ("none", "hilar", "peripheral")


def flow_map(kind: int, coords, s: NodeShape, view: int, vessel_lumen: np.ndarray | None,
             rng: np.random.Generator) -> np.ndarray:
    """uint8 Doppler image; `kind` indexes VASCULARITY; `coords` = (u, v, rho, phi) from us_node.polar."""
    u, v, rho, phi = coords
    shape = rho.shape
    flow = np.zeros(shape, np.float32)
    if kind == 1:  # hilar: trunk along the hilum with a few branches
        vc = v - s.hilum_offset * s.b
        if view == 1:
            trunk = (np.abs(vc) < 0.09 * s.b + 0.15) & (np.abs(u) < 0.6 * s.a)
        else:
            t = s.hilum_side * u / s.a
            trunk = (np.abs(vc) < 0.1 * s.b + 0.15) & (t > -0.1) & (t < 0.7)
        branches = np.zeros(shape, bool)
        for _ in range(int(rng.integers(2, 5))):
            u0 = rng.uniform(-0.4, 0.4) * s.a
            slope = rng.choice([-1, 1]) * rng.uniform(0.6, 1.5)
            line = np.abs((v - s.hilum_offset * s.b) - slope * (u - u0)) < 0.12 + 0.04 * s.b
            branches |= line & (rho < 0.6) & (np.abs(u - u0) < 0.35 * s.a)
        flow[(trunk | branches) & (rho < 0.8)] = 1.0
    elif kind == 2:  # peripheral: broken rim along the capsule and short penetrating vessels
        k = int(rng.integers(2, 5))
        arcs = np.cos(k * phi + rng.uniform(0, 2 * np.pi)) > rng.uniform(-0.3, 0.2)
        rim = (rho > 0.82) & (rho < 1.0) & arcs
        spokes = (np.cos(int(rng.integers(5, 9)) * phi + rng.uniform(0, 2 * np.pi)) > 0.93) & (rho > 0.65) & (rho < 1.0)
        flow[rim | spokes] = 1.0
    if vessel_lumen is not None:
        flow[vessel_lumen] = 1.0
    if not flow.any():
        return np.zeros(shape, np.uint8)
    # colour blooming and a power that varies along the vessels
    flow = ndimage.gaussian_filter(flow, 0.8)
    power = flow * (0.75 + 0.25 * smooth_field(shape, 3.0, rng))
    out = np.where(flow > 0.3, np.clip(power * 300, 1, 255), 0)
    return out.astype(np.uint8)
