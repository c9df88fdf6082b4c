"""What every node-level network model does around its network: check there is something to learn, split the
patients into training and validation, and measure and fit the node → side → patient roll-up on the validation
patients (the measurement is kept with the model, its held-out probabilities set the pipeline's thresholds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ..cohort import Cohort, LymphCastError
from ..cohort.schema import SIDES
from .base import probability_series
from .rollup import ROLLUPS, Rollup, compare_rollups

MIN_NODES_PER_CLASS = 4


def check_rollup_setting(rollup: str) -> None:
    if rollup != "auto" and rollup not in ROLLUPS:
        raise LymphCastError(f"rollup must be auto or one of {', '.join(ROLLUPS)}, not {rollup!r}")


def check_node_labels(data: Cohort, y: np.ndarray, model: str, media: str) -> None:
    """`y`: the labels (0/1) of the labelled nodes that have `media` (e.g. "ultrasound images")."""
    pos, neg = int(y.sum()), int((y == 0).sum())
    if min(pos, neg) < MIN_NODES_PER_CLASS:
        raise LymphCastError(f"cohort '{data.meta.name}' has {pos} metastatic and {neg} benign labelled nodes "
                             f"with {media}; the {model} model needs at least {MIN_NODES_PER_CLASS} of each "
                             f"(column 'metastatic' of nodes.csv)")


def split_patients(data: Cohort, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation patient ids, stratified by N1b where both classes have two patients or more (a
    patient's nodes never sit on both sides)."""
    ids = data.patients["patient_id"].to_numpy()
    y = data.patients["n1b"].astype(int).to_numpy()
    strat = y if min(y.sum(), (1 - y).sum()) >= 2 else None
    return train_test_split(ids, test_size=val_fraction, random_state=seed, stratify=strat)


def split_by_centre(data: Cohort, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Validation patients = one whole centre, the one whose share of the patients is closest to `val_fraction`
    (so early stopping, recalibration and the roll-up are measured on a centre the network never saw, as it will
    be used); patients split at random when there is one centre only or that centre lacks either class."""
    centres = data.patients["centre"].astype(str)
    share = centres.value_counts(normalize=True)
    if len(share) > 1:
        held = (share - val_fraction).abs().sort_index(ascending=False).idxmin()
        inside = (centres == held).to_numpy()
        y = data.patients["n1b"].astype(int).to_numpy()
        if min(y[inside].sum(), (1 - y[inside]).sum()) >= 2 and min(y[~inside].sum(), (1 - y[~inside]).sum()) >= 2:
            ids = data.patients["patient_id"].to_numpy()
            return ids[~inside], ids[inside]
    return split_patients(data, val_fraction, seed)


def node_split(data: Cohort, nodes: pd.DataFrame, *, model: str, media: str, val_fraction: float, seed: int,
               by_centre: bool = False):
    """Labels and the training/validation split of `nodes` (rows in the order the network sees them):
    (y 0/1 per row, training row indices, validation row indices, training patients, validation patients);
    unlabelled rows are in neither. `by_centre`: validate on one whole centre (split_by_centre)."""
    labelled = nodes["metastatic"].notna().to_numpy()
    y = nodes["metastatic"].fillna(0).to_numpy(int)
    check_node_labels(data, y[labelled], model, media)
    train_p, val_p = (split_by_centre if by_centre else split_patients)(data, val_fraction, seed)
    in_val = nodes["patient_id"].isin(val_p).to_numpy()
    return y, np.flatnonzero(labelled & ~in_val), np.flatnonzero(labelled & in_val), train_p, val_p


def side_labels(cohort: Cohort) -> pd.Series | None:
    """Recorded lateral status per (patient_id, side), when the cohort has it for every side."""
    cols = [f"lateral_{s}" for s in SIDES]
    if not all(c in cohort.patients.columns for c in cols):
        return None
    table = cohort.patients.set_index("patient_id")[cols]
    table.columns = list(SIDES)
    labels = table.stack(future_stack=True)
    labels.index.names = ["patient_id", "side"]
    return labels if labels.notna().all() else None


def choose_rollup(val: Cohort, sides: pd.DataFrame, setting: str, seed: int):
    """(scores per roll-up, chosen name, fitted Rollup, held-out patient probabilities of the chosen one):
    "auto" takes the lowest log loss on the validation patients."""
    labels = val.labels().astype(int)
    scores, held_out = compare_rollups(sides, side_labels(val), labels, seed=seed)
    chosen = setting if setting != "auto" else str(scores["log_loss"].idxmin())
    fitted = Rollup(chosen).fit(sides, side_labels(val), labels)
    return scores, chosen, fitted, probability_series(held_out[chosen].loc[labels.index], labels.index)
