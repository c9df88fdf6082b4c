"""A neck phantom for the synthetic CT: unenhanced HU and iodine (mg/mL) on a fine grid in LPS patient coordinates.

Axes: x to the patient's left, y posterior, z superior; z runs from the clavicles (0) to about the angle of the
mandible (Z_EXTENT_MM). Every structure is an elliptical tube whose centre, radii and angle vary linearly with z,
drawn with a one-voxel soft edge (partial volume). The conventional 120 kVp image is base + HU_PER_MG * iodine,
so one pair of maps also gives the unenhanced series (iodine 0) and the dual-energy outputs. Contrast timing
follows the centre's delay: arteries peak early, veins catch up later (CLINICAL_FACTS, CT: contrast timing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Z_EXTENT_MM = 95.0     # clavicles to the angle of the mandible
FINE_DZ_MM = 0.625     # divides every slice thickness (1.25, 2.5, 5 mm), so slabs are whole numbers of fine slices
MATRIX = 192
HU_PER_MG = 25.0       # ≈ HU added by 1 mg/mL iodine at 120 kVp
BLOOD_HU = 40.0


@dataclass(frozen=True)
class Grid:
    spacing: float          # in-plane mm (the output pixel spacing)
    x: np.ndarray           # voxel centres, mm
    y: np.ndarray
    z: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.z), len(self.y), len(self.x)


def make_grid(spacing: float) -> Grid:
    c = (np.arange(MATRIX) - (MATRIX - 1) / 2) * spacing  # the field of view is centred on x = y = 0
    nz = int(round(Z_EXTENT_MM / FINE_DZ_MM))
    return Grid(float(spacing), c, c.copy(), (np.arange(nz) + 0.5) * FINE_DZ_MM)


@dataclass(frozen=True)
class Tube:
    """An elliptical tube: per fine z, centre (cx, cy), semi-axes (rx, ry; 0 where absent), angle (rad)."""

    cx: np.ndarray
    cy: np.ndarray
    rx: np.ndarray
    ry: np.ndarray
    angle: float = 0.0


@dataclass(frozen=True)
class Anatomy:
    grid: Grid
    base: np.ndarray        # unenhanced HU, (z, y, x) float32
    iodine: np.ndarray      # mg/mL
    body: Tube
    vessels: dict           # (side, "carotid" | "jugular") -> Tube; side 0 left (+x), 1 right


def _lin(z: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Linear from `lo` at z = 0 to `hi` at the top of the grid."""
    return lo + (hi - lo) * z / Z_EXTENT_MM


def _tube(z, cx, cy, rx, ry, angle=0.0, z_range=(-1.0, 1e9), taper=False) -> Tube:
    full = lambda v: np.broadcast_to(np.asarray(v, np.float64), z.shape).copy()  # noqa: E731
    inside = (z >= z_range[0]) & (z <= z_range[1])
    scale = inside.astype(float)
    if taper:  # ellipsoidal ends (thyroid lobes)
        mid, half = (z_range[0] + z_range[1]) / 2, (z_range[1] - z_range[0]) / 2
        scale = np.sqrt(np.clip(1 - ((z - mid) / half) ** 2, 0, 1))
    return Tube(full(cx), full(cy), full(rx) * scale, full(ry) * scale, angle)


def paint(base: np.ndarray, iodine: np.ndarray, grid: Grid, tube: Tube, hu: float, mg: float) -> None:
    """Blend a tube into the maps (in place), working only inside its bounding box."""
    zi = np.flatnonzero((tube.rx > 0) & (tube.ry > 0))
    if not len(zi):
        return
    reach = np.maximum(tube.rx, tube.ry)[zi] + 2 * grid.spacing
    xs = _index_range(grid.x, (tube.cx[zi] - reach).min(), (tube.cx[zi] + reach).max())
    ys = _index_range(grid.y, (tube.cy[zi] - reach).min(), (tube.cy[zi] + reach).max())
    if xs.stop <= xs.start or ys.stop <= ys.start:
        return
    zs = slice(zi[0], zi[-1] + 1)  # present slices are contiguous, so every radius here is positive
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    params = [f32(v[zs]) for v in (tube.cx, tube.cy, tube.rx, tube.ry)]
    still = all(np.ptp(v) == 0 for v in params)  # same section at every z: compute one slice, broadcast it
    cx, cy, rx, ry = [(v[:1] if still else v)[:, None, None] for v in params]
    dx, dy = f32(grid.x[xs])[None, None, :] - cx, f32(grid.y[ys])[None, :, None] - cy
    if tube.angle:
        c, s = np.float32(np.cos(tube.angle)), np.float32(np.sin(tube.angle))
        dx, dy = c * dx + s * dy, c * dy - s * dx
    r = np.sqrt((dx / rx) ** 2 + (dy / ry) ** 2)  # separable when not rotated: one full-size sum
    w = np.clip(np.float32(0.5) - (r - 1) * (np.minimum(rx, ry) / np.float32(grid.spacing)), 0, 1)
    region = (zs, ys, xs)
    base[region] += w * (np.float32(hu) - base[region])
    iodine[region] += w * (np.float32(mg) - iodine[region])


