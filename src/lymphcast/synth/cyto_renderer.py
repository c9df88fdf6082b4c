"""The `cytology` renderer: one scanned slide and two photographed fields of the primary tumour's FNA per patient.

Per patient, from its own generator (seeded from the renderer's, so a patient can be re-rendered alone): a scene
laid out from the latent cytology features (cyto_scene), the slide's stain (Diff-Quik at centre A, Pap
elsewhere, with the centre's hue and intensity; cyto_stain), then
  media/cytology/<pid>/slide.tif      pyramidal tiled TIFF, level 0 SLIDE_PX square at 0.5 um/px (JPEG q90)
  media/cytology/<pid>/field_1.png    FIELD_PX square at 0.25 um/px, centred on a cell group, own focus and
  media/cytology/<pid>/field_2.png    vignetting (a cytopathologist's photographs; pHYs holds the pixel size)
cytology.csv gets one row per image (kind, microns_per_pixel, stain); truth/cytology_cells.csv what each slide
shows (cells drawn by type, single cells, clusters, nuisance bodies).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from ..io.slide_write import write_pyramid
from .centres import CentreProfile
from .chunk import Chunk
from .cyto_raster import rasterise
from .cyto_scene import build_scene
from .cyto_stain import slide_stain
from .render_base import Rendered, Renderer

SLIDE_PX = 2048            # level 0 side: 1.02 mm at SLIDE_MPP
SLIDE_MPP = 0.5
FIELD_PX = 640
FIELD_MPP = 0.25
FIELDS = 2
DIFF_QUIK_CENTRE = 0       # centre A stains Diff-Quik, the others Pap (centres.py draws it at random: ignored)
TRUTH_FILE = "cytology_cells.csv"
FEATURES = ("hobnail_fraction", "tall_cell_fraction", "micropapillary", "loss_of_cohesion")
TRUTH_COLUMNS = ("patient_id", "tumour_cells", "hobnail_cells", "tall_cells", "single_cells",
                 "micropapillary_clusters", "psammoma_bodies", "papillary_fragments", "stain")


def stain_of(centre: int) -> str:
    return "Diff-Quik" if centre == DIFF_QUIK_CENTRE else "Pap"


def _field_centres(groups: np.ndarray, size_um: float, rng: np.random.Generator) -> np.ndarray:
    """Where the photographs are taken: on cell groups (larger ones more often), clear of the slide's edge."""
    half = min(FIELD_PX * FIELD_MPP / 2, size_um / 2)
    if len(groups):
        pick = rng.choice(len(groups), FIELDS, replace=len(groups) < FIELDS, p=groups[:, 2] / groups[:, 2].sum())
        at = groups[pick, :2] + rng.normal(0, 15, (FIELDS, 2))
    else:
        at = rng.uniform(half, size_um - half, (FIELDS, 2))
    return np.clip(at, half, size_um - half)


def _write_png(path: Path, rgb: np.ndarray, mpp: float) -> None:
    tmp = path.with_name(path.name + ".partial")
    try:
        dpi = 25400.0 / mpp  # Pillow writes pHYs in pixels per metre from dots per inch
        Image.fromarray(rgb).save(tmp, format="PNG", dpi=(dpi, dpi), compress_level=2)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def render_patient(folder: Path, feats: dict, centre: int, acquisition: dict, rng: np.random.Generator,
                   slide_px: int | None = None, stain: str | None = None) -> dict:
    """Write one patient's slide and fields into `folder`; returns its truth counts (with the stain).

    `stain`: another stain system than the centre's (stain_swap). slide_stain draws the same numbers for every
    system and nothing after it reads the system's colours to decide a draw, so only the colours change."""
    slide_px = SLIDE_PX if slide_px is None else slide_px
    size_um = slide_px * SLIDE_MPP
    scene = build_scene(feats, size_um, rng)
    stain = slide_stain(stain or stain_of(centre), acquisition, rng)
    folder.mkdir(parents=True, exist_ok=True)
    slide = rasterise(scene.prims, 0.0, 0.0, slide_px, SLIDE_MPP, stain, rng, vignette=0.01)
    write_pyramid(folder / "slide.tif", slide, SLIDE_MPP, description=f"LymphCast synthetic cytology, {stain.stain}")
    span = FIELD_PX * FIELD_MPP
    for i, (cx, cy) in enumerate(_field_centres(scene.groups, size_um, rng), start=1):
        field = rasterise(scene.prims, cx - span / 2, cy - span / 2, FIELD_PX, FIELD_MPP, stain, rng,
                          focus_um=float(rng.uniform(0.25, 0.8)), vignette=float(rng.uniform(0.04, 0.15)))
        _write_png(folder / f"field_{i}.png", field, FIELD_MPP)
    return {**scene.counts, "stain": stain.stain}


def render_cytology(chunk: Chunk, out_dir: Path, centres: Sequence[CentreProfile],
                    rng: np.random.Generator, restain: Mapping[int, str] | None = None) -> Rendered:
    """`restain` {centre index: stain}: render only those centres' patients, each in that stain, from the same
    per-patient streams as the cohort's own rendering (stain_swap re-renders a cohort's centre this way)."""
    media = Path(out_dir) / "media" / "cytology"
    seeds = rng.integers(2**63, size=len(chunk.patient_ids))  # one stream per patient: a slide renders alone
    rows, truth = [], []
    for p, pid in enumerate(chunk.patient_ids):
        pid, centre = str(pid), int(chunk.centre_idx[p])
        if restain is not None and centre not in restain:
            continue
        feats = {k: chunk.cytology[k][p] for k in FEATURES}
        counts = render_patient(media / pid, feats, centre, centres[centre].acquisition.get("cytology", {}),
                                np.random.default_rng(seeds[p]), stain=None if restain is None else restain[centre])
        truth.append({"patient_id": pid, **counts})
        base = f"media/cytology/{pid}"
        rows.append({"image_id": f"{pid}-S", "patient_id": pid, "image_file": f"{base}/slide.tif",
                     "kind": "slide", "microns_per_pixel": SLIDE_MPP, "stain": counts["stain"]})
        rows += [{"image_id": f"{pid}-F{i}", "patient_id": pid, "image_file": f"{base}/field_{i}.png",
                  "kind": "field", "microns_per_pixel": FIELD_MPP, "stain": counts["stain"]}
                 for i in range(1, FIELDS + 1)]
    columns = ["image_id", "patient_id", "image_file", "kind", "microns_per_pixel", "stain"]
    return Rendered(cytology=pd.DataFrame(rows, columns=columns),
                    truth={TRUTH_FILE: pd.DataFrame(truth, columns=list(TRUTH_COLUMNS))})


CYTOLOGY = Renderer("cytology", render_cytology)
