"""FusionModel: every chosen modality model plus stackers that fuse them per patient, per neck side and per level.

fit: the labelled patients are split (stratified by N1b) into a base part, on which each modality model trains
as it would alone, and a stacking part none of them saw; on the stacking part each model's patient, side and
node probabilities are computed and three masked stackers (fusion.stacker) are fitted:
- patient: every modality's patient probability (log-odds + presence mask) → P(N1b);
- side: node-level modalities' side probabilities, patient-level modalities' probabilities and the primary
  tumour's laterality → P(lateral metastasis on that side), on the recorded side labels;
- level: the fused side log-odds, each node-level modality's noisy-OR over that side's nodes at that level and
  the level itself → P(metastasis at level II, III, IV or V of that side), on node labels.
A patient, side or level scored by only some modalities gets the others' masks at 0: a calibrated risk from
what exists. The stackers' cross-fitted probabilities on the stacking part are the honest held-out
probabilities (`validation_proba_`) the pipeline takes thresholds from.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import logit

from ..cohort import Cohort, LymphCastError
from ..cohort.schema import LATERAL_LEVELS
from ..modalities.base import ModalityModel, probability_series
from ..modalities.node_training import side_labels, split_patients
from .design import EPS, level_evidence, level_index, level_labels, side_frame
from .stacker import MaskedStacker


class FusionModel(ModalityModel):
    """modalities: the modality models to fuse (names from modalities.registry); options: {name: settings} for
    each; stack_fraction: share of the labelled patients kept back for the stackers; C: their inverse L2 strength,
    or "auto" (chosen by cross-validated log loss; fusion.stacker)."""

    name = "fusion"
    level = "node"
    oof = "validation"

    def __init__(self, *, modalities: tuple = ("clinical",), options: dict | None = None, stack_fraction: float = 0.3,
                 C: float | str = 1.0, seed: int = 0):
        self.modalities = modalities
        self.options = options
        self.stack_fraction = stack_fraction
        self.C = C
        self.seed = seed

    # --- training -------------------------------------------------------------------------------
    def fit(self, cohort: Cohort) -> "FusionModel":
        from ..modalities.registry import model_class

        data = cohort.labelled()
        base_ids, stack_ids = split_patients(data, self.stack_fraction, self.seed)
        base, stack = data.subset(base_ids), data.subset(stack_ids)
        self.models_ = {}
        for name in self.modalities:
            settings = {"seed": self.seed, **(self.options or {}).get(name, {})}
            self.models_[name] = model_class(name)(**settings).fit(base)
        outputs = self._outputs(stack)
        y = stack.labels().astype(int)
        self.patient_stacker_ = MaskedStacker(self._names(), C=self.C, seed=self.seed).fit(outputs["patients"], y)
        self.validation_proba_ = probability_series(self.patient_stacker_.oof_.reindex(y.index), y.index)
        sides_y = side_labels(stack)
        sides = outputs["sides"]
        self.side_stacker_ = None
        if sides_y is not None and sides_y.nunique() == 2:
            self.side_stacker_ = MaskedStacker(self._names(), extra=self._side_extra(sides), C=self.C,
                                               seed=self.seed).fit(sides, sides_y.reindex(sides.index).astype(float))
        self.level_stacker_ = None
        if self.side_stacker_ is not None and self.node_modalities:
            levels = self._level_frame(stack, outputs, self.side_stacker_.oof_.fillna(self.side_stacker_.predict(sides)))
            y_levels = level_labels(stack.nodes, sides_y, levels.index)
            if y_levels.dropna().nunique() == 2:
                self.level_stacker_ = MaskedStacker(self.node_modalities, extra=self._level_extra(), C=self.C,
                                                    seed=self.seed).fit(levels, y_levels)
        self._thresholds(outputs, y, sides_y)
        self.training_summary_ = {"patients_base": len(base_ids), "patients_stacking": len(stack_ids),
                                  "events_stacking": int(y.sum()),
                                  "coverage_stacking": {n: float(outputs["patients"][n].notna().mean())
                                                        for n in self._names()}}
        return self

    def _thresholds(self, outputs: dict, y: pd.Series, sides_y: pd.Series | None) -> None:
        """Each modality's own Youden threshold on the stacking patients (its operating point in the report), and
        the ultrasound model's side threshold: the rule "dissect the side where ultrasound is suspicious"."""
        from ..evaluate.thresholds import youden_threshold

        self.model_thresholds_ = {}
        for name in self._names():
            p = outputs["patients"][name].reindex(y.index)
            have = p.notna().to_numpy()
            if have.sum() > 4 and y[have].nunique() == 2:
                self.model_thresholds_[name] = float(youden_threshold(y.to_numpy()[have], p.to_numpy(float)[have]))
        self.us_rule_threshold_ = None
        if sides_y is not None and "us_image" in outputs["sides"]:
            p = outputs["sides"]["us_image"].reindex(sides_y.index)
            have = (p.notna() & sides_y.notna()).to_numpy()
            if have.sum() > 4 and sides_y[have].nunique() == 2:
                self.us_rule_threshold_ = float(youden_threshold(sides_y[have].astype(int).to_numpy(),
                                                                 p.to_numpy(float)[have]))

    # --- pieces ---------------------------------------------------------------------------------
    def _names(self) -> list[str]:
        return list(self.modalities)

    @property
    def node_modalities(self) -> list[str]:
        return [n for n in self.modalities if self.models_[n].level == "node"]

    @staticmethod
    def _side_extra(sides: pd.DataFrame) -> list[str]:
        return ["ipsilateral"] if "ipsilateral" in sides else []

    @staticmethod
    def _level_extra() -> list[str]:
        return ["side_logit", *[f"level_{lv}" for lv in LATERAL_LEVELS[1:]]]  # level II is the reference

    def _outputs(self, cohort: Cohort) -> dict:
        """Each modality's probabilities on `cohort`: patients (one column per modality), sides (side table with
        patient-level modalities repeated and laterality), nodes (per node-level modality: node table)."""
        ids = cohort.patients["patient_id"]
        patients, side_cols, nodes = pd.DataFrame(index=pd.Index(ids, name="patient_id")), {}, {}
        for name, model in self.models_.items():
            levels = model.predict_levels(cohort)
            patients[name] = levels["patients"].reindex(ids).to_numpy()
            if model.level == "node":
                side_cols[name] = levels["sides"]
                nodes[name] = _node_places(cohort).merge(levels["nodes"].rename("probability").rename_axis("node_id").reset_index(),
                                          on="node_id")
        tumour = cohort.patients.set_index("patient_id")["tumour_side"] if "tumour_side" in cohort.patients else None
        side_patient = patients[[n for n in patients.columns if n not in side_cols]]
        sides = side_frame(ids, side_patient, pd.DataFrame(side_cols), tumour)
        return {"patients": patients, "sides": sides, "nodes": nodes}

    def _level_frame(self, cohort: Cohort, outputs: dict, side_risk: pd.Series) -> pd.DataFrame:
        index = level_index(outputs["sides"].index)
        frame = pd.DataFrame(index=index)
        for name in self.node_modalities:
            frame[name] = level_evidence(outputs["nodes"][name], index).to_numpy()
        pairs = pd.MultiIndex.from_arrays([index.get_level_values(0), index.get_level_values(1)])
        frame["side_logit"] = logit(np.clip(side_risk.reindex(pairs).to_numpy(float), EPS, 1 - EPS))
        for lv in LATERAL_LEVELS[1:]:
            frame[f"level_{lv}"] = (index.get_level_values("level") == lv).astype(float)
        return frame

    # --- prediction -----------------------------------------------------------------------------
    def predict_levels(self, cohort: Cohort) -> dict:
        """patients, sides, levels (patient_id, side, level) fused; nodes (node table, one probability column per
        node-level modality); modalities (each modality's patient probability: what was fused); side_modalities
        (the side stacker's inputs)."""
        self.check_fitted()
        outputs = self._outputs(cohort)
        ids = cohort.patients["patient_id"]
        out = {"patients": probability_series(self.patient_stacker_.predict(outputs["patients"]).reindex(ids), ids),
               "modalities": outputs["patients"], "side_modalities": outputs["sides"]}
        if self.side_stacker_ is not None:
            sides = self.side_stacker_.predict(outputs["sides"]).rename("probability")
        else:  # no side labels to learn from: the patient risk stands for both sides
            sides = pd.Series(out["patients"].reindex(outputs["sides"].index.get_level_values(0)).to_numpy(),
                              index=outputs["sides"].index, name="probability")
        out["sides"] = sides
        if self.level_stacker_ is not None:
            out["levels"] = self.level_stacker_.predict(self._level_frame(cohort, outputs, sides)).rename("probability")
        nodes = _node_places(cohort)
        for name, table in outputs["nodes"].items():
            nodes[f"p_{name}"] = nodes["node_id"].map(table.set_index("node_id")["probability"])
        out["nodes"] = nodes
        return out

    def predict_proba(self, cohort: Cohort) -> pd.Series:
        return self.predict_levels(cohort)["patients"]

    def predict_sides(self, cohort: Cohort) -> pd.Series:
        return self.predict_levels(cohort)["sides"]

    def figures(self) -> dict:
        if not self.is_fitted:
            return {}
        from .figures import stacker_weights

        return {"weights": stacker_weights(self.patient_stacker_, self.side_stacker_, self.level_stacker_)}


def available_modalities(cohort: Cohort) -> list[str]:
    """The modalities a cohort holds data for (what `--modalities all` trains), in the canonical order."""
    from ..modalities.registry import KNOWN, available

    has = {"clinical": bool(cohort.clinical_columns)}
    for name, column in (("us_image", "us_image_file"), ("us_video", "us_video_file"), ("ct", "ct_file")):
        has[name] = column in cohort.nodes and cohort.nodes[column].notna().any()
    has["cytology"] = len(cohort.cytology) > 0
    names = [n for n in KNOWN if n in available() and has.get(n)]
    if not names:
        raise LymphCastError(f"cohort '{cohort.meta.name}' holds no data any model can read")
    return names


def _node_places(cohort: Cohort) -> pd.DataFrame:
    """node_id, patient_id, side, level of every node (an empty table for patients without node data)."""
    columns = ["node_id", "patient_id", "side", "level"]
    return cohort.nodes[columns].copy() if len(cohort.nodes) else pd.DataFrame(columns=columns)
