"""The `ct` renderer: one contrast-enhanced neck CT study per patient with nodes (DICOM, one file per slice).

Per patient, from its own generator (seeded from the renderer's, so a study can be re-rendered alone): the neck
phantom (ct_anatomy) on a fine grid (the centre's pixel spacing in-plane, 0.625 mm along z), the nodes painted
into it (ct_nodes), then each series: fine slices averaged over the centre's slice thickness, the reconstruction
kernel's sharpness, noise with the kernel's texture (noise_hu is the centre's sd at 2.5 mm, scaled by
sqrt(2.5 / thickness)), written by ct_dicom. Series: a localizer; the contrast series (always); an unenhanced
5 mm series at some centres (index 0 or a sharp kernel, unless the profile says "unenhanced"); at dual-energy
centres a 40 keV virtual monoenergetic image (VMI) and an iodine map (CLINICAL_FACTS, CT: dual-energy iodine).
Node columns: ct_file (the study folder), ct_x_mm, ct_y_mm, ct_z_mm (node centre, LPS). What each node looks
like once rendered (semi-axes, mean HU of its solid part) is truth: truth/ct_nodes.csv.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from scipy.ndimage import binary_erosion, gaussian_filter

from ..cohort.media_fields import CT_NODE_FIELDS
from .centres import CentreProfile
from .chunk import Chunk
from .ct_anatomy import FINE_DZ_MM, HU_PER_MG, build_anatomy, make_grid
from .ct_dicom import DEFLATED, PLAIN, SeriesSpec, Study, atomic_study, write_axial, write_localizer
from .ct_nodes import CT_FEATURES, draw_look, paint_node, place_node
from .render_base import Rendered, Renderer

TRUTH_FILE = "ct_nodes.csv"
DEFAULT_SPACING_MM = 0.8
UNENHANCED_MM = 5.0
KERNEL_NOISE_SIGMA = {"soft": 1.3, "standard": 0.9, "sharp": 0.5}  # px: noise grain of each kernel
KERNEL_IMAGE_SIGMA = {"soft": 0.7, "standard": 0.4, "sharp": 0.0}  # px: blur of the image itself
SHARP_BOOST = 0.4                                                   # unsharp-mask gain of the sharp kernel
VMI_NOISE = 1.6                                                     # 40 keV images are noisier
IODINE_NOISE_MG = 0.2                                               # at 2.5 mm
DEFLATED_CENTRE = 0  # centre A writes a compressed transfer syntax (deflating costs ~1 s a study: kept off the test centre)


def _kernel(image: np.ndarray, kernel: str) -> np.ndarray:
    """The reconstruction kernel's sharpness on a stack of slices (in-plane only)."""
    if KERNEL_IMAGE_SIGMA.get(kernel, 0) > 0:
        sigma = KERNEL_IMAGE_SIGMA[kernel]
        return gaussian_filter(image, (0, sigma, sigma))
    if kernel == "sharp":
        return image + SHARP_BOOST * (image - gaussian_filter(image, (0, 1.0, 1.0)))
    return image


def _noise(shape, kernel: str, sd: float, rng: np.random.Generator) -> np.ndarray:
    """Correlated in-plane noise of standard deviation `sd`: coarse grain (soft) to fine, edge-enhanced (sharp)."""
    n = rng.standard_normal(shape, dtype=np.float32)
    sigma = KERNEL_NOISE_SIGMA.get(kernel, 0.9)
    n = gaussian_filter(n, (0, sigma, sigma))
    if kernel == "sharp":
        n = n + SHARP_BOOST * (n - gaussian_filter(n, (0, 1.0, 1.0)))
    return n * np.float32(sd / n.std())


