"""Cases with cine clips: a node's clip goes through the clip model; its picture (risk over the sweep and the key
frames) is served and linked from the result; a clip that is not a video is named."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from lymphcast.service.app import create_app
from tests.torch_threads import one_torch_thread

@pytest.fixture(scope="module")
def clip_service(video_bundle, tmp_path_factory):
    """The shared tiny clip model (tests/conftest.py), locked and served."""
    from lymphcast.bundle import lock_bundle
    from lymphcast.service.core import ServiceCore, ServiceSettings

    tmp = tmp_path_factory.mktemp("clip_service")
    lock_bundle(video_bundle, tmp / "locked")
    core = ServiceCore(ServiceSettings(bundle=tmp / "locked", data_dir=tmp / "data", max_file_bytes=20_000_000,
                                       max_upload_bytes=40_000_000))
    tokens = {role: core.tokens.issue(role, role) for role in ("integration", "clinician")}
    return TestClient(create_app(core)), tokens


def test_clip_scored_and_its_key_frames_served(clip_service, synth_video_cohort_dir):
    client, tokens = clip_service
    nodes = pd.read_csv(synth_video_cohort_dir / "nodes.csv").dropna(subset=["us_video_file"])
    row = nodes.iloc[0]
    clip = (synth_video_cohort_dir / row["us_video_file"]).read_bytes()
    case = {"patient_id": "V1", "nodes": [{"node_id": "N1", "side": row["side"], "level": row["level"],
                                           "clip": "sweep.mp4", "clip_key_frame": int(row["us_video_key_frame"]),
                                           "clip_box": [float(row[f"us_video_box_{c}"]) for c in
                                                        ("x0", "y0", "x1", "y1")]}]}
    made = client.post("/api/v1/cases/upload", data={"case": json.dumps(case)},
                       files=[("files", ("sweep.mp4", clip, "video/mp4"))],
                       headers={"Authorization": f"Bearer {tokens['integration']}"})
    assert made.status_code == 201, made.text
    result = made.json()
    assert result["nodes"][0]["node_id"] == "N1" and 0 < result["nodes"][0]["probability"] < 1
    link = result["key_frames"][0]["png"]
    with one_torch_thread():
        picture = client.get(link, headers={"Authorization": f"Bearer {tokens['clinician']}"})
    assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")


def test_a_clip_that_is_not_a_video_is_named(clip_service, synth_video_cohort_dir):
    client, tokens = clip_service
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    case = {"patient_id": "V2", "nodes": [{"side": "left", "level": "III", "clip": "sweep.mp4"}]}
    refused = client.post("/api/v1/cases/upload", data={"case": json.dumps(case)},
                          files=[("files", ("sweep.mp4", png, "video/mp4"))],
                          headers={"Authorization": f"Bearer {tokens['integration']}"})
    assert refused.status_code == 422 and "sweep.mp4" in refused.text and "cine clip" in refused.text
    bad_box = {"patient_id": "V3", "nodes": [{"side": "left", "level": "III", "clip": "s.mp4",
                                              "clip_box": [10, 10, 5, 20]}]}
    assert client.post("/api/v1/cases/upload", data={"case": json.dumps(bad_box)},
                       files=[("files", ("s.mp4", png, "video/mp4"))],
                       headers={"Authorization": f"Bearer {tokens['integration']}"}).status_code == 422
