"""Hashes and version stamps carried by every output (models, predictions, reports)."""

from __future__ import annotations

import hashlib
import platform
from datetime import datetime, timezone
from pathlib import Path

from . import __version__


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def cohort_hashes(root: Path) -> dict[str, str]:
    """Hashes of a cohort's tables (media are referenced by the tables; hashing them all would be slow)."""
    root = Path(root)
    return {name: file_sha256(root / name) for name in ("cohort.yaml", "patients.csv", "nodes.csv", "cytology.csv")
            if (root / name).is_file()}


def stamp(**extra) -> dict:
    """The common provenance block: package version, Python, UTC time, plus whatever the caller adds."""
    return {"lymphcast_version": __version__, "python": platform.python_version(),
            "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), **extra}
