"""End-to-end PACS scenario: a real Orthanc, storescu sending ultrasound stills, the watcher filing SRs.

Run it inside a private network namespace, since Orthanc 1.10 listens on every address:

    unshare -n sh -c 'ip link set lo up && exec .venv/bin/python tests/service/pacs_scenario.py --bundle LOCKED'

It starts Orthanc on loopback in a temporary directory and the service's DICOM intake on the locked bundle,
writes synthetic US stills, sends them with storescu, waits for one SR per image in the same study and prints
one JSON line of findings. Orthanc is stopped and the directory removed in all cases.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


PATIENT_ID = "PACS0001"


def _write_images(folder: Path, count: int) -> list[Path]:
    """`count` synthetic stills of one patient and study, alternating left/right, levels III/IV."""
    import pydicom

    from lymphcast.synth.us_dicom import write_us_dicom

    rng = np.random.default_rng(7)
    paths = []
    for i in range(count):
        path = folder / f"us{i + 1}.dcm"
        pixels = rng.integers(0, 60 + 60 * i, size=(96, 128), dtype=np.uint8)
        write_us_dicom(path, pixels, patient_id=PATIENT_ID, spacing_mm=0.08, token="pacs-scenario",
                       study="s1", series="1", instance=i + 1, description="Neck US", vendor="Acme",
                       frequency_mhz=12.0)
        ds = pydicom.dcmread(path)
        ds.ImageLaterality = "LR"[i % 2]
        ds.ImageComments = f"Level {('III', 'IV')[i % 2]} node N{i + 1:02d}"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _start_orthanc(binary: str, work: Path, user: str, password: str, http: int, dicom: int):
    config = {
        "Name": "lymphcast-test", "StorageDirectory": str(work / "db"), "IndexDirectory": str(work / "db"),
        "Plugins": [],  # not the Debian plugin folder
        "HttpPort": http, "DicomPort": dicom, "DicomAet": "ORTHANC", "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True, "RegisteredUsers": {user: password},
    }
    (work / "orthanc.json").write_text(json.dumps(config))
    log = open(work / "orthanc.log", "wb")
    return subprocess.Popen([binary, str(work / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT), log


def _wait_up(client, proc, seconds: float) -> None:
    from lymphcast.service.pacs import OrthancError

    deadline = time.monotonic() + seconds
    while True:
        try:
            client.system()
            return
        except OrthancError:
            if proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited with code {proc.returncode} before answering") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"Orthanc did not answer GET /system within {seconds} s") from None
            time.sleep(0.05)


def _srs_in_study(client, study_uid: str) -> list[str]:
    """Orthanc ids of the SR instances in the study (`POST /tools/find`, Modality is a series tag)."""
    return client.find("Instance", {"StudyInstanceUID": study_uid, "Modality": "SR"})


def run(args) -> dict:
    import pydicom

    from lymphcast.service.dicom_sr import read_risk_report, risk_report, to_bytes
    from lymphcast.service.dicom_us import read_header, read_us_instance
    from lymphcast.service.pacs import OrthancClient, OrthancWatcher, tag

    work = Path(tempfile.mkdtemp(prefix="lymphcast-orthanc-"))
    proc = log = watcher = client = None
    scored: dict[str, dict] = {}  # case_id -> the result the SR was made from

    from lymphcast.service.case_input import CaseIn, NodeIn
    from lymphcast.service.core import ServiceCore, ServiceSettings

    core = ServiceCore(ServiceSettings(bundle=Path(args.bundle), data_dir=work / "service"))
    if args.clinical:  # the record's clinical values, sent before the images (as an interface engine would)
        core.submit(CaseIn(patient_id=PATIENT_ID, clinical=json.loads(args.clinical)), {})

    def on_instance(data: bytes, orthanc_id: str) -> bytes:
        sr = core.intake.on_instance(data, f"orthanc/{tag(orthanc_id)}")
        for row in core.store.worklist(1000):
            scored.setdefault(row["case_id"], core.store.result(row["case_id"]))
        return sr

    try:
        images = _write_images(work, args.images)
        sent = [pydicom.dcmread(p, stop_before_pixels=True) for p in images]
        study_uid = sent[0].StudyInstanceUID
        user, password = "lymphcast", secrets.token_urlsafe(16)
        proc, log = _start_orthanc(args.orthanc, work, user, password, args.http_port, args.dicom_port)
        client = OrthancClient(f"http://127.0.0.1:{args.http_port}", auth=(user, password))
        _wait_up(client, proc, 30)
        # Warm up (imports, the first forward pass, highdicom) so the latency measures the service.
        warm = read_us_instance(images[0], name="warm-up")
        png = io.BytesIO()
        from PIL import Image

        Image.fromarray(warm.pixels).save(png, format="PNG")
        warm_result = core.submit(CaseIn(patient_id="WARMUP", nodes=[NodeIn(side="left", level="III",
                                                                            images=["w.png"])]),
                                  {"w.png": png.getvalue()})
        to_bytes(risk_report(warm_result, [read_header(images[0], name="warm-up")]))
        scored.clear()
        watcher = OrthancWatcher(client, on_instance, interval=args.interval).start()

        t0 = time.monotonic()
        store = subprocess.run([args.storescu, "-aet", "LYMPHCAST", "-aec", "ORTHANC", "127.0.0.1",
                                str(args.dicom_port), *map(str, images)], capture_output=True, text=True,
                               timeout=60)
        t_sent = time.monotonic() - t0
        first = last = None
        srs: list[str] = []
        while time.monotonic() - t0 < args.timeout and store.returncode == 0:
            srs = _srs_in_study(client, study_uid)
            if srs and first is None:
                first = time.monotonic() - t0
            if len(srs) >= len(images):
                last = time.monotonic() - t0
                break
            time.sleep(0.01)
        time.sleep(3 * args.interval)  # let the watcher see its own SRs, to show they are skipped

        reports = []
        for sr_id in srs:
            ds = pydicom.dcmread(io.BytesIO(client.instance_file(sr_id)))
            report = read_risk_report(ds)
            refs = [str(item.ReferencedSOPInstanceUID) for series in
                    ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
                    for item in series.ReferencedSOPSequence]
            ref = refs[0]
            expected = scored.get(report.get("case_id"), {}).get("patient", {}).get("probability")
            reports.append({"study_uid_equal": str(ds.StudyInstanceUID) == study_uid,
                            "patient_id_equal": str(ds.PatientID) == str(sent[0].PatientID),
                            "modality": str(ds.Modality), "references_sent_image": ref in {s.SOPInstanceUID for s in sent},
                            "probability": report["patient"], "stored_probability": expected,
                            "sides": report["sides"], "levels": report["levels"], "nodes": report["nodes"],
                            "model": report.get("model"), "images_referenced": len(refs),
                            "bundle_sha256": report.get("bundle_sha256")})
        return {"ok": store.returncode == 0 and last is not None, "images_sent": len(images),
                "storescu_rc": store.returncode, "storescu_stderr": store.stderr[-500:],
                "storescu_seconds": round(t_sent, 3), "sr_count": len(srs), "sr_found": bool(srs),
                "latency_first_sr_s": first and round(first, 3), "latency_all_sr_s": last and round(last, 3),
                "watcher": {"processed": watcher.processed, "failed": watcher.failed, "skipped": watcher.skipped,
                            "uploaded": watcher.uploaded, "outages": watcher.outages,
                            "running": watcher.running},
                "reports": reports}
    finally:
        if watcher is not None:
            watcher.stop()
        if client is not None:
            client.close()
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if log is not None:
            log.close()
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True, help="locked bundle the service's DICOM intake scores with")
    parser.add_argument("--clinical", help="JSON of the patient's clinical values, submitted before the images")
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--orthanc", default=shutil.which("Orthanc") or "/usr/sbin/Orthanc")
    parser.add_argument("--storescu", default=shutil.which("storescu") or "storescu")
    parser.add_argument("--http-port", type=int, default=8042)
    parser.add_argument("--dicom-port", type=int, default=4242)
    parser.add_argument("--interval", type=float, default=0.2, help="watcher poll interval, seconds")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for the SRs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        findings = run(args)
    except Exception as exc:  # one JSON line either way, so the caller can say what went wrong
        findings = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(findings))
    return 0 if findings.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
