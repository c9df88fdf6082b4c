"""Evaluate a prediction file against a cohort's recorded labels: the glue between files and the report."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pandas as pd

from .cohort import Cohort, LymphCastError
from .modalities.registry import oracle_column
from .predictions import read_predictions
from .provenance import file_sha256

CT_FOLDER = "ct_gallery"  # report folder of the CT Grad-CAM pictures
CYTOLOGY_FOLDER = "cytology_gallery"  # report folder of the cytology attention maps
MISSING_HANDLING = ("No patient is dropped for a missing predictor: the clinical model imputes the training "
                    "median (numbers) or most frequent value (binary, category) and adds a missing-value "
                    "indicator wherever training data had missing values.")

SUBGROUPS = {  # report subgroups from CLINICAL_FACTS.md: name → rule on the patients table
    "sex": lambda p: p["sex"],
    "age_lt_55": lambda p: (p["age"] < 55).where(p["age"].notna()).map({True: "yes", False: "no"}),
    "tumour_le_10mm": lambda p: (p["tumour_size_mm"] <= 10).where(p["tumour_size_mm"].notna())
    .map({True: "yes", False: "no"}),
    "hashimoto": lambda p: p["hashimoto"].map({1: "yes", 0: "no"}),
    "no_palpable_adenopathy": lambda p: p["palpable_adenopathy"].map({1: "no", 0: "yes"}),
}


def evaluation_frame(predictions: pd.DataFrame, cohort: Cohort,
                     modalities) -> tuple[pd.DataFrame, list[str], str | None]:
    """Join predictions with recorded labels, centres, subgroups and (synthetic only) the oracle risk."""
    unknown = set(predictions["patient_id"]) - set(cohort.patients["patient_id"])
    if unknown:
        raise LymphCastError(f"{len(unknown)} patient(s) in the predictions are not in cohort "
                             f"'{cohort.meta.name}'; predictions and cohort do not belong together")
    patients = cohort.patients.set_index("patient_id").loc[predictions["patient_id"]]
    frame = predictions.assign(label=patients["n1b"].to_numpy(), centre=patients["centre"].to_numpy())
    groups = []
    for name, rule in SUBGROUPS.items():
        try:
            frame[name] = rule(patients).astype("object").to_numpy()
            groups.append(name)
        except KeyError:
            continue  # the cohort does not record that field
    vendors = {c.id: c.acquisition.get("us", {}).get("vendor") for c in cohort.meta.centres}
    if any(vendors.values()):  # CLINICAL_FACTS lists the ultrasound vendor among the subgroups to report
        frame["us_vendor"] = frame["centre"].map(vendors).astype("object").to_numpy()
        groups.append("us_vendor")
    oracle = None
    truth = cohort.root / "truth" / "patients.csv" if cohort.root else None
    if truth is not None and truth.is_file() and modalities:
        column = oracle_column(modalities)
        risks = pd.read_csv(truth, dtype={"patient_id": str}).set_index("patient_id")
        if column in risks:
            frame["oracle_" + column] = risks[column].reindex(frame["patient_id"]).to_numpy()
            oracle = "oracle_" + column
    return frame, groups, oracle


def node_auc(model, cohort: Cohort, *, seed: int = 0, n_boot: int = 1000) -> dict:
    """AUC of a node-level model's node probabilities against the recorded node labels ('metastatic'), with a
    95% CI by cluster bootstrap over patients (a patient's nodes are not independent)."""
    from .evaluate.summary import auc_with_ci

    p = model.predict_nodes(cohort)
    nodes = cohort.nodes.set_index("node_id").reindex(p.index)
    y = pd.to_numeric(nodes["metastatic"], errors="coerce") if "metastatic" in nodes else p * float("nan")
    keep = y.notna().to_numpy()
    y, p, patients = y[keep].astype(int).to_numpy(), p[keep].to_numpy(), nodes["patient_id"][keep].to_numpy()
    out = {"n_nodes": int(keep.sum()), "node_events": int(y.sum()), "n_patients": len(set(patients))}
    if not 0 < y.sum() < y.size:
        return {**out, "note": "node AUC not computed: it needs metastatic and benign nodes with a recorded label "
                               "(column 'metastatic' of nodes.csv) among the evaluated patients"}
    auc, low, high, method = auc_with_ci(y, p, clusters=patients, seed=seed, n_boot=n_boot)
    return {**out, "auc": auc, "auc_ci_low": low, "auc_ci_high": high, "auc_ci_method": method}


def detection_scores(model, cohort: Cohort, iou: float = 0.5) -> dict | None:
    """Recall/precision/F1 of the model's node detector (attribute `detector_`, if it has one) on the full-field
    frames of `cohort` whose nodes all have boxes; None without a detector or such frames."""
    from .modalities.us_detect_data import frame_table

    detector = getattr(model, "detector_", None)
    if detector is None:
        return None
    try:
        frame_table(cohort, need_boxes=True)
    except LymphCastError:
        return None
    return {**detector.score(cohort, iou=iou), "iou": iou}


def model_sections(bundle_dir: str | Path, cohort: Cohort, predictions: pd.DataFrame, provenance: dict,
                   staging: Path, seed: int = 0, readers=None, training_source: Cohort | None = None) -> dict:
    """write_report's node_level, gallery and clips from the bundle's ultrasound node models on `cohort` (the
    evaluated patients only): node metrics and the Grad-CAM gallery from the image model (PNGs to
    staging/gallery/), node metrics (when there is no image model) and the risk-over-time panel from the clip
    model (PNGs to staging/clips/). node_level records the bundle's hash. For a fused bundle, `training_source`
    (the cohort folder it was trained on, from --intermediate-from, checked against the bundle's record) lets the
    report compare stacking with intermediate fusion."""
    from .bundle import load_bundle, manifest_hash
    from .modalities.ct_crops import ct_nodes
    from .modalities.us_regions import image_nodes
    from .modalities.us_video_clips import video_nodes

    bundle = load_bundle(bundle_dir)
    made_by, this = provenance.get("bundle_sha256"), manifest_hash(bundle.manifest)
    if made_by and made_by != this:
        raise LymphCastError(f"the predictions were made by model {made_by[:12]}, not by the bundle '{bundle_dir}' "
                             f"({this[:12]}); pass the bundle that made them")
    video, image, ct, cytology = (bundle.component(n) for n in ("us_video", "us_image", "ct", "cytology"))
    sections: dict = {}
    if "fusion" in bundle.models:
        from .fusion.evaluation import fusion_sections

        sections["fusion"] = fusion_sections(bundle.models["fusion"], cohort, bundle.threshold, readers,
                                             intermediate=_intermediate(bundle, training_source))
    elif readers is not None:
        raise LymphCastError("--readers compares reader calls with a fused model: pass --model with a bundle "
                             "trained on several modalities")
    elif training_source is not None:
        raise LymphCastError("--intermediate-from compares intermediate fusion with a fused model's stacking: pass "
                             "--model with a bundle trained on several modalities")
    if cytology is not None:
        from .explain.gallery import report_items
        from .explain.mil_attention import build_cytology_gallery

        sections["cytology_gallery"] = report_items(
            build_cytology_gallery(cytology, cohort, predictions, bundle.threshold, staging, folder=CYTOLOGY_FOLDER),
            staging)
    if image is None and video is None and ct is None:
        if sections:
            return sections
        return {"node_level": {"bundle_sha256": this, "note": f"the model bundle ({', '.join(bundle.modalities)}) "
                               "has no node-level image model: no node metrics and no Grad-CAM gallery"}}
    if image is not None and len(image_nodes(cohort)):
        from .explain.gallery import build_gallery, report_items

        node_level = {"bundle_sha256": this, "model": "us_image", **node_auc(image, cohort, seed=seed)}
        detection = detection_scores(image, cohort)
        if detection is not None:
            node_level["detection"] = detection
        sections["node_level"] = node_level
        entries = build_gallery(image, cohort, predictions, bundle.threshold, staging)
        sections["gallery"] = report_items(entries, staging)
    if video is not None and len(video_nodes(cohort)):
        from .explain.clip_gallery import build_clip_gallery
        from .explain.gallery import report_items

        sections.setdefault("node_level", {"bundle_sha256": this, "model": "us_video",
                                           **node_auc(video, cohort, seed=seed)})
        sections["clips"] = report_items(build_clip_gallery(video, cohort, predictions, bundle.threshold, staging),
                                         staging)
    if ct is not None and len(ct_nodes(cohort)):
        from .explain.gallery import build_gallery, report_items
        from .explain.gradcam3d import ct_pictures
        from .modalities.ct import CtModel

        sections["ct_node_level"] = {"bundle_sha256": this, "model": "ct", **node_auc(ct, cohort, seed=seed)}
        entries = build_gallery(ct, cohort, predictions, bundle.threshold, staging, media_nodes=ct_nodes,
                                pictures=ct_pictures, folder=CT_FOLDER, details=CtModel.node_details)
        sections["ct_gallery"] = report_items(entries, staging)
    if not sections:
        what = ("node ultrasound images (us_image_file)" if image is not None else
                "ultrasound clips (us_video_file)" if video is not None else "CT studies (ct_file)")
        return {"node_level": {"bundle_sha256": this, "note": f"the evaluated patients have no {what}: no node "
                               "metrics and no Grad-CAM gallery"}}
    return sections


def _intermediate(bundle, source: Cohort | None):
    """Intermediate fusion fitted on the fused bundle's training cohort, when that cohort is at hand (else None:
    the comparison is optional)."""
    from .fusion.intermediate import IntermediateFusion, training_cohort

    if source is None:
        return None
    return IntermediateFusion(bundle.models["fusion"]).fit(training_cohort(bundle.manifest, source))


def _publish_gallery(staging: Path, report_dir: Path) -> None:
    """Replace report_dir/gallery and report_dir/clips with the staged ones (after the report was written)."""
    for folder in ("gallery", "clips", CT_FOLDER, CYTOLOGY_FOLDER):
        target = report_dir / folder
        if target.is_dir():
            shutil.rmtree(target)
        if (staging / folder).is_dir():
            shutil.move(str(staging / folder), str(target))


def evaluate_predictions(predictions_csv: str | Path, cohort: Cohort, report_dir: str | Path, *,
                         seed: int = 0, model: str | Path | None = None, readers: str | Path | None = None,
                         intermediate_from: str | Path | None = None) -> dict:
    """Write report.html + metrics.json for `predictions_csv`; the threshold is the one the model chose on its
    training data (from the provenance sidecar) so the test patients do not pick their own cut-off.
    `model`: the bundle folder that made the predictions; with a node-level ultrasound image model in it the
    report adds node-level AUC, node detection (if the model has a detector) and a Grad-CAM gallery of the
    most confident true and false calls among the evaluated patients (PNGs in report_dir/gallery/); with a
    cine-clip model, the risk over time and the key frames of sample clips (PNGs in report_dir/clips/).
    `intermediate_from`: the fused bundle's training cohort folder, for the intermediate-fusion comparison (it
    re-reads the training patients' media, so it runs only when asked for)."""
    from .evaluate.report import write_report

    if intermediate_from is not None and model is None:
        raise LymphCastError("--intermediate-from needs --model: the fused bundle whose stacking it is compared with")
    predictions, provenance = read_predictions(predictions_csv)
    modalities = provenance.get("modalities", [])
    frame, groups, oracle = evaluation_frame(predictions, cohort, modalities)
    threshold = provenance.get("thresholds", {}).get("youden")
    provenance = {**provenance, "predictions_sha256": file_sha256(Path(predictions_csv)), "report_seed": seed}
    title = f"LymphCast validation: {', '.join(modalities) or 'model'} on {', '.join(sorted(frame['centre'].unique()))}"
    evaluated = cohort.patients.set_index("patient_id").loc[predictions["patient_id"]]
    missing = {name: evaluated[name].isna().mean() for name in cohort.clinical_columns}
    if readers is not None and model is None:
        raise LymphCastError("--readers needs --model: the bundle of the fused model the readers are compared with")
    source = None  # the comparison refits on the training patients' media: only when asked for
    if intermediate_from is not None:
        from .cohort import read_cohort

        source = read_cohort(intermediate_from)
    staging = tempfile.TemporaryDirectory(prefix="lymphcast-gallery-") if model is not None else None
    try:
        sections = {} if staging is None else model_sections(
            model, cohort.subset(predictions["patient_id"]), predictions, provenance, Path(staging.name), seed,
            readers, training_source=source)
        metrics = write_report(frame, Path(report_dir), title=title, provenance=provenance, threshold=threshold,
                               oracle_column=oracle, group_columns=groups, seed=seed, missing_data=missing,
                               missing_data_handling=MISSING_HANDLING, **sections)
        if staging is not None:
            _publish_gallery(Path(staging.name), Path(report_dir))
        return metrics
    finally:
        if staging is not None:
            staging.cleanup()
