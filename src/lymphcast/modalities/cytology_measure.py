"""Morphometry of a cytology smear: what a cytopathologist counts when grading aggressive PTC, measured on the
stain-normalised tiles the model reads.

Each image's kept tiles are put back in place on their grid and read in windows (WINDOW_UM square plus a
MARGIN_UM border; an object belongs to the window holding its centre), so a slide of any size costs one window
of memory. Two images per window: the amount of nuclear stain per pixel (colour deconvolution of the normalised
tile with the model's reference stain vectors, Macenko's first vector) and the stained material (any stain, from
grey levels against the image's glass). In a window:
- nuclei: local maxima of the lightly smoothed nuclear stain holding at least half the stain of the patient's
  densest maxima (NUCLEAR_SHARE of the NUCLEAR_QUANTILE; red cells, cytoplasm and colloid stay below). Per
  nucleus: its stain, its *contrast* (how far it stands above its surroundings) and the cytoplasmic stain around
  it, each relative to the patient's median nucleus, so a lab's stain strength cancels. A hobnail cell's
  hyperchromatic nucleus bulging out of a group's edge holds 1.2-2 x the stain and stands out 1.5-2.3 x as far
  as the pale nuclei of classic PTC cells lying on their own cytoplasm, with little cytoplasm around it; a tall
  cell's nucleus sits in dense cytoplasm; a lymphocyte's stands out more than 2.3 x. Where cytology.csv calls a
  smear Diff-Quik, dense cytoplasm takes the nuclei's own purple (a Romanowsky stain), so after normalisation it
  reads as nuclear stain, not cytoplasmic: there a tall cell is a nucleus whose surroundings hold at least
  DQ_TALL_SURROUND x the median nucleus's nuclear stain (rank correlation with the tall cells drawn, seed 71:
  0.68 against 0.39 by the cytoplasmic rule; in Pap smears that rule stays best, 0.71 against below 0.60);
- clusters: connected regions of stained material, each with its nuclei.
Per patient (its images pooled), MEASUREMENTS:
- nuclei: log of the number of nuclei found;
- hobnail_like, tall_like, lymphocyte_like: share of nuclei looking like those (bands above; tall: at least
  1.5 x the median cytoplasmic stain around it);
- dispersed: share of nuclei lying alone or in clusters of 2-3 (loss of cohesion);
- small_clusters: clusters of 6-14 nuclei per 1,000 nuclei (log): micropapillary clusters are balls of 5-12
  cells, while cohesive groups hold more and dispersed cells fewer.
The reader (fit_reader) weighs the four aggressive features (READER_COLUMNS); the number of nuclei and the
lymphocytes are measured for the report's caption.
Written here (scipy.ndimage) because no installed library measures cytology smears. Distances are in micrometres
and stain amounts relative, so any magnification and stain strength reads alike.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

WINDOW_UM = 1024.0
MARGIN_UM = 48.0          # > the largest object counted whole (a 14-nucleus cluster is ~40 um across)
SMOOTH_UM = 0.8           # smoothing before looking for nuclear maxima
AROUND_UM = 3.0           # cytoplasmic stain is read this close around a nucleus
SURROUND_UM = 5.0         # the surroundings a nucleus is compared with (about a cell's radius)
MIN_SPACING_UM = 3.5      # a nucleus is the highest point of a square this wide (for its own measurements) ...
COUNT_SPACING_UM = 7.0    # ... or this wide when counting a cluster's nuclei (grainy chromatin and grooves split
                          # one nucleus into two maxima; in Diff-Quik smears often enough to pass a clump of dispersed
                          # cells off as a micropapillary cluster: AUC 0.84 counting at 3.5 um, 0.95 at 7, seed 67)
TISSUE_OD = 0.03          # grey OD (log10, smoothed) above the glass that counts as stained material
MIN_AREA_UM2 = 20.0       # smaller stained specks are debris
GLASS_LEVEL = 240.0       # normalised tiles' glass level (Macenko's Io)
NUCLEAR_QUANTILE = 95     # the patient's densest maxima (percentile of their nuclear stain) ...
NUCLEAR_SHARE = 0.5       # ... of which a nucleus holds at least this share
HOBNAIL_STAIN = (1.2, 2.0)     # hobnail nuclei, relative to the median nucleus: stain ...
HOBNAIL_CONTRAST = (1.5, 2.3)  # ... contrast ...
HOBNAIL_AROUND = 2.0           # ... and at most this much cytoplasmic stain around
TALL_AROUND = 1.5              # tall cells: at least this much cytoplasmic stain around the nucleus ...
DQ_TALL_SURROUND = 1.1         # ... or, in Diff-Quik smears, this much nuclear stain in its surroundings
ROMANOWSKY = ("Diff-Quik",)    # stains (cytology.csv) that colour dense cytoplasm like nuclei
LYMPHOCYTE_CONTRAST = 2.3
LIKE = ("hobnail_like", "tall_like", "lymphocyte_like")
SMALL = (6, 14)           # nuclei in a small cluster
MEASUREMENTS = ("nuclei", *LIKE, "dispersed", "small_clusters")


def stain_amounts(tiles: np.ndarray, stain_vectors: np.ndarray) -> np.ndarray:
    """Amounts (..., 2) of the nuclear and the cytoplasmic stain per pixel of normalised RGB tiles (..., 3)
    uint8: least squares of each pixel's optical density (against the normalised glass level) on the
    reference's two stain vectors (3, 2)."""
    od = np.maximum(-np.log((tiles.astype(np.float32) + 1.0) / (GLASS_LEVEL + 1.0)), 0.0)
    unmix = np.linalg.pinv(np.asarray(stain_vectors, np.float32))  # (2, 3)
    return np.maximum(od @ unmix.T.astype(np.float32), 0.0)


