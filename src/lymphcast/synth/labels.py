"""Recorded labels: what the pathology report says, which is not always the truth.

CLINICAL_FACTS: 3-10% of labels are wrong, mostly in clinically node-negative necks that were not dissected.
A patient is clinically node-negative without palpable adenopathy and without a suspicious lateral node on
ultrasound (two of: short axis >= 10 mm, cystic change, echogenic foci). A truly N1b but clinically node-negative
patient goes undissected, and is recorded N0, with the centre's probability; then ~1% of labels flip at random.
Side and node labels are made consistent with the recorded patient label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .nodes import Nodes

RANDOM_FLIP = 0.01
SUSPICIOUS_SHORT_AXIS_MM = 10.0


@dataclass(frozen=True)
class Labels:
    clinically_negative: np.ndarray  # (n,) bool
    n1b: np.ndarray                  # (n,) recorded 0/1
    sides: np.ndarray                # (n, 2) recorded lateral_left / lateral_right
    node_metastatic: np.ndarray      # per node, recorded


def suspicious(feats: dict[str, np.ndarray]) -> np.ndarray:
    """Two of three signs: short axis >= 10 mm, cystic change, echogenic foci (one sign alone flags too many
    benign nodes: with ~5 visible nodes most node-negative necks would look suspicious)."""
    signs = (feats["short_axis_mm"] >= SUSPICIOUS_SHORT_AXIS_MM).astype(int) + feats["cystic_change"] \
        + feats["calcification"]
    return signs >= 2


def clinically_negative(adenopathy: np.ndarray, nodes: Nodes) -> np.ndarray:
    n = len(adenopathy)
    flagged = np.bincount(nodes.patient, weights=suspicious(nodes.features), minlength=n) > 0
    return (np.asarray(adenopathy) == 0) & ~flagged


def record(lateral: np.ndarray, adenopathy: np.ndarray, tumour_side: np.ndarray, nodes: Nodes,
           not_dissected: np.ndarray, rng: np.random.Generator) -> Labels:
    """Recorded labels for patients with true lateral status `lateral` (n, 2)."""
    n = len(lateral)
    true_n1b = lateral.max(axis=1)
    negative = clinically_negative(adenopathy, nodes)
    missed = (true_n1b == 1) & negative & (rng.random(n) < not_dissected)
    flip = rng.random(n) < RANDOM_FLIP
    n1b = np.where(missed, 0, true_n1b) ^ flip
    # A patient recorded positive without true disease gets the tumour's side (isthmus: either side).
    side_pick = np.where(tumour_side == 2, rng.integers(0, 2, n), np.minimum(tumour_side, 1))
    invented = np.zeros((n, 2), np.int8)
    invented[np.arange(n), side_pick] = 1
    sides = np.where((n1b == true_n1b)[:, None], lateral, invented * n1b[:, None]).astype(np.int8)
    node_met = np.where(n1b[nodes.patient] == 1, nodes.metastatic, 0).astype(np.int8)
    node_met = _mark_invented(node_met, nodes, (n1b == 1) & (true_n1b == 0), side_pick)
    return Labels(negative, n1b.astype(np.int8), sides, node_met)


def _mark_invented(node_met: np.ndarray, nodes: Nodes, invented: np.ndarray, side_pick: np.ndarray) -> np.ndarray:
    """A false-positive report names a metastatic node: the largest on the invented side, when it has one."""
    candidates = np.flatnonzero(invented[nodes.patient] & (nodes.side == side_pick[nodes.patient]))
    if len(candidates):
        order = candidates[np.lexsort((-nodes.features["short_axis_mm"][candidates], nodes.patient[candidates]))]
        first = np.r_[True, nodes.patient[order][1:] != nodes.patient[order][:-1]]
        node_met = node_met.copy()
        node_met[order[first]] = 1
    return node_met
