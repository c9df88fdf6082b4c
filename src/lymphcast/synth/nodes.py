"""Lateral neck lymph nodes of a patient: how many per level, which are metastatic, which are occult.

Per side and level the number of visible nodes is Poisson with a mean that depends on the side's lateral
status; an involved side has at least one node (zero-node draws are redrawn: an exact truncation). On an
involved side each node is metastatic with its level's probability, redrawn until the side has at least one
metastatic node; on an uninvolved side all nodes are benign. Nodes are ordered by patient, side, level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .features import sample_features
from .params import MET_PROB, NODE_MEAN, OCCULT_PROB


@dataclass(frozen=True)
class Nodes:
    counts: np.ndarray       # (patients, 2 sides, 4 levels)
    patient: np.ndarray      # per node: patient index within the chunk
    side: np.ndarray         # 0 left, 1 right
    level: np.ndarray        # 0..3 for II..V
    metastatic: np.ndarray   # true status (0/1)
    occult: np.ndarray       # metastatic but imaging like a benign node
    features: dict[str, np.ndarray]

    @property
    def side_id(self) -> np.ndarray:
        """Index of the node's (patient, side) pair: 2 * patient + side."""
        return 2 * self.patient + self.side


def _counts(lateral: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    counts = rng.poisson(NODE_MEAN[lateral])
    while True:
        empty = (lateral == 1) & (counts.sum(axis=-1) == 0)
        if not empty.any():
            return counts
        counts[empty] = rng.poisson(NODE_MEAN[1], size=(int(empty.sum()), NODE_MEAN.shape[1]))


def _metastatic(positive: np.ndarray, level: np.ndarray, side_id: np.ndarray, n_sides: int,
                rng: np.random.Generator) -> np.ndarray:
    met = positive & (rng.random(len(level)) < MET_PROB[level])
    involved = np.bincount(side_id, weights=positive, minlength=n_sides) > 0
    while True:
        none = involved & (np.bincount(side_id, weights=met, minlength=n_sides) == 0)
        redo = none[side_id]
        if not redo.any():
            return met
        met[redo] = rng.random(int(redo.sum())) < MET_PROB[level[redo]]


def sample_nodes(lateral: np.ndarray, rng: np.random.Generator) -> Nodes:
    """Nodes for patients whose lateral status per side is `lateral` (n, 2)."""
    counts = _counts(lateral, rng)
    cell = np.repeat(np.arange(counts.size), counts.reshape(-1))  # flat (patient, side, level) of each node
    patient, side, level = cell // 8, (cell // 4) % 2, cell % 4
    side_id = 2 * patient + side
    met = _metastatic(lateral[patient, side] == 1, level, side_id, counts.shape[0] * 2, rng)
    occult = met & (rng.random(len(cell)) < OCCULT_PROB)
    feats = sample_features(level, met & ~occult, rng, occult=occult)
    return Nodes(counts, patient, side, level, met.astype(np.int8), occult.astype(np.int8), feats)