def background_level(values: np.ndarray) -> float:
    """Grey level (0-255) of an image's glass: the most frequent level among its brighter half (kept tiles are
    mostly glass around a few cells; a dense smear still shows glass between its groups). A tinted background
    (the proteinaceous film of a Diff-Quik smear) counts as glass: stained material is what lies on it."""
    values = np.asarray(values, np.uint8).ravel()
    if not len(values):
        return 255.0
    bright = values[values >= np.median(values)]
    return float(max(np.argmax(np.bincount(bright, minlength=256)), 1))


def _inside(core: tuple[slice, slice], y: np.ndarray, x: np.ndarray) -> np.ndarray:
    return (core[0].start <= y) & (y < core[0].stop) & (core[1].start <= x) & (x < core[1].stop)


def window_objects(stain: np.ndarray, cytoplasm: np.ndarray, grey: np.ndarray, core: tuple[slice, slice], mpp: float,
                   background: float) -> dict:
    """Candidate nuclei (maxima of nuclear stain) and clusters of one window; only objects centred in `core`
    (the window less its margin) are returned, so overlapping windows count each object once. A candidate's
    cluster is its row in the window's cluster arrays ("cluster_*"), counted or not."""
    smooth = ndi.gaussian_filter(stain, SMOOTH_UM / mpp)
    contrast = smooth - ndi.gaussian_filter(stain, SURROUND_UM / mpp, truncate=3.0)
    size, count_size = (max(3, int(round(um / mpp)) | 1) for um in (MIN_SPACING_UM, COUNT_SPACING_UM))
    od = np.log10(background / np.clip(grey, 1.0, None)).clip(0, None)
    tissue = ndi.gaussian_filter(od, SMOOTH_UM / mpp) > TISSUE_OD
    peaks = (smooth == ndi.maximum_filter(smooth, size=size)) & (smooth > 0) & tissue
    counting = (smooth == ndi.maximum_filter(smooth, size=count_size)) & (smooth > 0) & tissue
    labels, n = ndi.label(tissue)
    area = np.bincount(labels.ravel(), minlength=n + 1) * mpp * mpp
    ids = np.flatnonzero(area >= MIN_AREA_UM2)
    ids = ids[ids > 0]
    row_of = np.full(n + 1, -1)
    row_of[ids] = np.arange(len(ids))
    ys, xs = np.nonzero(peaks)
    rows = row_of[labels[ys, xs]]
    ys, xs, rows = ys[rows >= 0], xs[rows >= 0], rows[rows >= 0]
    cy, cx = np.nonzero(counting)
    count_rows = row_of[labels[cy, cx]]
    cy, cx, count_rows = cy[count_rows >= 0], cx[count_rows >= 0], count_rows[count_rows >= 0]
    ty, tx = np.nonzero(labels)
    own = labels[ty, tx]
    size_px = np.maximum(np.bincount(own, minlength=n + 1), 1)
    centres = np.column_stack([np.bincount(own, ty, minlength=n + 1) / size_px,
                               np.bincount(own, tx, minlength=n + 1) / size_px])[ids]  # centres of mass
    around = ndi.gaussian_filter(cytoplasm, AROUND_UM / mpp, truncate=3.0)[ys, xs]
    mine = _inside(core, ys, xs)
    return {"stain": smooth[ys, xs][mine], "contrast": contrast[ys, xs][mine], "cluster": rows[mine],
            "around": around[mine], "count_stain": smooth[cy, cx], "count_cluster": count_rows,
            "cluster_counted": _inside(core, centres[:, 0], centres[:, 1])}


