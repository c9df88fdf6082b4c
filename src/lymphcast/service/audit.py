"""The audit trail: one row per request (who, when, what, which patient, which bundle, result hash).

SQLite in WAL mode with synchronous=FULL, written and committed before the response leaves, so a request that
got an answer is on disk even if the process is killed the next instant; triggers refuse UPDATE and DELETE, so the
trail is append-only through SQLite (a person with the file can still delete it: keep it on storage the service
account cannot truncate, or ship rows to the hospital's SIEM). PostgreSQL can replace SQLite with the same table.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    utc TEXT NOT NULL,
    user TEXT,
    role TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    action TEXT,
    status INTEGER NOT NULL,
    patient_id TEXT,
    case_id TEXT,
    bundle_sha256 TEXT,
    result_sha256 TEXT,
    client TEXT,
    request_id TEXT
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
"""
COLUMNS = ("utc", "user", "role", "method", "path", "action", "status", "patient_id", "case_id", "bundle_sha256",
           "result_sha256", "client", "request_id")


class AuditLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # several worker processes share the file: wait for the write lock rather than fail
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def record(self, **row) -> int:
        """Append one row and commit it to disk; returns its sequence number."""
        row.setdefault("utc", datetime.now(timezone.utc).isoformat(timespec="milliseconds"))
        values = [row.get(c) for c in COLUMNS]
        with self._lock:
            cur = self._db.execute(f"INSERT INTO audit ({', '.join(COLUMNS)}) VALUES "
                                   f"({', '.join('?' * len(COLUMNS))})", values)
            return int(cur.lastrowid)

    def rows(self, *, patient_id: str | None = None, limit: int = 200) -> list[dict]:
        query, args = "SELECT seq, " + ", ".join(COLUMNS) + " FROM audit", []
        if patient_id is not None:
            query, args = query + " WHERE patient_id = ?", [patient_id]
        with self._lock:
            cur = self._db.execute(query + " ORDER BY seq DESC LIMIT ?", [*args, int(limit)])
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

    def close(self) -> None:
        with self._lock:
            self._db.close()
