"""A test double for the PACS transport tests: NOT a model and not a risk estimate.

`score_instance` turns an ultrasound still into a result dict of the schema `dicom_sr.risk_report` takes,
using only the image's mean grey level (mean / 255 as the "probability"). It exists so the Orthanc
round trip (C-STORE in, SR out) can be tested without a trained bundle; its numbers mean nothing clinically.
"""

from __future__ import annotations

import datetime as _dt
import hashlib

from lymphcast.service.dicom_us import UsInstance

DOUBLE_SHA = hashlib.sha256(b"lymphcast pacs transport test double").hexdigest()


def probability(inst: UsInstance) -> float:
    """The double's number for this image: mean grey level on 0..1, rounded so it survives the SR exactly."""
    return round(float(inst.pixels.mean()) / 255.0, 6)


def score_instance(inst: UsInstance) -> dict:
    """A result dict for one instance (one case per instance, so each image gets its own SR)."""
    p = probability(inst)
    node = {"side": inst.side, "probability": p}
    if inst.level:
        node["level"] = inst.level
    result = {
        "case_id": f"us-{inst.sha256[:12]}", "patient_id": inst.patient_id,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        "patient": {"probability": p}, "sides": [{"side": inst.side, "probability": p}],
        "thresholds": {},
        "provenance": {"bundle_sha256": DOUBLE_SHA, "lymphcast_version": "test",
                       "model": "pacs transport test double (not a model)", "modalities": ["us_image"]},
    }
    if inst.level:
        result["levels"] = [dict(node)]
    if inst.node_label:
        result["nodes"] = [{"node_id": inst.node_label, **node}]
    return result
