"""Partial coverage of a modality: only a share of the patients have it (not every patient gets a cine clip, a CT
or a cytology image in real life), and rendering only them saves the time the others would cost.

The patients that have the modality are drawn per chunk from the renderer's own generator (so the latent
cohort and the other modalities do not change); the renderer runs on the sub-chunk of those patients and its
columns are spread back over the whole chunk, blank for everyone else.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ..cohort import LymphCastError
from .chunk import Chunk
from .labels import Labels
from .nodes import Nodes
from .render_base import Rendered


def check_coverage(coverage: dict | None, known) -> dict[str, float]:
    """{modality: share in (0, 1]} checked against the modalities being rendered."""
    out = {}
    for name, share in (coverage or {}).items():
        if name not in known:
            raise LymphCastError(f"coverage given for '{name}', which is not among the modalities rendered "
                                 f"({', '.join(known)})")
        try:
            share = float(share)
        except (TypeError, ValueError):
            raise LymphCastError(f"coverage of {name} must be a number in (0, 1], got {share!r}") from None
        if not 0 < share <= 1:
            raise LymphCastError(f"coverage of {name} must be in (0, 1], got {share}")
        out[name] = share
    return out


def subset_chunk(chunk: Chunk, keep: np.ndarray) -> tuple[Chunk, np.ndarray]:
    """The chunk of the patients where `keep` (bool per patient) is true, and the bool per node of theirs."""
    keep = np.asarray(keep, bool)
    nodes = chunk.nodes
    node_keep = keep[nodes.patient]
    new_index = np.cumsum(keep) - 1  # old patient index -> new one
    sub_nodes = Nodes(counts=nodes.counts[keep], patient=new_index[nodes.patient[node_keep]],
                      side=nodes.side[node_keep], level=nodes.level[node_keep],
                      metastatic=nodes.metastatic[node_keep], occult=nodes.occult[node_keep],
                      features={k: np.asarray(v)[node_keep] for k, v in nodes.features.items()})
    labels = chunk.labels
    sub_labels = Labels(clinically_negative=labels.clinically_negative[keep], n1b=labels.n1b[keep],
                        sides=labels.sides[keep], node_metastatic=labels.node_metastatic[node_keep])
    per_patient = lambda d: {k: np.asarray(v)[keep] for k, v in d.items()}  # noqa: E731
    sub = replace(chunk, patient_ids=chunk.patient_ids[keep], centre_idx=chunk.centre_idx[keep],
                  clinical=per_patient(chunk.clinical), recorded=per_patient(chunk.recorded),
                  adenopathy=chunk.adenopathy[keep], clnm=chunk.clnm[keep], lateral=chunk.lateral[keep],
                  nodes=sub_nodes, node_ids=chunk.node_ids[node_keep], cytology=per_patient(chunk.cytology),
                  risks={k: (p[keep], s[keep]) for k, (p, s) in chunk.risks.items()}, labels=sub_labels)
    return sub, node_keep


def _spread(values, where: np.ndarray) -> pd.array:
    """Column values of the covered rows placed into a full-length column, blank elsewhere (whole numbers stay
    whole: nullable integers)."""
    values = np.asarray(values)
    kind = values.dtype.kind
    dtype = "Int64" if kind in "iub" else "Float64" if kind == "f" else object
    out = pd.array([None] * len(where), dtype=dtype)
    if where.any():
        out[where] = values
    return out


def render_covered(renderer, chunk: Chunk, folder, profiles, rng: np.random.Generator, share: float) -> Rendered:
    """Run `renderer` on a random `share` of the chunk's patients; blank columns for the others."""
    keep = rng.random(len(chunk.patient_ids)) < share
    sub, node_keep = subset_chunk(chunk, keep)
    out = renderer.render(sub, folder, profiles, rng)
    return Rendered(patients={k: _spread(v, keep) for k, v in out.patients.items()},
                    nodes={k: _spread(v, node_keep) for k, v in out.nodes.items()},
                    cytology=out.cytology, truth=out.truth)
