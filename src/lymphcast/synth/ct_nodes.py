"""Lymph nodes in the CT phantom: where each node sits (by level, beside the jugular vein or in the posterior
triangle, never overlapping a vessel or another node) and how it looks.

Only the CT-visible latent features are drawn: short axis, long/short ratio, cystic change, calcification,
arterial attenuation and iodine. The CT oracle (truth risk_ct) is computed from exactly these, so any other cue
(hilum, echogenicity, vascularity, the true status) would let a model beat it. A node is an ellipsoid: its short
axis (short_axis_mm) lies in the axial plane, its long axis (short x long_short_ratio) runs cranio-caudally with
a slight tilt. Solid part: attenuation + the centre's hu_offset (CLINICAL_FACTS, CT: contrast timing ±10-20 HU),
iodine as drawn; cystic change: an eccentric low-density region (15-25 HU, iodine ~0.2) of 30-60% of the volume;
calcification: 1-3 dense foci (300-700 HU, 1-2 mm).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ct_anatomy import FINE_DZ_MM, HU_PER_MG, Z_EXTENT_MM, Anatomy, Grid

CT_FEATURES = ("short_axis_mm", "long_short_ratio", "cystic_change", "calcification", "ct_attenuation_hu",
               "iodine_mg_ml")
LEVEL_Z = ((65.0, 90.0), (40.0, 65.0), (10.0, 40.0), (20.0, 80.0))  # II upper, III middle, IV lower jugular; V
ATTEMPTS = 300
MAX_TILT = np.radians(12)


@dataclass(frozen=True)
class NodeShape:
    centre: np.ndarray      # (x, y, z) mm, LPS
    rot: np.ndarray         # columns: the node's short, middle and long axes in patient coordinates
    semi: np.ndarray        # semi-axes along those columns, mm
    hu: float               # solid part, conventional 120 kVp
    iodine: float           # solid part, mg/mL
    cyst: tuple | None      # (centre in node units, scale, HU) of the cystic region
    foci: tuple             # ((centre in node units), radius mm, HU) per calcification
    placed: bool            # False when no position free of overlaps was found

    @property
    def extent(self) -> np.ndarray:
        """Half-size of the axis-aligned box around the node, mm."""
        return np.sqrt(((self.rot * self.semi) ** 2).sum(axis=1))


def _rotation(rng: np.random.Generator) -> np.ndarray:
    def rz(a):
        return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    t = rng.uniform(0, MAX_TILT)
    ry = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])
    return rz(rng.uniform(0, 2 * np.pi)) @ ry @ rz(rng.uniform(0, np.pi))


def draw_look(feats: dict, hu_offset: float, rng: np.random.Generator) -> dict:
    """Shape and content of a node from its CT-visible features only."""
    short = float(feats["short_axis_mm"])
    semi = np.array([short, short * rng.uniform(1.0, 1.2), short * float(feats["long_short_ratio"])]) / 2
    cyst = None
    if feats["cystic_change"]:
        scale = rng.uniform(0.3, 0.6) ** (1 / 3)  # volume share 30-60%
        direction = rng.standard_normal(3)
        cyst = (0.85 * (1 - scale) * direction / np.linalg.norm(direction), scale, rng.uniform(15, 25))
    foci = []
    for _ in range(int(rng.integers(1, 4)) if feats["calcification"] else 0):
        p = rng.standard_normal(3)
        foci.append((0.6 * rng.uniform(0, 1) * p / np.linalg.norm(p), rng.uniform(0.5, 1.0), rng.uniform(300, 700)))
    return {"rot": _rotation(rng), "semi": semi, "hu": float(feats["ct_attenuation_hu"]) + hu_offset,
            "iodine": float(feats["iodine_mg_ml"]), "cyst": cyst, "foci": tuple(foci)}


def _clearance(centre, ext, anatomy: Anatomy, others) -> float:
    """Smallest gap (mm) to a vessel, another node or the skin; negative when they overlap."""
    g = anatomy.grid
    zi = np.flatnonzero(np.abs(g.z - centre[2]) <= ext[2])
    if not len(zi) or centre[2] - ext[2] < 0 or centre[2] + ext[2] > Z_EXTENT_MM:
        return -1.0
    flat = max(ext[0], ext[1])
    gaps = []
    for tube in anatomy.vessels.values():
        d = np.hypot(tube.cx[zi] - centre[0], tube.cy[zi] - centre[1]) - np.maximum(tube.rx[zi], tube.ry[zi])
        gaps.append(d.min() - flat - 1.0)
    b = anatomy.body
    k = zi[len(zi) // 2]
    inner = np.array([b.rx[k], b.ry[k]]) - flat - 5.0  # keep 5 mm of skin and fat outside the node
    rel = np.array([centre[0] - b.cx[k], centre[1] - b.cy[k]])
    gaps.append(5.0 * (1 - np.hypot(*(rel / np.maximum(inner, 1e-3)))) if (inner > 0).all() else -1.0)
    for c, e in others:
        dz = abs(c[2] - centre[2]) - e[2] - ext[2]
        dxy = np.hypot(c[0] - centre[0], c[1] - centre[1]) - max(e[0], e[1]) - flat
        gaps.append(max(dz, dxy) - 1.0)
    return float(min(gaps))


def _candidate(anatomy: Anatomy, side: int, level: int, ext, rng: np.random.Generator) -> np.ndarray:
    sign = 1.0 if side == 0 else -1.0  # side 0 is the patient's left, +x
    lo, hi = LEVEL_Z[level]
    lo, hi = max(lo, ext[2] + FINE_DZ_MM), min(hi, Z_EXTENT_MM - ext[2] - FINE_DZ_MM)
    z = rng.uniform(lo, hi) if lo < hi else Z_EXTENT_MM / 2
    k = int(np.clip(z / FINE_DZ_MM, 0, len(anatomy.grid.z) - 1))
    if level == 3:  # posterior triangle: behind the sternocleidomastoid, lateral to the paraspinal muscles
        b = anatomy.body
        return np.array([b.cx[k] + sign * rng.uniform(0.62, 0.85) * b.rx[k],
                         b.cy[k] + rng.uniform(0.0, 0.35) * b.ry[k], z])
    vein = anatomy.vessels[side, "jugular"]
    theta = rng.uniform(-np.radians(80), np.radians(80))  # lateral half around the vein
    dist = max(vein.rx[k], vein.ry[k]) + max(ext[0], ext[1]) + rng.uniform(1.5, 4.0)
    return np.array([vein.cx[k] + sign * dist * np.cos(theta), vein.cy[k] + dist * np.sin(theta), z])


def place_node(anatomy: Anatomy, side: int, level: int, look: dict, others: list,
               rng: np.random.Generator) -> NodeShape:
    """Rejection sampling of the node's centre; after ATTEMPTS tries, the least overlapping candidate.
    `others` holds (centre, extent) of the patient's nodes placed so far; this node is appended to it."""
    ext = NodeShape(np.zeros(3), look["rot"], look["semi"], 0, 0, None, (), True).extent
    best, best_gap = None, -np.inf
    for _ in range(ATTEMPTS):
        centre = _candidate(anatomy, side, level, ext, rng)
        gap = _clearance(centre, ext, anatomy, others)
        if gap > best_gap:
            best, best_gap = centre, gap
        if gap >= 0:
            break
    others.append((best, ext))
    return NodeShape(best, placed=best_gap >= 0, **look)


