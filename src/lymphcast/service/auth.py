"""Who may do what: bearer tokens with one role each, stored only as SHA-256 hashes.

Roles follow the hospital's split of duties: a clinician reads risks and pictures, an integration engine (PACS
router, interface engine) submits cases, an administrator manages the bundle and reads the audit trail. No role
implies another, so a leaked integration token cannot read patients' results.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from ..cohort import LymphCastError, atomic_file

ROLES = ("clinician", "integration", "admin")
PERMISSIONS = {"read": {"clinician"}, "submit": {"integration"}, "manage": {"admin"},
               "model": {"clinician", "integration", "admin"}}
TOKEN_PREFIX = "lc_"


@dataclass(frozen=True)
class User:
    name: str
    role: str

    def may(self, permission: str) -> bool:
        return self.role in PERMISSIONS[permission]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore:
    """The tokens file: a JSON list of {"user", "role", "sha256"}; the tokens themselves are never kept."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._by_hash = {entry["sha256"]: User(entry["user"], entry["role"]) for entry in self._read()}

    def _read(self) -> list[dict]:
        if not self.path.is_file():
            return []
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LymphCastError(f"tokens file '{self.path}' is not valid JSON: {exc}") from None
        if not isinstance(entries, list):
            raise LymphCastError(f"tokens file '{self.path}': expected a list of {{user, role, sha256}}")
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or entry.get("role") not in ROLES or len(str(entry.get("sha256"))) != 64 \
                    or not entry.get("user"):
                raise LymphCastError(f"tokens file '{self.path}', entry {i}: expected user, role (one of "
                                     f"{', '.join(ROLES)}) and a 64-hex sha256")
        return entries

    def user(self, token: str | None) -> User | None:
        if not token:
            return None
        return self._by_hash.get(token_hash(token))

    def issue(self, user: str, role: str) -> str:
        """Add a user with a new random token; return the token (shown once, stored as its hash)."""
        if role not in ROLES:
            raise LymphCastError(f"role must be one of {', '.join(ROLES)}, not '{role}'")
        if not user or any(ch in user for ch in "\n\r\t"):
            raise LymphCastError("user name must be a non-empty single line")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        entries = [e for e in self._read() if e["user"] != user] + [
            {"user": user, "role": role, "sha256": token_hash(token)}]
        with atomic_file(self.path) as tmp:
            tmp.write_text(json.dumps(entries, indent=2), encoding="utf-8")
            tmp.chmod(0o600)
        self._by_hash = {e["sha256"]: User(e["user"], e["role"]) for e in entries}
        return token
