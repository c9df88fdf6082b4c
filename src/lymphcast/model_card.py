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
        "## Limits", "", LIMITS, "",
    ]
    return "\n".join(lines)
