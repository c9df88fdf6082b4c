"""Orthanc as the PACS: notice new ultrasound instances, score them, file the SR back.

`OrthancClient` is a thin REST client (httpx, optional HTTP basic auth). `OrthancWatcher` follows Orthanc's
change log (`GET /changes`) in a thread: every `NewInstance` is downloaded, SRs are skipped (they are the
watcher's own output), the rest go to a callback that returns the SR bytes to upload (`POST /instances`).

Logs and error messages never carry patient identifiers: Orthanc ids appear only as a short hash
(`tag()`), DICOM UIDs and tags not at all.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from typing import Callable

import httpx

from lymphcast.cohort import LymphCastError

log = logging.getLogger("lymphcast.pacs")

SR_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.88."  # every Structured Report storage class lives under this root
OnInstance = Callable[[bytes, str], "bytes | None"]


class OrthancError(LymphCastError):
    """Orthanc answered with an HTTP error; the message names the method, path (ids hashed) and status."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status

    @property
    def retryable(self) -> bool:
        """True when trying again later may succeed (server busy or down), False for a refusal (4xx)."""
        return self.status is None or self.status >= 500 or self.status == 429


class OrthancUnreachable(OrthancError):
    """No HTTP answer at all (connection refused, timeout): Orthanc is down or not yet up."""


def tag(orthanc_id: str) -> str:
    """A short, stable stand-in for an Orthanc id in logs (the id is a hash of DICOM UIDs)."""
    return "#" + hashlib.sha256(orthanc_id.encode()).hexdigest()[:10]


