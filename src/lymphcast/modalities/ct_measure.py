"""What a radiologist measures on a lymph node in a node-centred CT cube: its size, its attenuation, its iodine
concentration, a cystic (low-density) part and calcification — here measured on a region grown from the cube's
centre, for the CT model's second reader (a gradient-boosted classifier beside the CNN, modalities.ct).

Why measured and not only learned: on held-out centres the CNN read attenuation and iodine worse than these
measurements did (a 3D CNN trained from scratch on ~3,000 nodes confuses a small node's diluted iodine with a
larger node's low iodine), and a centre's slice thickness and kernel change the measurements less than the
CNN's features. PyRadiomics would give ~100 generic features per ROI from a segmentation we do not have; these
are the dozen that describe a neck node, in milliseconds, on the same cube the CNN reads.

Region: voxels of soft-tissue density (-20..220 HU after a light smoothing: fat is below, bone, calcification
and enhancing vessels above) connected to the centre, within 14 mm of it; a centre voxel outside that range
(a calcification at the centre) falls back to a 4-mm sphere. The iodine columns are NaN where the study has
no iodine map (the classifier treats missing values natively).
"""

from __future__ import annotations

import numpy as np

SOFT_TISSUE = (-20.0, 220.0)   # HU: a node's solid part at any contrast timing, its cystic part included
MAX_RADIUS_MM = 14.0           # the largest node fits
FALLBACK_RADIUS_MM = 4.0
CENTRE_SIGMAS_MM = (1.0, 2.0, 4.0)

MEASUREMENTS = ("log_volume_ml", "log_extent_axial_max_mm", "log_extent_axial_min_mm", "log_extent_craniocaudal_mm",
                "hu_median", "hu_p10", "hu_p90", "hu_sd", "hu_max_near", "iodine_median", "iodine_p10",
                *[f"{what}_centre_{s:g}mm" for s in CENTRE_SIGMAS_MM for what in ("hu", "iodine")])


class _Geometry:
    """Squared distance (mm²) of each voxel from the cube's centre and the Gaussian weights of the centre means."""

    def __init__(self, size: int, spacing_mm: float):
        self.spacing = spacing_mm
        axis = (np.arange(size) - size // 2) * spacing_mm
        self.r2 = sum(g ** 2 for g in np.meshgrid(axis, axis, axis, indexing="ij")).astype(np.float32)
        self.gauss = []
        for s in CENTRE_SIGMAS_MM:
            w = np.exp(-self.r2 / (2 * s ** 2))
            self.gauss.append(w / w.sum())


def measure_node(hu: np.ndarray, iodine: np.ndarray | None, geometry: _Geometry) -> np.ndarray:
    """One cube (z, y, x) in HU, its iodine map in mg/mL or None → the MEASUREMENTS row."""
    from scipy import ndimage

    c, r2, mm = hu.shape[0] // 2, geometry.r2, geometry.spacing
    smooth = ndimage.gaussian_filter(hu, 0.7)
    soft = (smooth > SOFT_TISSUE[0]) & (smooth < SOFT_TISSUE[1]) & (r2 <= MAX_RADIUS_MM ** 2)
    labels, _ = ndimage.label(soft)
    region = labels == labels[c, c, c] if labels[c, c, c] else r2 <= FALLBACK_RADIUS_MM ** 2
    zz, yy, xx = np.nonzero(region)
    extent = [(float(np.ptp(a)) + 1.0) * mm for a in (zz, yy, xx)]
    core = ndimage.binary_erosion(region)  # one voxel in: the rim mixes with fat
    core = core if core.sum() > 3 else region
    values = hu[core]
    near = ndimage.binary_dilation(region, iterations=2)  # a calcification sits in or on the node: above 220 HU
    row = [np.log(region.sum() * mm ** 3 / 1000.0), np.log(max(extent[1], extent[2])),
           np.log(min(extent[1], extent[2])), np.log(extent[0]),
           np.median(values), np.percentile(values, 10), np.percentile(values, 90), values.std(), hu[near].max()]
    if iodine is None:
        row += [np.nan, np.nan]
    else:
        row += [np.median(iodine[core]), np.percentile(iodine[core], 10)]
    for w in geometry.gauss:
        row += [float((hu * w).sum()), np.nan if iodine is None else float((iodine * w).sum())]
    return np.asarray(row, dtype=float)


def measure_crops(volumes: np.ndarray, present: np.ndarray, spacing_mm: float) -> np.ndarray:
    """(n, C, s, s, s) crops of `spacing_mm` voxels (channel 0 HU, channel 1 iodine where present) →
    (n, len(MEASUREMENTS))."""
    out = np.zeros((len(volumes), len(MEASUREMENTS)))
    if not len(volumes):
        return out
    geometry = _Geometry(volumes.shape[-1], spacing_mm)
    for i in range(len(volumes)):
        iodine = volumes[i, 1].astype(np.float32) if volumes.shape[1] > 1 and present[i, 1] else None
        out[i] = measure_node(volumes[i, 0].astype(np.float32), iodine, geometry)
    return out


def fit_reader(features: np.ndarray, labels: np.ndarray, seed: int):
    """The measurement reader: gradient-boosted trees on MEASUREMENTS (scikit-learn's histogram GBM handles the
    NaN iodine of single-energy studies and the non-linear interplay of size and diluted iodine in small nodes)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, max_leaf_nodes=15, l2_regularization=1.0,
                                          early_stopping=False, random_state=seed).fit(features, labels)


def describe(row: np.ndarray) -> str:
    """One node's MEASUREMENTS in a radiologist's words (for the report's captions)."""
    m = dict(zip(MEASUREMENTS, row))
    text = (f"measured: {np.exp(m['log_extent_axial_min_mm']):.0f} x {np.exp(m['log_extent_axial_max_mm']):.0f} mm "
            f"axially, {np.exp(m['log_extent_craniocaudal_mm']):.0f} mm cranio-caudal, "
            f"{np.exp(m['log_volume_ml']):.2f} mL; "
            f"median {m['hu_median']:.0f} HU (10th percentile {m['hu_p10']:.0f}); densest voxel at or next to it "
            f"{m['hu_max_near']:.0f} HU")
    if not np.isnan(m["iodine_median"]):
        text += f"; iodine {m['iodine_median']:.1f} mg/mL"
    return text