def image_objects(tiles: np.ndarray, coords: np.ndarray, tile_base_px: float, mpp: float,
                  stain_vectors: np.ndarray) -> list[dict]:
    """The objects of one image from its kept tiles (normalised RGB, N x s x s x 3) at their level-0 positions,
    window by window over the tile grid (tiles not kept read as glass)."""
    if not len(tiles):
        return []
    s = tiles.shape[1]
    grey = np.rint(tiles.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).clip(0, 255)
    background = background_level(grey.astype(np.uint8))
    amounts = stain_amounts(tiles, stain_vectors)  # every tile at once: one unmixing per image
    cells = np.rint(np.asarray(coords, float) / float(tile_base_px)).astype(int)[:, ::-1]  # (row, col)
    step = max(1, int(round(WINDOW_UM / mpp / s)))
    margin = int(np.ceil(MARGIN_UM / mpp / s))
    low = cells.min(0)
    found = []
    for r0, c0 in sorted({(r - r % step, c - c % step) for r, c in (cells - low).tolist()}):
        rel = cells - (low + (r0, c0) - margin)
        near = np.flatnonzero(((rel >= 0) & (rel < step + 2 * margin)).all(axis=1))
        side = (step + 2 * margin) * s
        stain = np.zeros((side, side, 2), np.float32)
        plain = np.full((side, side), background, np.float32)
        for i in near:
            at = (slice(rel[i, 0] * s, (rel[i, 0] + 1) * s), slice(rel[i, 1] * s, (rel[i, 1] + 1) * s))
            stain[at] = amounts[i]
            plain[at] = grey[i]
        core = (slice(margin * s, (margin + step) * s),) * 2
        found.append(window_objects(stain[..., 0], stain[..., 1], plain, core, mpp, background))
    return found


def nuclear_threshold(values: np.ndarray) -> float:
    """Nuclear stain a maximum must hold to count as a nucleus: a share of the patient's densest maxima. Every
    smear holds hundreds of tumour nuclei, the densest objects in it, so the quantile sits on nuclei whatever the
    stain's strength (a histogram split, e.g. Otsu's, followed the red cells and colloid of Diff-Quik smears)."""
    values = values[values > 0]
    return float(NUCLEAR_SHARE * np.percentile(values, NUCLEAR_QUANTILE)) if len(values) else 0.0


def summarise(objects: list[dict], stain_name: str | None = None) -> dict:
    """A patient's MEASUREMENTS from the candidates and clusters of all its windows (NaN where none was found);
    `stain_name` as cytology.csv names it (None: unknown, read as Papanicolaou)."""
    out = dict.fromkeys(MEASUREMENTS, np.nan)
    if not objects:
        return out
    offsets = np.cumsum([0] + [len(o["cluster_counted"]) for o in objects])
    cat = {k: np.concatenate([o[k] for o in objects]) for k in ("stain", "contrast", "around")}
    cluster = np.concatenate([o["cluster"] + off for o, off in zip(objects, offsets[:-1])]).astype(int)
    counted = np.concatenate([o["cluster_counted"] for o in objects])
    threshold = nuclear_threshold(cat["stain"])
    nuclei = cat["stain"] > threshold
    n = int(nuclei.sum())
    out["nuclei"] = float(np.log1p(n))
    if n < 10:
        return out
    cat["surround"] = cat["stain"] - cat["contrast"]  # the surroundings' nuclear stain (contrast's other term)
    stain, contrast, around, surround = (cat[k][nuclei] / max(float(np.median(cat[k][nuclei])), 1e-6)
                                         for k in ("stain", "contrast", "around", "surround"))
    hobnail = ((stain >= HOBNAIL_STAIN[0]) & (stain < HOBNAIL_STAIN[1]) & (contrast >= HOBNAIL_CONTRAST[0])
               & (contrast < HOBNAIL_CONTRAST[1]) & (around < HOBNAIL_AROUND))
    out["hobnail_like"] = float(np.mean(hobnail))
    tall = surround >= DQ_TALL_SURROUND if stain_name in ROMANOWSKY else around >= TALL_AROUND
    out["tall_like"] = float(np.mean(tall))
    out["lymphocyte_like"] = float(np.mean(contrast >= LYMPHOCYTE_CONTRAST))
    per_cluster = np.bincount(cluster[nuclei], minlength=len(counted))
    count_cluster = np.concatenate([o["count_cluster"] + off for o, off in zip(objects, offsets[:-1])]).astype(int)
    counted_nuclei = np.concatenate([o["count_stain"] for o in objects]) > threshold
    per_cluster_counted = np.bincount(count_cluster[counted_nuclei], minlength=len(counted))
    out["dispersed"] = float(np.mean(per_cluster[cluster[nuclei]] <= 3))
    small = counted & (per_cluster_counted >= SMALL[0]) & (per_cluster_counted <= SMALL[1])
    out["small_clusters"] = float(np.log1p(1000.0 * small.sum() / n))
    return out