class OrthancClient:
    """Orthanc's REST API at `url` (e.g. http://127.0.0.1:8042), with `auth=(user, password)` if enabled."""

    def __init__(self, url: str, auth: tuple[str, str] | None = None, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None):
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, auth=auth, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, method: str, path: str, shown: str, **kwargs) -> httpx.Response:
        """One request; `shown` is the path as it may appear in messages (ids replaced by their tag)."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise OrthancUnreachable(f"Orthanc {method} {shown} at {self.url}: no answer "
                                     f"({type(exc).__name__})") from None
        if response.status_code >= 400:
            raise OrthancError(f"Orthanc {method} {shown}: HTTP {response.status_code} "
                               f"{response.reason_phrase}".rstrip(), response.status_code)
        return response

    def _json(self, method: str, path: str, shown: str, **kwargs):
        response = self._call(method, path, shown, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise OrthancError(f"Orthanc {method} {shown}: HTTP {response.status_code} but the body is not "
                               "JSON", response.status_code) from None

    def system(self) -> dict:
        """`GET /system`: name, version, ports; answers as soon as Orthanc is up."""
        return self._json("GET", "/system", "/system")

    def changes(self, since: int, limit: int = 100) -> tuple[list[dict], int, bool]:
        """`GET /changes?since=&limit=`: (changes after `since`, the last sequence number, whether done)."""
        body = self._json("GET", "/changes", "/changes", params={"since": since, "limit": limit})
        return list(body.get("Changes") or []), int(body.get("Last", since)), bool(body.get("Done", True))

    def last_change(self) -> int:
        """Sequence number of the newest change (`GET /changes?last`), to start watching from now."""
        return int(self._json("GET", "/changes?last", "/changes?last").get("Last", 0))

    def instance_file(self, orthanc_id: str) -> bytes:
        """`GET /instances/{id}/file`: the stored DICOM Part-10 file."""
        return self._call("GET", f"/instances/{orthanc_id}/file", f"/instances/{tag(orthanc_id)}/file").content

    def find(self, level: str, query: dict) -> list[str]:
        """`POST /tools/find`: Orthanc ids of the resources at `level` (Patient/Study/Series/Instance) matching."""
        return list(self._json("POST", "/tools/find", "/tools/find", json={"Level": level, "Query": query}))

    def upload(self, dicom_bytes: bytes) -> dict:
        """`POST /instances`: store one DICOM file; Orthanc answers with its ID, ParentStudy and Status."""
        return self._json("POST", "/instances", "/instances", content=dicom_bytes,
                          headers={"Content-Type": "application/dicom"})


def is_structured_report(data: bytes) -> bool:
    """True when the file is an SR (Modality SR or an SR storage class); headers only, pixels never read."""
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True,
                             specific_tags=["Modality", "SOPClassUID"])
        meta_class = str(getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", "") or "")
        sop_class = str(ds.get("SOPClassUID") or meta_class)
        return str(ds.get("Modality") or "").upper() == "SR" or sop_class.startswith(SR_CLASS_PREFIX)
    except Exception:  # unreadable header: not ours; the callback refuses it with a proper message
        return False


class OrthancWatcher:
    """Follow Orthanc's change log in a thread and answer each new non-SR instance with the callback's SR.

    `on_instance(data, orthanc_id)` returns SR bytes to upload, or None. It starts from the newest change at
    `start()` (pass `since=0` to replay Orthanc's whole history). A failing callback is logged and counted
    in `failed`; Orthanc being unreachable or answering 5xx is retried with a doubling pause (up to
    `max_backoff` seconds) from the same change, so nothing is lost while it is down.
    """

    def __init__(self, client: OrthancClient, on_instance: OnInstance, *, interval: float = 0.2,
                 since: int | None = None, max_backoff: float = 5.0, batch: int = 100):
        self.client = client
        self.on_instance = on_instance
        self.interval = interval
        self.max_backoff = max_backoff
        self.batch = batch
        self.since = since
        self.processed = 0   # callback ran (and its SR, if any, was uploaded)
        self.failed = 0      # callback raised, or Orthanc refused the instance or the SR
        self.skipped = 0     # SRs, not handed to the callback
        self.uploaded = 0
        self.outages = 0     # polls that found Orthanc unreachable or failing
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "OrthancWatcher":
        """Fix the starting point now (so instances stored after start() are seen) and start the thread."""
        if self.since is None:
            try:
                self.since = self.client.last_change()
            except OrthancError as exc:  # resolved by the thread once Orthanc answers
                log.warning("Orthanc not answering at start (%s); will retry", exc)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="lymphcast-orthanc-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to finish after the current instance and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        pause = self.interval
        while not self._stop.is_set():
            try:
                more = self.poll_once()
                pause = self.interval
                if more:
                    continue  # a backlog: fetch the next page at once
            except OrthancError as exc:
                self.outages += 1
                pause = min(max(pause * 2, 0.05), self.max_backoff)
                log.warning("Orthanc poll failed (%s); retrying in %.2f s", exc, pause)
            except Exception as exc:  # a bug must not stop the service; it is logged and retried
                self.outages += 1
                pause = min(max(pause * 2, 0.05), self.max_backoff)
                log.exception("watcher error (%s); retrying in %.2f s", type(exc).__name__, pause)
            self._stop.wait(pause)

    def poll_once(self) -> bool:
        """Handle the changes after `since`; True when Orthanc has more waiting. Retryable Orthanc errors
        propagate, leaving `since` at the last change fully handled."""
        if self.since is None:
            self.since = self.client.last_change()
        changes, last, done = self.client.changes(self.since, self.batch)
        for change in changes:
            if self._stop.is_set():
                return False
            if change.get("ChangeType") == "NewInstance" and change.get("ID"):
                self._handle(str(change["ID"]))
            self.since = int(change.get("Seq", self.since))
        if not changes:
            self.since = max(self.since, last)
        return not done

    def _handle(self, orthanc_id: str) -> None:
        name = tag(orthanc_id)
        try:
            data = self.client.instance_file(orthanc_id)
        except OrthancError as exc:
            if exc.retryable:
                raise
            self.failed += 1  # e.g. deleted before we got to it
            log.warning("instance %s: cannot download (%s); skipped", name, exc)
            return
        if is_structured_report(data):
            self.skipped += 1
            log.debug("instance %s: SR, not scored", name)
            return
        try:
            sr = self.on_instance(data, orthanc_id)
        except LymphCastError as exc:
            self.failed += 1
            log.warning("instance %s: not scored: %s", name, type(exc).__name__)
            return
        except Exception as exc:
            self.failed += 1
            log.error("instance %s: scoring failed unexpectedly (%s)", name, type(exc).__name__)
            return
        if sr:
            try:
                self.client.upload(bytes(sr))
            except OrthancError as exc:
                if exc.retryable:
                    raise  # the change is retried; the SR's UIDs are stable, so no duplicate is made
                self.failed += 1
                log.warning("instance %s: Orthanc refused the SR (%s)", name, exc)
                return
            self.uploaded += 1
        self.processed += 1
        log.info("instance %s: scored%s", name, ", SR filed" if sr else "")
