"""Where cases live: one folder per case under the service's data folder (the one-patient cohort that was scored,
result.json, heat maps). Results are written atomically; the worklist reads the results back, newest first."""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path

from ..cohort import atomic_file

CASE_ID = re.compile(r"^c-\d{8}-[0-9a-f]{10}$")


class CaseStore:
    def __init__(self, root: Path):
        self.root = Path(root) / "cases"
        self.root.mkdir(parents=True, exist_ok=True)

    def new_case_id(self) -> str:
        return f"c-{datetime.now(timezone.utc):%Y%m%d}-{secrets.token_hex(5)}"

    def case_dir(self, case_id: str) -> Path | None:
        """The folder of a case; None for an id that is not one of ours (never a path outside the store)."""
        if not CASE_ID.match(case_id or ""):
            return None
        return self.root / case_id

    def save_result(self, case_id: str, result: dict) -> bytes:
        data = json.dumps(result, sort_keys=True).encode("utf-8")
        with atomic_file(self.root / case_id / "result.json") as tmp:
            tmp.write_bytes(data)
        return data

    def result(self, case_id: str) -> dict | None:
        folder = self.case_dir(case_id)
        if folder is None or not (folder / "result.json").is_file():
            return None
        return json.loads((folder / "result.json").read_text(encoding="utf-8"))

    def worklist(self, limit: int = 200) -> list[dict]:
        rows = []
        for folder in sorted(self.root.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
            if len(rows) >= limit:
                break
            result = self.result(folder.name)
            if result is not None:
                rows.append({"case_id": result["case_id"], "patient_id": result["patient_id"],
                             "created_utc": result["created_utc"], "probability": result["patient"]["probability"],
                             "band": result["patient"]["band"], "source": result.get("source", "api"),
                             "nodes": len(result.get("nodes", []))})
        return sorted(rows, key=lambda r: r["created_utc"], reverse=True)
