"""The Orthanc integration: the watcher against an in-process fake, and a real Orthanc fed by storescu."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from lymphcast.cohort import LymphCastError
from lymphcast.service.pacs import OrthancClient, OrthancError, OrthancWatcher, is_structured_report

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = Path(__file__).with_name("pacs_scenario.py")


def _dicom(modality: str, sop_class: str) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = sop_class, meta.MediaStorageSOPInstanceUID, modality
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


US = "1.2.840.10008.5.1.4.1.1.6.1"
SR = "1.2.840.10008.5.1.4.1.1.88.33"


class FakeOrthanc:
    """Just enough of Orthanc's REST API: a change log, instance files, uploads; one 503 on demand."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.changes: list[dict] = []
        self.uploads: list[bytes] = []
        self.fail_next_changes = 0
        self.refuse_next = 0  # connection refused, as while Orthanc restarts
        self.served_503 = 0
        self.lock = threading.Lock()

    def add(self, orthanc_id: str, data: bytes) -> None:
        with self.lock:
            self.files[orthanc_id] = data
            self.changes.append({"ChangeType": "NewInstance", "ID": orthanc_id, "Seq": len(self.changes) + 1,
                                 "ResourceType": "Instance"})

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if self.refuse_next:
            self.refuse_next -= 1
            raise httpx.ConnectError("connection refused", request=request)
        if path == "/changes":
            if "last" in request.url.params:
                return httpx.Response(200, json={"Changes": [], "Done": True, "Last": len(self.changes)})
            if self.fail_next_changes:
                self.fail_next_changes -= 1
                self.served_503 += 1
                return httpx.Response(503)
            since, limit = int(request.url.params["since"]), int(request.url.params["limit"])
            with self.lock:
                page = [c for c in self.changes if c["Seq"] > since][:limit]
                return httpx.Response(200, json={"Changes": page, "Done": len(page) < limit,
                                                 "Last": page[-1]["Seq"] if page else len(self.changes)})
        if path.startswith("/instances/") and path.endswith("/file"):
            data = self.files.get(path.split("/")[2])
            return httpx.Response(200, content=data) if data else httpx.Response(404)
        if path == "/instances" and request.method == "POST":
            self.uploads.append(request.content)
            self.add(f"up{len(self.uploads)}", request.content)
            return httpx.Response(200, json={"ID": f"up{len(self.uploads)}", "Status": "Success"})
        return httpx.Response(404)


def _wait(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_watcher_skips_srs_survives_errors_outages_and_uploads_the_callback_sr():
    fake = FakeOrthanc()
    fake.add("old", _dicom("US", US))  # before start: must not be processed
    sr_out = _dicom("SR", SR)
    seen: list[str] = []

    def on_instance(data: bytes, orthanc_id: str):
        seen.append(orthanc_id)
        if orthanc_id == "bad":
            raise LymphCastError("cannot score this one")
        if orthanc_id == "boom":
            raise RuntimeError("bug in the scorer")
        return sr_out

    client = OrthancClient("http://orthanc.test", auth=("u", "p"), transport=httpx.MockTransport(fake.handler))
    watcher = OrthancWatcher(client, on_instance, interval=0.01).start()
    try:
        fake.fail_next_changes, fake.refuse_next = 1, 1
        fake.add("sr-from-elsewhere", _dicom("OT", SR))  # SR class, even with another modality
        fake.add("bad", _dicom("US", US))
        fake.add("boom", _dicom("US", US))
        fake.add("good", _dicom("US", US))
        assert _wait(lambda: watcher.uploaded == 1 and watcher.skipped == 2)
        assert watcher.running
        fake.add("after", _dicom("US", US))  # still working after all that
        assert _wait(lambda: watcher.uploaded == 2 and watcher.skipped == 3)
    finally:
        watcher.stop()
        client.close()
    assert not watcher.running
    assert seen == ["bad", "boom", "good", "after"]  # not "old", not any SR (including its own uploads)
    assert fake.uploads == [sr_out, sr_out]
    assert (watcher.processed, watcher.failed) == (2, 2)
    assert fake.served_503 == 1 and watcher.outages >= 2


def test_client_errors_name_path_and_status_but_not_the_id():
    client = OrthancClient("http://orthanc.test", transport=httpx.MockTransport(lambda r: httpx.Response(404)))
    with pytest.raises(OrthancError, match=r"GET /instances/#[0-9a-f]{10}/file: HTTP 404") as info:
        client.instance_file("0123abcd-secret-id")
    assert "secret" not in str(info.value) and not info.value.retryable
    assert is_structured_report(_dicom("SR", "1.2.840.10008.5.1.4.1.1.88.11"))
    assert not is_structured_report(_dicom("US", US)) and not is_structured_report(b"not dicom")


def _missing_tools() -> str | None:
    """Why the real-Orthanc scenario cannot run here, or None when it can."""
    need = {"Orthanc": shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if os.path.exists("/usr/sbin/Orthanc")
                                                   else None),
            "storescu": shutil.which("storescu"), "unshare": shutil.which("unshare"),
            "ip": shutil.which("ip") or ("/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else None)}
    missing = [name for name, path in need.items() if not path]
    if missing:
        return f"not installed: {', '.join(missing)} (Debian packages orthanc, dcmtk, util-linux, iproute2)"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return (f"'unshare -n' not permitted here (needs root or CAP_SYS_ADMIN): "
                f"{probe.stderr.strip() or probe.returncode}")
    return None


def test_real_orthanc_storescu_to_sr_in_the_same_study(service_bundle):
    """The acceptance path with the real service: a locked fused bundle, the patient's clinical values sent
    first, two ultrasound stills sent by storescu; each arrival files an updated SR in the same study."""
    import shlex

    from lymphcast.bundle import load_bundle
    from tests.service.conftest import CLINICAL

    reason = _missing_tools()
    if reason:
        pytest.skip(reason)
    orthanc = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
    ip = shutil.which("ip") or "/usr/sbin/ip"
    script = (f"{ip} link set lo up && exec {sys.executable} {SCENARIO} --orthanc {orthanc} --images 2 "
              f"--bundle {shlex.quote(str(service_bundle))} --clinical {shlex.quote(json.dumps(CLINICAL))}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["unshare", "-n", "sh", "-c", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no findings from the scenario (rc {proc.returncode}): {proc.stderr[-2000:]}"
    found = json.loads(lines[-1])
    assert found["ok"], found
    assert found["sr_count"] == found["images_sent"] == 2
    digest = load_bundle(service_bundle).sha256
    for report in found["reports"]:
        assert report["study_uid_equal"] and report["patient_id_equal"] and report["references_sent_image"]
        assert report["modality"] == "SR" and report["bundle_sha256"] == digest
        assert report["probability"] == pytest.approx(report["stored_probability"], abs=1e-9)
    latest = max(found["reports"], key=lambda r: r["images_referenced"])
    assert latest["images_referenced"] == 2 and set(latest["sides"]) == {"left", "right"}
    assert len(latest["nodes"]) == 2
    watcher = found["watcher"]
    assert (watcher["processed"], watcher["failed"], watcher["uploaded"]) == (2, 0, 2)
    assert watcher["skipped"] == 2  # its own SRs came back through the change log and were left alone
    # Acceptance: the SR is in PACS within 2 s of storescu starting (here: the last of both images).
    print(f"storescu -> SR in Orthanc: first {found['latency_first_sr_s']} s, all {found['latency_all_sr_s']} s")
    assert found["latency_all_sr_s"] < 2.0