def _soft(d: np.ndarray, h: float) -> np.ndarray:
    """Partial-volume weight from a signed distance (mm) with a one-voxel edge."""
    return np.clip(0.5 - d / h, 0, 1)


def paint_node(base: np.ndarray, iodine: np.ndarray, grid: Grid, node: NodeShape) -> tuple[tuple, np.ndarray]:
    """Blend the node into the maps (in place). Returns its box (slices z, y, x) and the solid fraction there."""
    ext = node.extent + 2 * grid.spacing
    region = tuple(slice(int(np.searchsorted(a, c - e)), int(np.searchsorted(a, c + e)))
                   for a, c, e in ((grid.z, node.centre[2], ext[2]), (grid.y, node.centre[1], ext[1]),
                                   (grid.x, node.centre[0], ext[0])))
    dz = grid.z[region[0]][:, None, None] - node.centre[2]
    dy = grid.y[region[1]][None, :, None] - node.centre[1]
    dx = grid.x[region[2]][None, None, :] - node.centre[0]
    # coordinates in node units (the ellipsoid is the unit ball)
    q = [(dx * node.rot[0, j] + dy * node.rot[1, j] + dz * node.rot[2, j]) / node.semi[j] for j in range(3)]
    h, smallest = grid.spacing, node.semi.min()
    w = _soft((np.sqrt(q[0] ** 2 + q[1] ** 2 + q[2] ** 2) - 1) * smallest, h)
    hu_solid = node.hu - HU_PER_MG * node.iodine  # unenhanced value, so base + HU_PER_MG * iodine = node.hu
    val_base = np.full(w.shape, hu_solid, np.float32)
    val_iod = np.full(w.shape, node.iodine, np.float32)
    solid = w.copy()
    if node.cyst is not None:
        c, s, cyst_hu = node.cyst
        rc = np.sqrt(sum((q[j] - c[j]) ** 2 for j in range(3))) / s
        wc = _soft((rc - 1) * s * smallest, h)
        val_base += wc * (cyst_hu - HU_PER_MG * 0.2 - val_base)
        val_iod += wc * (0.2 - val_iod)
        solid *= 1 - wc
    for c, radius, focus_hu in node.foci:
        dist = np.sqrt(sum(((q[j] - c[j]) * node.semi[j]) ** 2 for j in range(3)))
        wf = _soft(dist - radius, h)
        val_base += wf * (focus_hu - val_base)
        val_iod -= wf * val_iod
        solid *= 1 - wf
    base[region] += w * (val_base - base[region])
    iodine[region] += w * (val_iod - iodine[region])
    return region, solid.astype(np.float32)