def _slabs(fine: np.ndarray, thickness: float) -> np.ndarray:
    m = int(round(thickness / FINE_DZ_MM))
    return fine.reshape(fine.shape[0] // m, m, *fine.shape[1:]).mean(axis=1)


def _solid_hu(image: np.ndarray, region: tuple, solid: np.ndarray, m: int) -> tuple[float, int]:
    """Mean of `image` (slabs, noise-free) over the voxels lying (almost) wholly in the node's solid part, less
    the rim that the kernel mixes with the surroundings."""
    zs, ys, xs = region
    z0, z1 = zs.start // m * m, -(-zs.stop // m) * m
    frac = np.zeros((z1 - z0, *solid.shape[1:]), np.float32)
    frac[zs.start - z0:zs.stop - z0] = solid
    frac = frac.reshape(-1, m, *solid.shape[1:]).mean(axis=1)
    sel = frac >= min(0.95, 0.9 * frac.max())  # a thin node in thick slices: its most solid voxels
    core = binary_erosion(sel, np.ones((1, 3, 3), bool))  # one pixel in from the edge the kernel blurs
    sel = core if core.any() else sel
    return float(image[z0 // m:z1 // m, ys, xs][sel].mean()), int(sel.sum())


def render_study(folder: Path, patient_id: str, feats: list[dict], sides, levels, ct: dict, centre: int,
                 token: str, rng: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
    """Write one patient's study into `folder`; returns node centres (n, 3) and one truth row per node."""
    grid = make_grid(float(ct.get("pixel_spacing_mm", DEFAULT_SPACING_MM)))
    anatomy = build_anatomy(grid, float(ct.get("contrast_delay_s", 30.0)), rng)
    base, iod = anatomy.base, anatomy.iodine
    hu_offset = float(ct.get("hu_offset", 0.0))
    placed, shapes, painted = [], [], []
    for f, side, level in zip(feats, sides, levels):
        shape = place_node(anatomy, int(side), int(level), draw_look(f, hu_offset, rng), placed, rng)
        shapes.append(shape)
        painted.append(paint_node(base, iod, grid, shape))
    thickness, kernel = float(ct["slice_thickness_mm"]), str(ct["kernel"])
    noise_sd = float(ct["noise_hu"]) * np.sqrt(2.5 / thickness)
    base_s, iod_s = _slabs(base, thickness), _slabs(iod, thickness)
    conv = _kernel(base_s + np.float32(HU_PER_MG) * iod_s, kernel)
    m = int(round(thickness / FINE_DZ_MM))
    truth = []
    for shape, (region, solid) in zip(shapes, painted):
        hu, voxels = _solid_hu(conv, region, solid, m)
        tilt = np.degrees(np.arccos(min(1.0, abs(shape.rot[2, 2]))))
        truth.append({"semi_short_mm": shape.semi[0], "semi_mid_mm": shape.semi[1], "semi_long_mm": shape.semi[2],
                      "tilt_deg": tilt, "cystic_share": shape.cyst[1] ** 3 if shape.cyst else 0.0,
                      "calcifications": len(shape.foci), "placed": int(shape.placed), "solid_hu": hu,
                      "solid_voxels": voxels})
    z_slab = (np.arange(conv.shape[0]) + 0.5) * thickness
    x0, y0 = float(grid.x[0]), float(grid.y[0])
    geometry = {"x0": x0, "y0": y0, "spacing": grid.spacing}
    study = Study(patient_id, token, kernel, DEFLATED if centre == DEFLATED_CENTRE else PLAIN)
    phase = "arterial" if float(ct.get("contrast_delay_s", 30.0)) < 33 else "venous"
    axial = ("ORIGINAL", "PRIMARY", "AXIAL")
    with atomic_study(folder) as tmp:
        scout = (base + np.float32(HU_PER_MG) * iod).mean(axis=1)[::-2]  # frontal projection, head at the top
        write_localizer(tmp, study, scout, x0=x0, y=0.0, z_top=float(grid.z[-1]), row_mm=2 * FINE_DZ_MM,
                        col_mm=grid.spacing)
        spec = SeriesSpec(2, phase, f"Neck CT {phase} {thickness:g} mm", axial, contrast=True)
        write_axial(tmp, study, spec, conv + _noise(conv.shape, kernel, noise_sd, rng), z_slab,
                    thickness=thickness, **geometry)
        if ct.get("unenhanced", centre == 0 or kernel == "sharp"):
            plain = _kernel(_slabs(base, UNENHANCED_MM), kernel)
            plain += _noise(plain.shape, kernel, float(ct["noise_hu"]) * np.sqrt(2.5 / UNENHANCED_MM), rng)
            z5 = (np.arange(plain.shape[0]) + 0.5) * UNENHANCED_MM
            spec = SeriesSpec(3, "unenhanced", f"Neck CT unenhanced {UNENHANCED_MM:g} mm", axial, contrast=False)
            write_axial(tmp, study, spec, plain, z5, thickness=UNENHANCED_MM, **geometry)
        if ct.get("dual_energy"):
            derived = ("DERIVED", "SECONDARY", "AXIAL")
            vmi = conv + np.float32(HU_PER_MG) * _kernel(iod_s, kernel)  # HU_40 ≈ HU_120 + 25 HU per mg/mL
            vmi += _noise(vmi.shape, kernel, VMI_NOISE * noise_sd, rng)
            spec = SeriesSpec(4, "vmi40", f"Neck CT VMI 40 keV {thickness:g} mm", derived + ("VMI",), True, kvp=None)
            write_axial(tmp, study, spec, vmi, z_slab, thickness=thickness, **geometry)
            iodine = _kernel(iod_s, kernel)
            iodine += _noise(iodine.shape, kernel, IODINE_NOISE_MG * np.sqrt(2.5 / thickness), rng)
            spec = SeriesSpec(5, "iodine", f"Neck CT Iodine map {thickness:g} mm", derived + ("IODINE",), True,
                              iodine=True, kvp=None)
            write_axial(tmp, study, spec, iodine, z_slab, thickness=thickness, **geometry)
    return np.array([s.centre for s in shapes]).reshape(-1, 3), truth


def render_ct(chunk: Chunk, out_dir: Path, centres: Sequence[CentreProfile], rng: np.random.Generator) -> Rendered:
    media = Path(out_dir) / "media" / "ct"
    media.mkdir(parents=True, exist_ok=True)
    nodes = chunk.nodes
    n = len(chunk.node_ids)
    token = str(int(rng.integers(2**62)))
    seeds = rng.integers(2**63, size=len(chunk.patient_ids))  # one stream per patient: a study renders alone
    files = np.empty(n, dtype=object)
    xyz = np.zeros((n, 3))
    truth = []
    for p in np.unique(nodes.patient):  # a study only for patients with nodes: nothing else would point at it
        idx = np.flatnonzero(nodes.patient == p)
        pid, centre = str(chunk.patient_ids[p]), int(chunk.centre_idx[p])
        feats = [{k: nodes.features[k][i] for k in CT_FEATURES} for i in idx]
        xyz[idx], rows = render_study(media / pid, pid, feats, nodes.side[idx], nodes.level[idx],
                                      centres[centre].acquisition["ct"], centre, token,
                                      np.random.default_rng(seeds[p]))
        files[idx] = f"media/ct/{pid}"
        truth += [{"node_id": str(chunk.node_ids[i]), **row} for i, row in zip(idx, rows)]
    columns = ["node_id", "semi_short_mm", "semi_mid_mm", "semi_long_mm", "tilt_deg", "cystic_share",
               "calcifications", "placed", "solid_hu", "solid_voxels"]
    xyz = np.round(xyz, 2)
    return Rendered(nodes={"ct_file": files, "ct_x_mm": xyz[:, 0], "ct_y_mm": xyz[:, 1], "ct_z_mm": xyz[:, 2]},
                    truth={TRUTH_FILE: pd.DataFrame(truth, columns=columns).round(4)})


CT = Renderer("ct", render_ct, node_fields=CT_NODE_FIELDS)
