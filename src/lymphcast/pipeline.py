"""Train and predict over the chosen modalities: what the CLI, the demo and the service call."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .bundle import Bundle, manifest_hash
from .cohort import Cohort, LymphCastError
from .cohort.splits import leave_one_centre_out, stratified_kfold
from .modalities.registry import model_class
from .provenance import cohort_hashes, stamp


def resolve(cohort: Cohort, modalities) -> list[str]:
    """The modality names to train: as given, or every modality the cohort holds data for ("all")."""
    from .fusion.model import available_modalities

    modalities = [m for m in modalities if m]
    if modalities == ["all"]:
        return available_modalities(cohort)
    if "all" in modalities:
        raise LymphCastError("'all' stands alone: --modalities all, or a list of modality names")
    if not modalities:
        raise LymphCastError("no modality chosen")
    return list(dict.fromkeys(modalities))


def _model(names: list[str], options: dict | None, seed: int):
    """One modality's model, or the fusion model over several."""
    if len(names) == 1:
        return model_class(names[0])(**{"seed": seed, **(options or {}).get(names[0], {})})
    from .fusion.model import FusionModel

    for name in names:
        model_class(name)  # an unknown name fails here, before anything trains
    return FusionModel(modalities=tuple(names), options=options, seed=seed, **(options or {}).get("fusion", {}))


def _scoring_model(bundle: Bundle):
    return bundle.models["fusion"] if "fusion" in bundle.models else bundle.models[bundle.modalities[0]]


def out_of_fold(model, cohort: Cohort, k: int = 5, seed: int = 0, splits=None) -> pd.Series:
    """Out-of-fold probabilities (default: stratified k-fold): honest inputs for thresholds, internal
    validation and later stacking. Each patient is scored by a model that never saw that patient."""
    oof = pd.Series(np.nan, index=pd.Index(cohort.patients["patient_id"], name="patient_id"), name="probability")
    for split in splits if splits is not None else stratified_kfold(cohort, k=k, seed=seed):
        fitted = model.clone().fit(cohort.subset(split.train).labelled())
        oof.loc[list(split.test)] = fitted.predict_proba(cohort.subset(split.test)).loc[list(split.test)]
    return oof


def choose_thresholds(labels: pd.Series, probability: pd.Series) -> dict[str, float]:
    from .evaluate.thresholds import threshold_for_sensitivity, youden_threshold

    y, p = labels.to_numpy(int), probability.loc[labels.index].to_numpy(float)
    return {"youden": float(youden_threshold(y, p)),
            "rule_out_sens90": float(threshold_for_sensitivity(y, p, 0.90)),
            "rule_out_sens95": float(threshold_for_sensitivity(y, p, 0.95))}


def calibration_summary(labels: pd.Series, probability: pd.Series) -> dict:
    """Calibration of the honest training-set probabilities (intercept, slope with 95% CI; Brier), kept in the
    manifest so the model card and the service can state how well the risks matched the observed rates."""
    from .evaluate.calibration import brier_score, calibration_intercept_slope

    y, p = labels.to_numpy(int), probability.loc[labels.index].to_numpy(float)
    try:
        fit = calibration_intercept_slope(y, p)
    except ValueError as exc:  # perfect separation: nothing to estimate
        return {"note": str(exc)}
    return {"intercept": list(fit.intercept), "slope": list(fit.slope), "brier": float(brier_score(y, p)),
            "patients": int(len(y))}


