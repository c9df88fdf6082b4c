"""Each patient's bag of cytology tiles: which images to read, tiled at the model's magnification, background
skipped (io.slide_tiles), capped at `max_tiles` per patient so memory stays bounded on large cohorts.

A scanned slide (`kind` slide, or a TIFF/vendor slide file) holds the whole smear, so where a patient has one,
it alone is read; photographed fields are read only for patients without a slide (they show parts of the same
smear and would count those cells twice). Tiles stay uint8 (a patient's 1,000 tiles of 32 x 32 px are 3 MB).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..cohort import Cohort, LymphCastError

SLIDE_SUFFIXES = (".tif", ".tiff", ".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide")


@dataclass(frozen=True)
class Bags:
    patient_ids: pd.Index    # patients with at least one tile, in cohort order
    tiles: np.ndarray        # (N, s, s, 3) uint8
    owner: np.ndarray        # (N,) row of patient_ids each tile belongs to
    image: np.ndarray        # (N,) row of `images` each tile comes from
    coords: np.ndarray       # (N, 2) top-left (x, y) of the tile in its image's full-resolution pixels
    images: pd.DataFrame     # the images read: image_id, patient_id, image_file, kind, stain, tile_base_px
    normalised: np.ndarray   # (len(images),) bool: stain normalisation succeeded for that image

    def members(self) -> list[np.ndarray]:
        """Tile rows of each patient, in patient_ids order."""
        order = np.argsort(self.owner, kind="stable")
        bounds = np.searchsorted(self.owner[order], np.arange(len(self.patient_ids) + 1))
        return [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def __len__(self) -> int:
        return len(self.patient_ids)


def _is_slide(row) -> bool:
    kind = str(row.get("kind", "") or "").strip()
    if kind in ("slide", "field"):
        return kind == "slide"
    return str(row["image_file"]).lower().endswith(SLIDE_SUFFIXES)


def cytology_images(cohort: Cohort) -> pd.DataFrame:
    """The images to read, one or more per patient: the slides of patients who have one, else their fields."""
    table = cohort.cytology
    if not len(table) or "image_file" not in table.columns:
        return pd.DataFrame(columns=["image_id", "patient_id", "image_file", "kind", "microns_per_pixel", "stain"])
    table = table[table["patient_id"].isin(cohort.patients["patient_id"])].copy()
    table = table[table["image_file"].fillna("").astype(str).str.strip() != ""]
    table["kind"] = ["slide" if _is_slide(r) else "field" for r in table.to_dict("records")]
    has_slide = set(table.loc[table["kind"] == "slide", "patient_id"])
    keep = (table["kind"] == "slide") | ~table["patient_id"].isin(has_slide)
    for optional in ("microns_per_pixel", "stain"):
        if optional not in table.columns:
            table[optional] = np.nan
    columns = ["image_id", "patient_id", "image_file", "kind", "microns_per_pixel", "stain"]
    return table.loc[keep, columns].reset_index(drop=True)


def covered(cohort: Cohort) -> pd.Index:
    return pd.Index(pd.unique(cytology_images(cohort)["patient_id"]), name="patient_id")


def read_bags(cohort: Cohort, *, tile_px: int, mpp: float, max_tiles: int, min_tissue: float, seed: int = 0,
              progress: bool = True) -> Bags:
    """Tiles of every patient with cytology images, as stained (normalise_bags maps them to a reference)."""
    from rich.progress import Progress

    from ..io.slide_tiles import TileSpec, read_tiles

    if cohort.root is None:
        raise LymphCastError("the cytology model reads images, so the cohort must come from a folder")
    images = cytology_images(cohort)
    spec = TileSpec(size=tile_px, mpp=mpp, min_tissue=min_tissue)
    rng = np.random.default_rng(seed)
    tiles, owner, source, coords, base_px = [], [], [], [], []
    order = {p: i for i, p in enumerate(pd.unique(images["patient_id"]))}
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("tiling cytology images", total=len(images))
        for row in images.itertuples():
            stated = float(row.microns_per_pixel) if pd.notna(row.microns_per_pixel) else None
            plan, got = read_tiles(cohort.media_path(str(row.image_file).strip()), spec, mpp=stated)
            tiles.append(got)
            owner.append(np.full(len(got), order[row.patient_id]))
            source.append(np.full(len(got), row.Index))
            coords.append(np.asarray(plan.coords).reshape(-1, 2))
            base_px.append(float(plan.tile_base_px))
            bar.advance(task)
    images = images.assign(tile_base_px=base_px)
    if not tiles:
        empty = np.zeros((0, tile_px, tile_px, 3), np.uint8)
        return Bags(pd.Index([], name="patient_id"), empty, np.zeros(0, int), np.zeros(0, int),
                    np.zeros((0, 2), int), images, np.zeros(len(images), bool))
    tiles, owner = np.concatenate(tiles), np.concatenate(owner)
    source, coords = np.concatenate(source), np.concatenate(coords)
    keep = _cap(owner, max_tiles, rng)
    with_tiles, owner = np.unique(owner[keep], return_inverse=True)  # a patient whose images are blank has no bag
    return Bags(pd.Index(np.array(list(order), dtype=object)[with_tiles], name="patient_id"), tiles[keep], owner,
                source[keep], coords[keep], images, np.zeros(len(images), bool))


def normalise_bags(bags: Bags, reference: dict) -> Bags:
    """Every image's tiles mapped onto the reference stains (cytology_stain), image by image."""
    from .cytology_stain import normalise_tiles

    tiles, done = bags.tiles.copy(), np.zeros(len(bags.images), bool)
    for i in np.unique(bags.image):
        rows = np.flatnonzero(bags.image == i)
        tiles[rows], done[i] = normalise_tiles(bags.tiles[rows], reference)
    return replace(bags, tiles=tiles, normalised=done)


def grey_bags(bags: Bags) -> Bags:
    """Every tile as grey levels (luminance, repeated in the three channels the encoder reads). A lab's stain
    differs from another's mostly in hue, and hue carries little of the morphology the model needs (nuclear size,
    crowding, cohesion, shapes); after stain normalisation, grey tiles left a Diff-Quik lab 0.02 AUC behind the
    same slides in Papanicolaou, against 0.09 in colour (bench_cytology's stain swap, seed 31)."""
    t = bags.tiles.astype(np.float32)
    grey = np.rint(0.299 * t[..., 0] + 0.587 * t[..., 1] + 0.114 * t[..., 2]).clip(0, 255).astype(bags.tiles.dtype)
    return replace(bags, tiles=np.repeat(grey[..., None], 3, axis=-1))


def _cap(owner: np.ndarray, max_tiles: int, rng: np.random.Generator) -> np.ndarray:
    """Rows to keep: every tile of patients with at most max_tiles, a random (seeded) max_tiles of the others."""
    keep = []
    for p in np.unique(owner):
        rows = np.flatnonzero(owner == p)
        keep.append(rows if len(rows) <= max_tiles else np.sort(rng.choice(rows, max_tiles, replace=False)))
    return np.concatenate(keep) if keep else np.zeros(0, int)
