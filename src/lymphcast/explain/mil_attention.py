"""Why the cytology model said what it said: its attention over the tiles of a patient's smear.

Per patient: the slide (or photographed field) at low magnification with each tile coloured by its attention
weight, beside the most attended tiles at the model's magnification (after stain normalisation, as the network
saw them). The report shows these for the model's most confident correct and wrong calls (explain.gallery's
choice of cases). Attention says which tiles weighed most in the pooled patient vector, not that they are
malignant: the caption says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..cohort import Cohort
from .gallery import choose_cases

FOLDER = "cytology_gallery"
THUMB_PX = 640   # longest side of the slide picture
TOP_TILES = 8


@dataclass(frozen=True)
class CytologyEntry:
    category: str
    patient_id: str
    probability: float
    label: int
    image_id: str            # the image shown (where a patient has several: the one holding most attention)
    tiles: int               # tiles in the patient's bag
    png: str
    threshold: float
    details: str = ""        # the measurement reader's findings and each reader's share, where the model has one

    def to_dict(self) -> dict:
        return asdict(self)


def _overview(path: Path, mpp: float | None) -> tuple[np.ndarray, float]:
    """The image at low magnification and its size relative to full resolution (thumbnail px per image px)."""
    from PIL import Image

    from ..io.slide import open_slide

    with open_slide(path, mpp=mpp) as slide:
        levels = slide.levels
        pick = max((i for i, lv in enumerate(levels) if max(lv.width, lv.height) >= THUMB_PX), default=0)
        lv = levels[pick]
        image = slide.read(pick, 0, 0, lv.width, lv.height)
        full = levels[0].width
    scale = THUMB_PX / max(image.shape[:2])
    if scale < 1:
        image = np.asarray(Image.fromarray(image).resize((round(image.shape[1] * scale),
                                                          round(image.shape[0] * scale)), Image.BILINEAR))
    return image, image.shape[1] / full


def attention_overlay(shape: tuple[int, int], coords: np.ndarray, tile_base_px: float, attention: np.ndarray,
                      scale: float) -> np.ndarray:
    """(H, W) map over a thumbnail of `shape`: each tile's attention (relative to a uniform share, so 1 = average)
    painted over its square; NaN where there is no tile."""
    out = np.full(shape, np.nan)
    rel = attention * len(attention)
    side = max(1, int(round(tile_base_px * scale)))
    for (x, y), a in zip(coords, rel):
        c, r = int(x * scale), int(y * scale)
        out[r:r + side, c:c + side] = a
    return out


def attention_picture(thumb: np.ndarray, overlay: np.ndarray, top: np.ndarray, top_att: np.ndarray,
                      title: str) -> np.ndarray:
    """RGB picture: slide with the attention map, and the most attended tiles with their weights."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(10, 4.6), dpi=100)
    grid = fig.add_gridspec(2, 6, width_ratios=[2.2, 2.2, 1, 1, 1, 1])
    ax = fig.add_subplot(grid[:, :2])
    ax.imshow(thumb)
    # only tiles above an average share are coloured, so the smear stays visible under the rest
    vmax = max(2.0, float(np.nanpercentile(overlay, 99)) if np.isfinite(overlay).any() else 2.0)
    shown = ax.imshow(np.ma.masked_where(~(overlay >= 1.0), overlay), cmap="autumn_r", alpha=0.6, vmin=1.0,
                      vmax=vmax)
    bar = fig.colorbar(shown, ax=ax, orientation="horizontal", fraction=0.05, pad=0.03)
    bar.set_label("attention (1 = an average tile; below 1 not coloured)", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    for i, (tile, a) in enumerate(zip(top, top_att)):
        sub = fig.add_subplot(grid[i // 4, 2 + i % 4])
        sub.imshow(tile)
        sub.set_title(f"{a:.1f}x", fontsize=8)
        sub.axis("off")
    fig.text(0.72, 0.13, "most attended tiles (stain-normalised, as the model saw them);\nattention = weight in "
             "the patient's pooled vector, not a diagnosis", fontsize=7, ha="center", va="top")
    fig.canvas.draw()
    picture = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return picture


def cytology_pictures(model, cohort: Cohort,
                      probabilities: pd.Series | None = None) -> dict[str, tuple[str, int, np.ndarray]]:
    """patient_id → (image_id shown, tiles in the bag, RGB picture) for every patient of `cohort` with tiles."""
    bags = model.bags(cohort)
    _, attention = model.attend(bags)
    out = {}
    for p, (rows, att) in enumerate(zip(bags.members(), attention)):
        pid = str(bags.patient_ids[p])
        per_image = pd.Series(att).groupby(bags.image[rows]).sum()
        image_row = int(per_image.idxmax())
        image = bags.images.iloc[image_row]
        on_image = bags.image[rows] == image_row
        mpp = float(image["microns_per_pixel"]) if pd.notna(image["microns_per_pixel"]) else None
        thumb, scale = _overview(cohort.media_path(str(image["image_file"]).strip()), mpp)
        overlay = attention_overlay(thumb.shape[:2], bags.coords[rows][on_image], float(image["tile_base_px"]),
                                    att[on_image] / max(att[on_image].sum(), 1e-12), scale)
        order = np.argsort(-att)[:TOP_TILES]
        prob = float(probabilities.get(pid, np.nan)) if probabilities is not None else float("nan")
        title = f"patient {pid}: P(N1b) {prob:.2f}, {len(rows)} tiles" if np.isfinite(prob) else f"patient {pid}"
        out[pid] = (str(image["image_id"]), len(rows),
                    attention_picture(thumb, overlay, bags.tiles[rows][order], att[order] * len(att), title))
    return out


def build_cytology_gallery(model, cohort: Cohort, predictions: pd.DataFrame, threshold: float,
                           report_dir: str | Path, *, per_category: int = 2,
                           folder: str = FOLDER) -> list[CytologyEntry]:
    """The most confident correct and wrong calls among patients with cytology images, one PNG each in
    report_dir/<folder>/."""
    from PIL import Image

    from ..modalities.cytology_bags import covered

    labels = cohort.labels()
    frame = predictions[["patient_id", "probability"]][predictions["patient_id"].isin(set(covered(cohort)))]
    frame = frame.assign(label=labels.reindex(frame["patient_id"]).to_numpy())
    cases = choose_cases(frame, threshold, per_category)
    if cases.empty:
        return []
    pictures = cytology_pictures(model, cohort.subset(cases["patient_id"]),
                                 predictions.set_index("patient_id")["probability"])
    details = model.patient_details(cohort, list(pictures))
    entries, rank = [], {}
    (Path(report_dir) / folder).mkdir(parents=True, exist_ok=True)
    for case in cases.itertuples(index=False):
        if case.patient_id not in pictures:
            continue
        image_id, tiles, picture = pictures[case.patient_id]
        rank[case.category] = rank.get(case.category, 0) + 1
        name = f"{case.category.replace(' ', '_')}_{rank[case.category]}.png"
        Image.fromarray(picture).save(Path(report_dir) / folder / name, format="PNG")
        entries.append(CytologyEntry(case.category, str(case.patient_id), float(case.probability), int(case.label),
                                     image_id, tiles, f"{folder}/{name}", float(threshold),
                                     details.get(str(case.patient_id), "")))
    return entries