def _index_range(axis: np.ndarray, lo: float, hi: float) -> slice:
    return slice(int(np.searchsorted(axis, lo)), int(np.searchsorted(axis, hi)))


def blood_iodine(delay_s: float, rng: np.random.Generator) -> tuple[float, float]:
    """Arterial and venous iodine (mg/mL) at a contrast delay of 25-40 s: arteries ~300-400 HU early, veins
    lower, catching up later; a patient's circulation scales both by ±15%."""
    f = float(np.clip((delay_s - 25.0) / 15.0, 0, 1))
    cardiac = rng.uniform(0.85, 1.15)
    return (14.0 - 3.0 * f) * cardiac, (4.0 + 5.0 * f) * cardiac


def build_anatomy(grid: Grid, delay_s: float, rng: np.random.Generator) -> Anatomy:
    """The patient's neck: sizes scaled by ±10%, shifted by a few mm in the field of view, vessels jittered."""
    z = grid.z
    k = rng.uniform(0.9, 1.1)
    ox, oy = rng.uniform(-4, 4), rng.uniform(-4, 4)
    artery, vein = blood_iodine(delay_s, rng)
    shape = grid.shape
    base = np.full(shape, -1000.0, np.float32)
    iod = np.zeros(shape, np.float32)
    T = lambda cx, cy, rx, ry, **kw: _tube(z, ox + k * cx, oy + k * cy, k * rx, k * ry, **kw)  # noqa: E731
    body = T(0, 0, _lin(z, 64, 56), _lin(z, 56, 52))
    paint(base, iod, grid, body, 30, 0.3)                                          # skin
    paint(base, iod, grid, T(0, 0, body.rx / k - 2, body.ry / k - 2), -100, 0)     # subcutaneous and deep fat
    paint(base, iod, grid, T(0, 34, 36, 15), 50, 0.4)                              # posterior (paraspinal) muscles
    for sign in (1, -1):
        # sternocleidomastoid: anterior-medial at the clavicles, postero-lateral towards the mastoid
        paint(base, iod, grid, T(sign * _lin(z, 24, 44), _lin(z, -40, -8), 4.5, 13, angle=sign * 0.9), 50, 0.4)
        paint(base, iod, grid, T(sign * 11, -36, 8, 2.5, z_range=(0, 60)), 50, 0.4)  # strap muscles
        paint(base, iod, grid, T(sign * 9, -2, 6, 4), 50, 0.4)                       # prevertebral (longus colli)
    paint(base, iod, grid, T(0, 10, 13, 11), 700, 0)                               # vertebral body
    paint(base, iod, grid, T(0, 30, 12, 10), 700, 0)                               # posterior arch
    paint(base, iod, grid, T(0, 29, 8, 7), 30, 0)                                  # spinal canal
    paint(base, iod, grid, T(0, -8, 7, 4), 45, 0.6)                                # oesophagus / pharynx
    tr = rng.uniform(7, 10)
    paint(base, iod, grid, T(0, -22, tr + 2, tr + 1.5), 100, 0.2)                  # tracheal wall and cartilage
    paint(base, iod, grid, T(0, -22, tr, tr - 0.5), -1000, 0)                      # airway
    lobe, top = rng.uniform(0.8, 1.3), rng.uniform(42, 52)
    for sign in (1, -1):                                                           # thyroid: iodine-rich
        paint(base, iod, grid, T(sign * 16, -22, 7 * lobe, 11 * lobe, z_range=(12, top), taper=True), 100, 5.0)
    paint(base, iod, grid, T(0, -33, 10, 3 * lobe, z_range=(18, 28), taper=True), 100, 5.0)
    vessels = {}
    for side, sign in ((0, 1), (1, -1)):
        j = rng.uniform(-2, 2, 4)
        carotid = T(sign * (_lin(z, 22, 28) + j[0]), _lin(z, -10, -6) + j[1], rng.uniform(3.2, 4.2), 0)
        carotid = Tube(carotid.cx, carotid.cy, carotid.rx, carotid.rx.copy())
        jr = rng.uniform(4.5, 7.0)
        jugular = T(sign * (_lin(z, 32, 37) + j[2]), _lin(z, -13, -8) + j[3], jr, 0.8 * jr)
        paint(base, iod, grid, carotid, BLOOD_HU, artery)
        paint(base, iod, grid, jugular, BLOOD_HU, vein)
        vessels[side, "carotid"], vessels[side, "jugular"] = carotid, jugular
    return Anatomy(grid, base, iod, body, vessels)
