"""Score one case with the locked bundle: the patient, side, level and node risks as one JSON-ready result, with
the thresholds in force and the provenance (bundle hash, software version, hashes of every input file)."""

from __future__ import annotations

import contextvars
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from ..bundle import Bundle
from ..cohort import Cohort
from ..provenance import file_sha256, stamp


def risk_band(p: float, thresholds: dict) -> str:
    """high at or above the Youden threshold; low below the rule-out threshold (sensitivity 0.95); else between."""
    if not np.isfinite(p):
        return "unknown"
    if p >= thresholds["youden"]:
        return "high"
    return "low" if p < thresholds.get("rule_out_sens95", 0.0) else "intermediate"


def _number(value) -> float | None:
    value = float(value)
    return round(value, 6) if np.isfinite(value) else None


class Scorer:
    """Holds the bundle and scores cases in batches: cases that arrive while a batch is being scored wait and go
    together into the next one (one forward pass for ten cases costs about what one costs, so under load the
    latency stays near two batch times instead of growing with the queue). Cases are keyed by case id inside a
    batch, so two cases of the same patient never mix."""

    def __init__(self, bundle: Bundle, max_batch: int = 32, max_wait_s: float = 0.03):
        self.bundle = bundle
        self.lock = threading.Lock()  # one forward pass at a time: 2 cores gain nothing from two
        self.thresholds = dict(bundle.manifest["thresholds"])
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._cv = threading.Condition()
        self._pending: list[_Job] = []
        self._preparing = 0  # cases announced by reserve() whose files are still being written
        self._busy = False

    @contextmanager
    def announce(self):
        """Announce a case that will be scored soon (from the moment its request arrives), so that a batch about to
        start waits briefly for it instead of leaving it for the next batch. Nested announcements of the same case
        (the HTTP layer, then ServiceCore.submit) count once; a case that never reaches score() is withdrawn."""
        if (current := _ANNOUNCED.get()) is not None and current.open:
            yield current
            return
        ticket = _Ticket()
        with self._cv:
            self._preparing += 1
        token = _ANNOUNCED.set(ticket)
        try:
            yield ticket
        finally:
            _ANNOUNCED.reset(token)
            with self._cv:
                if ticket.open:
                    ticket.open = False
                    self._preparing -= 1
                    self._cv.notify_all()

    def score(self, cohort: Cohort, *, case_id: str, extra: dict | None = None) -> dict:
        """Score one case (a one-patient cohort whose patient_id is the case id), batched with any others."""
        job = _Job(cohort, case_id, extra or {})
        ticket = _ANNOUNCED.get()
        with self._cv:
            self._pending.append(job)
            if ticket is not None and ticket.open:
                ticket.open = False
                self._preparing -= 1
            self._cv.notify_all()
            while not job.done:
                if self._busy:
                    self._cv.wait()
                    continue
                # Cases still being written would otherwise need a batch of their own after this one: wait a
                # little for them (never when none is on its way, so a lone case is not delayed).
                deadline = time.monotonic() + self.max_wait_s
                while self._preparing > 0 and len(self._pending) < self.max_batch and not self._busy:
                    if (remaining := deadline - time.monotonic()) <= 0:
                        break
                    self._cv.wait(remaining)
                if self._busy or job.done:
                    continue
                # no batch running: this thread scores everything waiting (its own case among them)
                self._busy, batch = True, self._pending[:self.max_batch]
                del self._pending[:self.max_batch]
                self._cv.release()
                try:
                    self._run(batch)
                finally:
                    self._cv.acquire()
                    self._busy = False
                    self._cv.notify_all()
        if job.error is not None:
            raise job.error
        return job.result

    def _run(self, batch: list["_Job"]) -> None:
        try:
            tables = self._predict([job.cohort for job in batch])
        except Exception as exc:  # noqa: BLE001 - one bad case must not fail the others: score them one by one
            if len(batch) == 1:
                batch[0].error, batch[0].done = exc, True
                return
            for job in batch:
                self._run([job])
            return
        for job in batch:
            try:
                job.result = self._result(job, tables)
            except Exception as exc:  # noqa: BLE001
                job.error = exc
            job.done = True

    def _predict(self, cohorts: list[Cohort]) -> dict[str, pd.DataFrame]:
        from ..pipeline import predict

        import sklearn

        merged = merge_cases(cohorts)
        # The case was validated when it was written: scikit-learn's repeated input checks are skipped here.
        with self.lock, sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            frame, _, detail = predict(self.bundle, merged, levels=True)
        return {"patients": frame, **detail}

    def _result(self, job: "_Job", tables: dict[str, pd.DataFrame]) -> dict:
        def mine(name: str) -> pd.DataFrame | None:
            table = tables.get(name)
            return None if table is None or not len(table) else table[table["patient_id"] == job.case_id]

        p = float(mine("patients")["probability"].iloc[0])
        nodes = mine("nodes")
        if nodes is not None:  # back to the node names of the case (inside a batch they carry the case id)
            nodes = nodes.assign(node_id=nodes["node_id"].str.removeprefix(f"{job.case_id}-"))
        result = {"case_id": job.case_id, "patient_id": job.extra.get("patient_id", job.case_id),
                  "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), **job.extra,
                  "patient": {"probability": _number(p), "band": risk_band(p, self.thresholds)},
                  "sides": self._rows(mine("sides"), ("side",)),
                  "levels": self._rows(mine("levels"), ("side", "level")),
                  "nodes": self._nodes(nodes),
                  "modalities": self._modalities(mine("modalities")),
                  "thresholds": self.thresholds}
        result["provenance"] = stamp(bundle_sha256=self.bundle.sha256, model=self._model_name(),
                                     modalities=self.bundle.modalities, locked=bool(self.bundle.manifest.get("locked")),
                                     input_sha256=_input_hashes(job.cohort.root))
        return result

    def _model_name(self) -> str:
        return "fusion" if "fusion" in self.bundle.models else self.bundle.modalities[0]

    def _rows(self, table: pd.DataFrame | None, keys: tuple[str, ...]) -> list[dict]:
        if table is None or not len(table):
            return []
        return [{**{k: str(row[k]) for k in keys}, "probability": _number(row["probability"]),
                 "band": risk_band(float(row["probability"]), self.thresholds)} for row in table.to_dict("records")]

    def _nodes(self, table: pd.DataFrame | None) -> list[dict]:
        if table is None or not len(table):
            return []
        parts = [c for c in table.columns if c.startswith("p_") or c == "probability"]
        rows = []
        for r in table.to_dict("records"):
            risks = {c.removeprefix("p_") if c != "probability" else self._model_name(): _number(r[c]) for c in parts}
            known = [v for v in risks.values() if v is not None]
            # one number to show per node: the first modality that saw it (ultrasound image before clip before CT)
            rows.append({"node_id": str(r["node_id"]), "side": str(r["side"]), "level": str(r["level"]),
                         "probability": known[0] if known else None, "risks": risks})
        return rows

    @staticmethod
    def _modalities(table: pd.DataFrame | None) -> dict:
        if table is None or not len(table):
            return {}
        row = table.iloc[0]
        return {c: _number(row[c]) for c in table.columns if c != "patient_id"}


