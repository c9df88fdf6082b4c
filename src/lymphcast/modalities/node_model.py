"""What the node-level network models (ultrasound images, cine clips, CT) share around their networks: the fitted
network rebuilt from its weights, Platt-recalibrated node probabilities, the node → side → patient roll-up, one
pass for every level, the pictures of training and roll-up, and pickling without the live network.

A subclass says which nodes it scores (`media_nodes`: the cohort's nodes with its media), which patients it can
speak for (`covered_patients`: a patient whose nodes are listed without that media gets NaN, which fusion masks),
builds its network (`_new_net`) and scores nodes (`predict_nodes`).
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import pandas as pd

from pathlib import Path

from ..cohort import Cohort, LymphCastError
from ..cohort.schema import SIDES
from .base import ModalityModel, probability_series
from .fitted_network import FittedNetwork
from .rollup import side_features


def load_weights(net, path, describe: str):
    """Start `net` from a local weights file (torch tensors only: nothing in it can run); `describe` names what
    the file should hold, for the error."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise LymphCastError(f"{path}: weights file not found")
    try:
        net.load_state_dict(torch.load(path, weights_only=True))
    except Exception as err:  # noqa: BLE001 - any failure here means the file is not our weights
        raise LymphCastError(f"{path}: not {describe} ({type(err).__name__})") from None
    return net


class NodeNetworkModel(FittedNetwork, ModalityModel):
    level = "node"
    oof = "validation"

    @staticmethod
    @abstractmethod
    def media_nodes(cohort: Cohort) -> pd.DataFrame:
        """The cohort's nodes this model can score (node_id, patient_id, side, level, ...)."""

    def covered_patients(self, cohort: Cohort) -> pd.Index:
        """Patients the model speaks for: those with a scored node, and those with no node rows at all (no lateral
        node to score). Nodes listed without the model's media mean it was not recorded: no opinion."""
        ids = cohort.patients["patient_id"]
        listed = set(cohort.nodes["patient_id"]) if len(cohort.nodes) else set()
        scored = set(self.media_nodes(cohort)["patient_id"])
        return pd.Index([p for p in ids if p in scored or p not in listed], name="patient_id")

    @abstractmethod
    def _new_net(self): ...

    def side_table(self, cohort: Cohort, nodes: pd.Series | None = None) -> pd.DataFrame:
        """Roll-up inputs per (patient_id, side): noisy-OR, max and node counts per level (`nodes`: node
        probabilities already computed for this cohort)."""
        nodes = self.predict_nodes(cohort) if nodes is None else nodes
        frame = pd.DataFrame({"node_id": nodes.index, "p": nodes.to_numpy()}).merge(
            self.media_nodes(cohort)[["node_id", "patient_id", "side", "level"]], on="node_id")
        return side_features(frame, cohort.patients["patient_id"])

    def predict_sides(self, cohort: Cohort) -> pd.Series:
        return self.predict_levels(cohort)["sides"]

    def predict_proba(self, cohort: Cohort) -> pd.Series:
        return self.predict_levels(cohort)["patients"]

    def predict_levels(self, cohort: Cohort) -> dict[str, pd.Series]:
        """Patient, side and node probabilities from one pass over the media; NaN for patients not covered."""
        self.check_fitted()
        ids = cohort.patients["patient_id"]
        nodes = self.predict_nodes(cohort)
        if not len(nodes):  # no media at all: NaN, which fusion masks
            sides = pd.Series(np.nan, pd.MultiIndex.from_product([ids, SIDES], names=["patient_id", "side"]))
            return {"patients": probability_series(np.nan, ids), "sides": sides.rename("probability"), "nodes": nodes}
        sides = self.side_table(cohort, nodes)
        p_side, p_patient = self.rollup_model_.sides(sides).astype(float), self.rollup_model_.patients(sides)
        uncovered = ~ids.isin(self.covered_patients(cohort))
        p_patient = p_patient.reindex(ids).to_numpy()
        p_patient[uncovered.to_numpy()] = np.nan
        p_side.loc[p_side.index.get_level_values("patient_id").isin(ids[uncovered])] = np.nan
        return {"patients": probability_series(p_patient, ids), "sides": p_side, "nodes": nodes}

    def figures(self) -> dict:
        from .us_image_figures import rollup_comparison, training_curve

        if not self.is_fitted:
            return {}
        return {"training": training_curve(self.history_, self.best_epoch_),
                "rollup": rollup_comparison(self.rollup_scores_, self.rollup_, "Node → patient roll-up")}
