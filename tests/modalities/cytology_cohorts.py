"""Cytology cohorts with a planted signal, written as real files (no synthetic generator): each patient has one
photographed field (PNG, 0.5 µm per pixel) of pale cells with small round nuclei; in patients with N1b a share of
the cells carry a long dark bar instead. Stains differ by centre (centre B's colours are another lab's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from lymphcast.cohort import Centre, Cohort, CohortMeta, write_cohort

NUCLEUS = {"A": (95, 70, 150), "B": (120, 60, 110)}      # RGB of nuclei by centre's stain
CYTOPLASM = {"A": (200, 215, 225), "B": (215, 190, 215)}


def field(positive: bool, centre: str, rng: np.random.Generator, size: int = 256, share: float = 0.4) -> np.ndarray:
    image = np.full((size, size, 3), 246, np.uint8)
    for _ in range(60):
        r, c = rng.integers(4, size - 28, 2)
        image[r:r + 24, c:c + 24] = CYTOPLASM[centre]
        if positive and rng.random() < share:
            image[r + 2:r + 22, c + 9:c + 14] = NUCLEUS[centre]    # the planted kind: a long dark bar
        else:
            image[r + 8:r + 16, c + 8:c + 16] = NUCLEUS[centre]    # an ordinary round nucleus
    return image


def write_planted_cohort(folder: Path, n: int = 48, seed: int = 0, centres=("A",), share: float = 0.4) -> Path:
    rng = np.random.default_rng(seed)
    ids = [f"c{i:03d}" for i in range(n)]
    y = np.arange(n) % 2
    centre = [centres[(i // 2) % len(centres)] for i in range(n)]  # both classes at every centre
    patients = pd.DataFrame({"patient_id": ids, "centre": centre, "n1b": pd.array(y, dtype="Int64")})
    meta = CohortMeta(name="planted-cytology", centres=[Centre(id=c) for c in centres])
    write_cohort(Cohort(meta=meta, fields={}, patients=patients), folder)
    rows = []
    media = folder / "media" / "cytology"
    media.mkdir(parents=True)
    for pid, label, c in zip(ids, y, centre):
        Image.fromarray(field(bool(label), c, rng, share=share)).save(media / f"{pid}.png")
        rows.append({"image_id": f"{pid}-F1", "patient_id": pid, "image_file": f"media/cytology/{pid}.png",
                     "kind": "field", "microns_per_pixel": 0.5})
    pd.DataFrame(rows).to_csv(folder / "cytology.csv", index=False)
    return folder