class _Ticket:
    def __init__(self):
        self.open = True  # announced and not yet in the queue


# The announcement of the case the current request (or thread) carries; copied into worker threads with the context.
_ANNOUNCED: contextvars.ContextVar[_Ticket | None] = contextvars.ContextVar("lymphcast_announced", default=None)


class _Job:
    def __init__(self, cohort: Cohort, case_id: str, extra: dict):
        self.cohort, self.case_id, self.extra = cohort, case_id, extra
        self.result: dict | None = None
        self.error: BaseException | None = None
        self.done = False


def merge_cases(cohorts: list[Cohort]) -> Cohort:
    """One cohort of several cases: patients keyed by case id (the folder name above each case's cohort), node ids
    prefixed with it, media paths made relative to the store folder that holds every case."""
    from dataclasses import replace

    if len(cohorts) == 1 and cohorts[0].root is not None:
        return cohorts[0]
    root = cohorts[0].root.parent.parent
    patients, nodes = [], []
    for c in cohorts:
        prefix = c.root.relative_to(root)
        patients.append(c.patients)
        if len(c.nodes):
            media = [col for col in c.nodes.columns if col.endswith("_file")]
            nodes.append(c.nodes.assign(**{col: c.nodes[col].map(
                lambda refs, p=prefix: ";".join(str(p / r) for r in str(refs).split(";")) if isinstance(refs, str)
                else refs) for col in media}))
    return replace(cohorts[0], patients=pd.concat(patients, ignore_index=True),
                   nodes=pd.concat(nodes, ignore_index=True) if nodes else cohorts[0].nodes, root=root)


def _input_hashes(root: Path | None) -> dict[str, str]:
    if root is None:
        return {}
    return {str(p.relative_to(root)): file_sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}
