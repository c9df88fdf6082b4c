"""One chunk of patients simulated along the causal chain, with their exact risks and recorded labels.

clinical features X -> hidden state (C, L_left, L_right) -> adenopathy, nodes and imaging features, cytology
-> recorded labels. The state is drawn from P(C, L_left, L_right | X), the same law the posteriors use, which
is identical to drawing C first and then each side given C.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .centres import CentreProfile
from .clinical import add_missingness, sample_clinical
from .cytology import cytology_loglik, sample_cytology
from .labels import Labels, record
from .nodes import Nodes, sample_nodes
from .params import ADENOPATHY_PROB
from .posterior import risks
from .risk_model import log_prior_complete, log_prior_observed
from .states import STATE_C, STATE_SIDES


@dataclass(frozen=True)
class Chunk:
    patient_ids: np.ndarray
    centre_idx: np.ndarray
    clinical: dict            # true features
    recorded: dict            # with blanks, as a table would show them
    adenopathy: np.ndarray
    clnm: np.ndarray
    lateral: np.ndarray       # (n, 2) true lateral involvement
    nodes: Nodes
    node_ids: np.ndarray
    cytology: dict
    risks: dict               # view -> (patient risk, side risks)
    labels: Labels

    @property
    def n1b(self) -> np.ndarray:
        return self.lateral.max(axis=1)


def _draw_states(log_prior: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cdf = np.cumsum(np.exp(log_prior), axis=1)
    return (rng.random(len(cdf))[:, None] * cdf[:, -1:] > cdf[:, :-1]).sum(axis=1)


def _node_ids(patient_ids: np.ndarray, nodes: Nodes) -> np.ndarray:
    first = np.searchsorted(nodes.patient, nodes.patient)  # nodes are sorted by patient
    rank = np.arange(len(nodes.patient)) - first + 1
    return np.char.add(np.char.add(patient_ids[nodes.patient].astype(str), "-N"), np.char.zfill(rank.astype(str), 2))


def simulate_chunk(patient_ids: np.ndarray, centres: list[CentreProfile], centre_priors: np.ndarray,
                   rng: np.random.Generator) -> Chunk:
    n = len(patient_ids)
    weights = np.array([c.weight for c in centres])
    centre_idx = rng.choice(len(centres), size=n, p=weights / weights.sum())
    x = sample_clinical(centres, centre_idx, rng)
    offset = np.array([c.offset for c in centres])[centre_idx]
    state = _draw_states(log_prior_complete(x, offset), rng)
    clnm, lateral = STATE_C[state], STATE_SIDES[state]
    n1b = lateral.max(axis=1)
    adenopathy = (rng.random(n) < np.asarray(ADENOPATHY_PROB)[n1b]).astype(np.int8)
    nodes = sample_nodes(lateral, rng)
    cyto = sample_cytology(clnm, n1b, rng)
    recorded = {**add_missingness(x, centres, centre_idx, rng), "palpable_adenopathy": adenopathy}
    # the iodine map exists only where the centre's CT is dual-energy: elsewhere no view can see it
    dual = np.array([bool(c.acquisition["ct"].get("dual_energy", False)) for c in centres])
    hidden = {"iodine_mg_ml": ~dual[centre_idx[nodes.patient]]}
    exact = risks(log_prior_observed(recorded, centres, centre_idx), centre_priors[centre_idx], adenopathy, nodes,
                  cytology_loglik(cyto), hidden)
    not_dissected = np.array([c.not_dissected for c in centres])[centre_idx]
    labels = record(lateral, adenopathy, x["tumour_side"], nodes, not_dissected, rng)
    return Chunk(patient_ids, centre_idx, x, recorded, adenopathy, clnm, lateral, nodes,
                 _node_ids(patient_ids, nodes), cyto, exact, labels)