def patient_stain(images, rows: np.ndarray) -> str | None:
    """The stain of a patient's images (`rows`: their rows of `images`), the commonest where several are named;
    None where cytology.csv names none."""
    if "stain" not in images.columns:
        return None
    named = images["stain"].iloc[np.asarray(rows, int)].dropna().astype(str).str.strip()
    named = named[named != ""]
    return str(named.mode().iat[0]) if len(named) else None


def measure_bags(bags, stain_vectors: np.ndarray, mpp: float, progress: bool = False):
    """MEASUREMENTS of every patient of `bags` (stain-normalised RGB tiles), a DataFrame in patient order."""
    import pandas as pd
    from rich.progress import track

    members = bags.members()
    rows = []
    for i in track(range(len(members)), description="cytology: measuring smears", disable=not progress,
                   transient=True):
        found, images = [], np.unique(bags.image[members[i]])
        for image in images:
            part = members[i][bags.image[members[i]] == image]
            found += image_objects(bags.tiles[part], bags.coords[part],
                                   float(bags.images["tile_base_px"].iloc[image]), mpp, stain_vectors)
        rows.append(summarise(found, patient_stain(bags.images, images)))
    return pd.DataFrame(rows, index=bags.patient_ids, columns=list(MEASUREMENTS))


# What the reader weighs: the aggressive features a cytopathologist grades. The number of nuclei (how much the
# needle caught) and the lymphocytes (background) are measured for the caption only; as reader inputs they cost
# 0.008 cross-validated AUC on a fresh synthetic cohort (seed 67: 0.674 with them, 0.682 without).
READER_COLUMNS = ("hobnail_like", "tall_like", "dispersed", "small_clusters")
FRACTIONS = ("hobnail_like", "tall_like", "dispersed")


def reader_matrix(frame) -> np.ndarray:
    """READER_COLUMNS as the reader takes them: shares as logits (clipped at 0.2%), counts already logs."""
    x = frame[list(READER_COLUMNS)].to_numpy(float).copy()
    for name in FRACTIONS:
        j = READER_COLUMNS.index(name)
        p = np.clip(x[:, j], 0.002, 0.998)
        x[:, j] = np.log(p / (1 - p))
    return x


def fit_reader(frame, labels: np.ndarray):
    """The measurement reader: a ridge logistic regression on the standardised READER_COLUMNS, its penalty chosen
    by 5-fold cross-validated log loss (a patient missing a measurement gets the training median). Linear on
    the logit scale because the share of an aggressive cell kind shifts on that scale with the stage of disease;
    trees over-fitted the ~60 events of a 400-patient training set."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    model = LogisticRegressionCV(Cs=np.logspace(-3, 2, 11), cv=5, scoring="neg_log_loss", l1_ratios=(0.0,),
                                 max_iter=5000, use_legacy_attributes=False)
    steps = [("impute", SimpleImputer(strategy="median", keep_empty_features=True)), ("scale", StandardScaler()),
             ("model", model)]
    return Pipeline(steps).fit(reader_matrix(frame), np.asarray(labels, int))


def cross_fitted_log_odds(frame, labels: np.ndarray, seed: int = 0, folds: int = 5) -> np.ndarray:
    """Each patient's reader log-odds from a reader fitted without it (stratified folds): what the recalibration
    may learn from on patients the final reader, fitted on all of them, has seen."""
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels, int)
    out = np.zeros(len(labels))
    k = max(2, min(folds, int(labels.sum()), int((1 - labels).sum())))
    for fit_rows, score_rows in StratifiedKFold(k, shuffle=True, random_state=seed).split(frame, labels):
        out[score_rows] = reader_log_odds(fit_reader(frame.iloc[fit_rows], labels[fit_rows]), frame.iloc[score_rows])
    return out


def reader_log_odds(reader, frame) -> np.ndarray:
    return reader.decision_function(reader_matrix(frame)) if len(frame) else np.zeros(0)


def describe(row) -> str:
    """One patient's MEASUREMENTS in a cytopathologist's words (for the report's captions)."""
    m = dict(zip(MEASUREMENTS, np.asarray(row, float)))
    if np.isnan(m["nuclei"]):
        return "no nuclei measured"
    text = f"{np.expm1(m['nuclei']):.0f} nuclei"
    if not np.isnan(m["hobnail_like"]):
        text += (f"; hobnail-like (hyperchromatic, bulging, little cytoplasm): {100 * m['hobnail_like']:.1f}%; "
                 f"tall-cell-like (in dense cytoplasm): {100 * m['tall_like']:.0f}%; "
                 f"alone or in clumps of 2-3: {100 * m['dispersed']:.0f}%; "
                 f"small clusters of 6-14 nuclei: {np.expm1(m['small_clusters']):.1f} per 1,000 nuclei")
    return text
