"""A short model card written beside every bundle: intended use, data, thresholds and limits, from the manifest."""

from __future__ import annotations

INTENDED_USE = (
    "Preoperative estimate of the probability of lateral neck lymph node metastasis (N1b) in adults with "
    "papillary thyroid carcinoma, to support - not replace - the decision on lateral neck dissection "
    "(levels II-V) and on endoscopic surgery. Not validated for other histologies, for children or for "
    "recurrent disease.")

LIMITS = (
    "- Validate on your own centre before clinical use: external AUC usually drops 0.05-0.10 and calibration "
    "drifts between hospitals.\n"
    "- Labels from patients whose lateral neck was not dissected can be wrong (occult disease), which biases "
    "risks downwards in clinically node-negative patients.\n"
    "- Thresholds were chosen on out-of-fold predictions of the training patients; re-check them locally.")


# What each modality's model needs and cannot do, added to the limits of a bundle that holds it.
MODALITY_LIMITS = {
    "us_image": "- Ultrasound images: each node needs its own view (or a full-field frame for the detector); "
                "images without pixel spacing lose the node's size in mm.",
    "us_video": "- Cine clips: a transverse sweep through one node at a steady hand; a patient whose nodes have no "
                "clip gets no prediction.",
    "ct": "- Contrast CT: reads one axial contrast-enhanced conventional series per study, chosen by rule (check "
          "with `lymphcast ct-series STUDY`), and the iodine map only from a dual-energy study in the same frame "
          "of reference; each node must be given by its centre in patient coordinates (mm); not meant for "
          "unenhanced CT; slices thicker than 5 mm blur nodes under 5 mm.",
    "cytology": "- Cytology: fine-needle aspiration of the primary tumour, one scanned slide (tiled TIFF, or a vendor "
                "format through OpenSlide) or photographed fields per patient with their pixel size; tiles are read at "
                "the model's magnification and mapped onto the training labs' stains (Macenko), which cannot repair "
                "a smear that is mostly blood, air-drying artefact or out of focus; attention maps show where the "
                "model looked, not which cells are malignant.",
}

FUSION_LIMITS = ("- Fused: each modality's model trains on 70% of the training patients and the stackers on the other "
                 "30%, so each part sees fewer patients than a single model would; a modality that few stacking "
                 "patients had gets a weight estimated from few; the side and level risks need side labels "
                 "(lateral_left/right) and node labels per level to be learned, else the patient risk stands for "
                 "both sides.")


def model_card(manifest: dict, bundle_hash: str) -> str:
    training = manifest.get("training", {})
    thresholds = manifest.get("thresholds", {})
    lines = [
        "# LymphCast model card", "",
        f"- Bundle SHA-256: `{bundle_hash}`",
        f"- LymphCast {manifest.get('lymphcast_version', '?')}, created {manifest.get('created_utc', '?')} (UTC), "
        f"seed {manifest.get('seed', '?')}",
        f"- Modalities: {', '.join(manifest.get('modalities', []))}",
        f"- Settings: `{manifest.get('settings', {})}`", "",
        "## Intended use", "", INTENDED_USE, "",
        "## Training data", "",
        f"- Cohort `{training.get('cohort', '?')}`, centres {', '.join(training.get('centres', []))}",
        f"- {training.get('patients', '?')} labelled patients, {training.get('events', '?')} with N1b", "",
        "## Thresholds (chosen on training out-of-fold predictions)", "",
        *[f"- {name}: {value:.3f}" for name, value in thresholds.items()], "",
        "## Calibration (same predictions; ideal intercept 0, slope 1)", "", _calibration(manifest), "",
        *_locked(manifest),
        "## Limits", "", LIMITS,
        *[MODALITY_LIMITS[m] for m in manifest.get("modalities", []) if m in MODALITY_LIMITS],
        *([FUSION_LIMITS] if len(manifest.get("modalities", [])) > 1 else []), "",
    ]
    return "\n".join(lines)


def _calibration(manifest: dict) -> str:
    cal = manifest.get("calibration") or {}
    if "slope" not in cal:
        return f"- not estimated{': ' + cal['note'] if cal.get('note') else ''}"
    (i, il, ih), (s, sl, sh) = cal["intercept"], cal["slope"]
    return (f"- intercept {i:.2f} (95% CI {il:.2f} to {ih:.2f}), slope {s:.2f} ({sl:.2f} to {sh:.2f}), "
            f"Brier {cal['brier']:.3f}, {cal['patients']} patients")


def _locked(manifest: dict) -> list[str]:
    lock = manifest.get("locked")
    if not lock:
        return ["## Status", "", "- Not locked: a research model. `lymphcast bundle` locks it for the service.", ""]
    return ["## Status", "", f"- Locked {lock.get('utc', '?')} (UTC) by LymphCast {lock.get('lymphcast_version', '?')}"
            f" from model `{lock.get('source_sha256', '?')[:16]}...`; {lock.get('note') or 'no note'}", ""]
