"""The deployable model: fitted modality models + manifest (settings, thresholds, hashes, provenance).

A bundle is a folder: `bundle.json` (the manifest) and one `<modality>.joblib` per model. The manifest records
each model file's SHA-256; loading refuses a bundle whose files do not match, so a corrupted or swapped file
never scores a patient. joblib files are pickles: load only bundles from a source you trust.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import joblib

from .cohort import LymphCastError, atomic_dir
from .modalities.base import ModalityModel
from .model_card import model_card
from .provenance import file_sha256

BUNDLE_FORMAT = 1


@dataclass
class Bundle:
    models: dict[str, ModalityModel]
    manifest: dict

    @property
    def modalities(self) -> list[str]:
        """The modalities the bundle reads (a fused bundle holds one "fusion" model over several)."""
        return list(self.manifest.get("modalities") or self.models)

    def component(self, name: str) -> ModalityModel | None:
        """The fitted model of one modality, alone or inside the fusion model; None if the bundle has none."""
        if name in self.models:
            return self.models[name]
        fusion = self.models.get("fusion")
        return getattr(fusion, "models_", {}).get(name) if fusion is not None else None

    @property
    def threshold(self) -> float:
        return float(self.manifest["thresholds"]["youden"])


def manifest_hash(manifest: dict) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def save_bundle(bundle: Bundle, target: str | Path, *, overwrite: bool = False) -> str:
    """Write atomically; return the bundle hash (SHA-256 of the manifest, which holds the model hashes)."""
    with atomic_dir(target, overwrite=overwrite) as tmp:
        files = {}
        for name, model in bundle.models.items():
            joblib.dump(model, tmp / f"{name}.joblib", compress=3)
            files[f"{name}.joblib"] = file_sha256(tmp / f"{name}.joblib")
            _save_figures(model, name, tmp)
        manifest = {**bundle.manifest, "format": BUNDLE_FORMAT, "files": files}
        (tmp / "bundle.json").write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
        (tmp / "MODEL_CARD.md").write_text(model_card(manifest, manifest_hash(manifest)), encoding="utf-8")
    bundle.manifest = manifest
    return manifest_hash(manifest)


def _save_figures(model: ModalityModel, name: str, folder: Path) -> None:
    """Explanatory pictures (e.g. the clinical nomogram) beside the weights, for people, not for loading."""
    figures = model.figures()
    if not figures:
        return
    import matplotlib.pyplot as plt

    for title, fig in figures.items():
        fig.savefig(folder / f"{name}_{title}.png", dpi=120, bbox_inches="tight")
        plt.close(fig)


def load_bundle(path: str | Path) -> Bundle:
    path = Path(path)
    manifest_file = path / "bundle.json"
    if not manifest_file.is_file():
        raise LymphCastError(f"'{path}' is not a LymphCast model: bundle.json not found")
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LymphCastError(f"'{manifest_file}' is not valid JSON: {exc}") from None
    if manifest.get("format") != BUNDLE_FORMAT:
        raise LymphCastError(f"'{path}' has bundle format {manifest.get('format')}, this LymphCast reads "
                             f"{BUNDLE_FORMAT}")
    models = {}
    names = [f[:-len(".joblib")] for f in manifest.get("files", {}) if f.endswith(".joblib")]
    if not names:
        raise LymphCastError(f"'{manifest_file}' lists no model file; the bundle is incomplete")
    for name in names:
        file = path / f"{name}.joblib"
        if not file.is_file():
            raise LymphCastError(f"model file '{file}' is missing from the bundle")
        if file_sha256(file) != manifest["files"].get(file.name):
            raise LymphCastError(f"model file '{file}' does not match the hash in bundle.json; "
                                 f"the bundle was altered or damaged")
        models[name] = joblib.load(file)
    return Bundle(models, manifest)
