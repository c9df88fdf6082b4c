"""Patient-level splits: stratified k-fold, leave-one-centre-out, and train/test by named centres.

Splits return patient ids, never rows of nodes or images, so a node, image or clip cannot land on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold

from .cohort import Cohort
from .errors import LymphCastError


@dataclass(frozen=True)
class Split:
    name: str
    train: tuple[str, ...]
    test: tuple[str, ...]


def _strata(cohort: Cohort) -> np.ndarray:
    # Unlabelled patients form their own stratum so they spread evenly rather than break stratification.
    labels = cohort.patients["n1b"]
    return labels.fillna(-1).astype(int).to_numpy()


def stratified_kfold(cohort: Cohort, k: int = 5, seed: int = 0) -> list[Split]:
    """k folds over patients, stratified by N1b label (and by centre where every stratum is large enough)."""
    ids = cohort.patients["patient_id"].to_numpy()
    strata = _strata(cohort)
    counts = np.bincount(strata + 1)
    if k < 2:
        raise LymphCastError(f"k-fold needs k ≥ 2, got {k}")
    if counts[counts > 0].min() < k:
        raise LymphCastError(f"cannot make {k} stratified folds: the smallest label group has only "
                             f"{counts[counts > 0].min()} patient(s)")
    by_centre = np.char.add(cohort.patients["centre"].to_numpy().astype(str), strata.astype(str))
    _, joint = np.unique(by_centre, return_inverse=True)
    use = joint if np.bincount(joint).min() >= k else strata
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(ids, use)
    return [Split(f"fold{i + 1}", tuple(ids[tr]), tuple(ids[te])) for i, (tr, te) in enumerate(folds)]


def leave_one_centre_out(cohort: Cohort) -> list[Split]:
    """One split per centre present: train on all other centres, test on that one."""
    centres = [c for c in cohort.meta.centre_ids if (cohort.patients["centre"] == c).any()]
    if len(centres) < 2:
        raise LymphCastError("leave-one-centre-out needs patients from at least two centres")
    return [centre_split(cohort, [c for c in centres if c != held], [held]) for held in centres]


def centre_split(cohort: Cohort, train_centres, test_centres) -> Split:
    """Train on the named centres, test on the others named (external validation)."""
    train_centres, test_centres = list(train_centres), list(test_centres)
    unknown = (set(train_centres) | set(test_centres)) - set(cohort.meta.centre_ids)
    if unknown:
        raise LymphCastError(f"unknown centre(s) {', '.join(sorted(unknown))}; this cohort has "
                             f"{', '.join(cohort.meta.centre_ids)}")
    overlap = set(train_centres) & set(test_centres)
    if overlap:
        raise LymphCastError(f"centre(s) {', '.join(sorted(overlap))} cannot be both training and test")
    centre = cohort.patients["centre"]
    ids = cohort.patients["patient_id"]
    return Split(f"train {'+'.join(train_centres)} → test {'+'.join(test_centres)}",
                 tuple(ids[centre.isin(train_centres)]), tuple(ids[centre.isin(test_centres)]))