def train(cohort: Cohort, *, modalities=("clinical",), centres=None, options: dict | None = None,
          seed: int = 0) -> Bundle:
    """Fit the modality model on the labelled patients of `centres` (default: all) and pick thresholds on
    out-of-fold predictions of the training patients."""
    names = resolve(cohort, modalities)
    data = (cohort.in_centres(centres) if centres else cohort).labelled()
    labels = data.labels().astype(int)
    if labels.nunique() < 2 or labels.value_counts().min() < 5:
        raise LymphCastError(f"training needs at least 5 patients with and 5 without N1b; found "
                             f"{int(labels.sum())} with and {int((labels == 0).sum())} without")
    model = _model(names, options, seed)
    if model.oof == "validation":  # fit once; thresholds from the model's own held-out validation patients
        model.fit(data)
        oof = model.validation_proba_
        labels = labels.loc[oof.index]
    else:
        oof = out_of_fold(model, data, seed=seed)
        model.fit(data)
    manifest = stamp(
        modalities=names, settings={model.name: model.get_params()}, seed=seed,
        fields={name: spec.model_dump(mode="json", exclude_none=True) for name, spec in cohort.fields.items()},
        training={"cohort": cohort.meta.name, "centres": sorted(data.patients["centre"].unique()),
                  "patients": len(labels), "events": int(labels.sum()),
                  "input_sha256": cohort_hashes(cohort.root) if cohort.root else {}},
        thresholds=choose_thresholds(labels, oof), calibration=calibration_summary(labels, oof), threshold_source=(
            "validation patients held out from training" if model.oof == "validation" else "5-fold out-of-fold"))
    return Bundle({model.name: model}, manifest)


def predict(bundle: Bundle, cohort: Cohort, *, centres=None,
            levels: bool = False) -> tuple[pd.DataFrame, dict] | tuple[pd.DataFrame, dict, dict]:
    """Patient-level probabilities and their provenance; with `levels`, also the side- and node-level
    tables of a node-level model ({"sides": ..., "nodes": ...}; empty for a patient-level model)."""
    data = cohort.in_centres(centres) if centres else cohort
    model = _scoring_model(bundle)
    scored = model.predict_levels(data) if levels else {"patients": model.predict_proba(data)}
    frame = scored["patients"].rename("probability").reset_index()
    detail = {}
    if "sides" in scored:
        detail["sides"] = scored["sides"].rename("probability").reset_index()
        if isinstance(scored["nodes"], pd.DataFrame):  # fused: one probability column per node-level modality
            detail["nodes"] = scored["nodes"]
        else:
            nodes = scored["nodes"].rename("probability").rename_axis("node_id").reset_index()
            where = data.nodes[["node_id", "patient_id", "side", "level"]]
            detail["nodes"] = where.merge(nodes, on="node_id")
    if "levels" in scored:
        detail["levels"] = scored["levels"].rename("probability").reset_index()
    if "modalities" in scored:
        detail["modalities"] = scored["modalities"].reset_index()
    provenance = stamp(bundle_sha256=manifest_hash(bundle.manifest), modalities=bundle.modalities,
                       thresholds=bundle.manifest["thresholds"], model_training=bundle.manifest["training"],
                       cohort=cohort.meta.name,
                       centres=sorted(data.patients["centre"].unique()),
                       input_sha256=cohort_hashes(cohort.root) if cohort.root else {})
    return (frame, provenance, detail) if levels else (frame, provenance)


def cross_validate(cohort: Cohort, *, modalities=("clinical",), scheme: str = "kfold", k: int = 5,
                   options: dict | None = None, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Internal validation: out-of-fold probabilities for every patient, by stratified k-fold or by
    leave-one-centre-out (each centre scored by a model trained on the others)."""
    names = resolve(cohort, modalities)
    if scheme not in ("kfold", "loco"):
        raise LymphCastError(f"--scheme must be kfold or loco, not '{scheme}'")
    splits = stratified_kfold(cohort, k=k, seed=seed) if scheme == "kfold" else leave_one_centre_out(cohort)
    model = _model(names, options, seed)
    oof = out_of_fold(model, cohort, splits=splits)
    provenance = stamp(modalities=names, settings={model.name: model.get_params()}, seed=seed,
                       validation={"scheme": scheme, "splits": [s.name for s in splits]}, cohort=cohort.meta.name,
                       input_sha256=cohort_hashes(cohort.root) if cohort.root else {})
    return oof.reset_index(), provenance
