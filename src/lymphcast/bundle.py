"""The deployable model: fitted modality models + manifest (settings, thresholds, calibration, hashes, provenance).

A bundle is a folder:
    bundle.json                 the manifest; its SHA-256 is the bundle hash quoted by every prediction
    <model>.json, .safetensors  each fitted model as a JSON state tree and its arrays (safe_state: loading can
                                never run code from the bundle, unlike a pickle)
    <model>_<figure>.png        pictures that explain the model, for people
    MODEL_CARD.md               intended use, data, thresholds, calibration, limits
    SHA256SUMS                  the hash of every other file (`sha256sum -c SHA256SUMS` checks it by hand)
Loading verifies every hash, refuses missing, extra or altered files, and only then reads the models.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from .cohort import LymphCastError, atomic_dir
from .modalities.base import ModalityModel
from .model_card import model_card
from .provenance import file_sha256

BUNDLE_FORMAT = 2
SUMS = "SHA256SUMS"


class BundleError(LymphCastError):
    pass


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

    @property
    def sha256(self) -> str:
        return manifest_hash(self.manifest)


def manifest_hash(manifest: dict) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def save_bundle(bundle: Bundle, target: str | Path, *, overwrite: bool = False) -> str:
    """Write atomically; return the bundle hash (SHA-256 of the manifest, which holds the model hashes)."""
    from .safe_state import save_state

    with atomic_dir(target, overwrite=overwrite) as tmp:
        files = {}
        for name, model in bundle.models.items():
            for file in save_state(model, tmp, name):
                files[file] = file_sha256(tmp / file)
            _save_figures(model, name, tmp)
        manifest = {**bundle.manifest, "format": BUNDLE_FORMAT, "models": sorted(bundle.models), "files": files}
        (tmp / "bundle.json").write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
        (tmp / "MODEL_CARD.md").write_text(model_card(manifest, manifest_hash(manifest)), encoding="utf-8")
        write_sums(tmp)
    bundle.manifest = manifest
    return manifest_hash(manifest)


def write_sums(folder: Path) -> None:
    lines = [f"{file_sha256(p)}  {p.name}" for p in sorted(folder.iterdir()) if p.is_file() and p.name != SUMS]
    (folder / SUMS).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _save_figures(model: ModalityModel, name: str, folder: Path) -> None:
    """Explanatory pictures (e.g. the clinical nomogram) beside the weights, for people, not for loading."""
    figures = model.figures()
    if not figures:
        return
    import matplotlib.pyplot as plt

    for title, fig in figures.items():
        fig.savefig(folder / f"{name}_{title}.png", dpi=120, bbox_inches="tight")
        plt.close(fig)


def verify_bundle(path: str | Path) -> dict:
    """Check every file against SHA256SUMS (none missing, altered or added) and return the manifest."""
    path = Path(path)
    manifest_file = path / "bundle.json"
    if not manifest_file.is_file():
        raise BundleError(f"'{path}' is not a LymphCast model: bundle.json not found")
    sums = path / SUMS
    if not sums.is_file():
        raise BundleError(f"'{path}' is incomplete: {SUMS} (the list of file hashes) is missing")
    listed: dict[str, str] = {}
    for number, line in enumerate(sums.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name or "/" in name or name.startswith("."):
            raise BundleError(f"'{sums}', line {number}: expected '<sha256>  <file name>', found {line[:80]!r}")
        listed[name] = digest
    present = {p.name for p in path.iterdir() if p.name != SUMS}
    if missing := sorted(set(listed) - present):
        raise BundleError(f"'{path}' is incomplete: {', '.join(missing)} listed in {SUMS} but missing")
    if extra := sorted(present - set(listed)):
        raise BundleError(f"'{path}' holds file(s) not in {SUMS}: {', '.join(extra)}; the bundle was altered")
    for name, digest in listed.items():
        if file_sha256(path / name) != digest:
            raise BundleError(f"file '{path / name}' does not match the hash in {SUMS}; the bundle was altered "
                              f"or damaged")
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"'{manifest_file}' is not valid JSON: {exc}") from None
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"'{path}' has bundle format {manifest.get('format')}, this LymphCast reads "
                          f"{BUNDLE_FORMAT} (format 1 held pickles: retrain the model)")
    for name, digest in manifest.get("files", {}).items():
        if listed.get(name) != digest:
            raise BundleError(f"model file '{path / name}' does not match the hash in bundle.json")
    return manifest


def load_bundle(path: str | Path) -> Bundle:
    from .safe_state import load_state

    path = Path(path)
    manifest = verify_bundle(path)
    names = manifest.get("models") or []
    if not names:
        raise BundleError(f"'{path / 'bundle.json'}' lists no model; the bundle is incomplete")
    return Bundle({name: load_state(path, name) for name in names}, manifest)


def lock_bundle(source: str | Path, target: str | Path, *, note: str = "", overwrite: bool = False) -> str:
    """The deployable copy of a trained model: verified, re-written, marked locked with the source model's hash;
    the service only serves locked bundles, so what runs beside PACS is a model someone chose to deploy."""
    from datetime import datetime, timezone

    from . import __version__

    bundle = load_bundle(source)
    if bundle.manifest.get("locked"):
        raise BundleError(f"'{source}' is already a locked bundle (locked {bundle.manifest['locked'].get('utc')})")
    manifest = {k: v for k, v in bundle.manifest.items() if k not in ("files", "models", "format")}
    manifest["locked"] = {"utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                          "lymphcast_version": __version__, "source_sha256": bundle.sha256, "note": note}
    return save_bundle(Bundle(bundle.models, manifest), target, overwrite=overwrite)
