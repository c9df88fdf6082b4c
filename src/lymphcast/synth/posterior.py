"""Exact risks: P(N1b) and P(L_s) given what each modality shows, over the eight hidden states.

log P(state | evidence) = log prior + sum of log-likelihood terms, normalised per patient.
- clinical:  prior given the recorded features x adenopathy (a child of N1b)
- us / ct:   the centre's marginal prior x node counts and the features that modality shows, both sides
- cytology:  the centre's marginal prior x the cytology features
- all:       prior given the recorded features x adenopathy x nodes (US and CT features) x cytology
- us_sweep:  as us, without vascularity: what a B-mode cine sweep can show (no Doppler)
- us_key:    as us_sweep, without the long/short ratio: what one still at the node's largest transverse section
             shows. Their difference bounds what reading the whole sweep can add over its key frame.
"""

from __future__ import annotations

import numpy as np

from .node_likelihood import side_loglik
from .nodes import Nodes
from .params import ADENOPATHY_PROB
from .states import STATE_LEFT, STATE_N1B, STATE_RIGHT, event_prob, normalise

VIEWS = ("clinical", "us", "ct", "cytology", "all", "us_sweep", "us_key")
B_MODE_HIDDEN = {"us_sweep": ("vascularity",), "us_key": ("vascularity", "long_short_ratio")}


def adenopathy_loglik(adenopathy: np.ndarray) -> np.ndarray:
    p = np.asarray(ADENOPATHY_PROB)[STATE_N1B]  # (8,)
    return np.where(np.asarray(adenopathy)[:, None] == 1, np.log(p), np.log1p(-p))


def nodes_loglik(nodes: Nodes, view: str, hidden: dict | None = None) -> np.ndarray:
    side = side_loglik(nodes, view, hidden)  # (n, 2 sides, 2 L)
    return side[:, 0, STATE_LEFT] + side[:, 1, STATE_RIGHT]


def risks(log_prior: np.ndarray, centre_prior: np.ndarray, adenopathy: np.ndarray, nodes: Nodes,
          cytology_ll: np.ndarray, hidden: dict | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """view -> (P(N1b) per patient (n,), P(L_s = 1) per side (n, 2)); `hidden`: per-node masks of features a
    node's centre cannot show (the iodine map without dual-energy CT), left out of the ct and all views."""
    aden = adenopathy_loglik(adenopathy)
    joint = {
        "clinical": log_prior + aden,
        "us": centre_prior + nodes_loglik(nodes, "us"),
        "ct": centre_prior + nodes_loglik(nodes, "ct", hidden),
        "cytology": centre_prior + cytology_ll,
        "all": log_prior + aden + nodes_loglik(nodes, "all", hidden) + cytology_ll,
    }
    every_node = np.ones(len(nodes.level), bool)
    for view, names in B_MODE_HIDDEN.items():
        joint[view] = centre_prior + nodes_loglik(nodes, "us", {name: every_node for name in names})
    out = {}
    for view, log_joint in joint.items():
        post = normalise(log_joint)
        out[view] = (event_prob(post, STATE_N1B),
                     np.column_stack([event_prob(post, STATE_LEFT), event_prob(post, STATE_RIGHT)]))
    return out
