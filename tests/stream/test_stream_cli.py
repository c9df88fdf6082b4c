"""`lymphcast stream`: a node risk per frame from a saved bundle, its summary and CSV, and clear errors (exit 2,
no traceback, no half-written CSV)."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from lymphcast.cli import app
from lymphcast.modalities.us_video_clips import BOX_COLUMNS

from ..io.video_files import cut, levels, random_frames, write_video
from ..torch_threads import one_torch_thread
from .test_sources import _lavfi_available

runner = CliRunner()


def run(*args):
    with one_torch_thread():
        return runner.invoke(app, [str(a) for a in args])


def _clean_failure(result, *fragments):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)


def test_help():
    result = run("stream", "--help")
    assert result.exit_code == 0 and "--realtime" in result.output and "--box" in result.output


def test_stream_a_node_clip_matches_offline_and_writes_csv(video_bundle, video_model, video_cohort, tmp_path):
    test = video_cohort.in_centres(["D"])
    row = test.nodes.loc[test.nodes["us_video_file"].notna()].iloc[0]
    box = ",".join(f"{row[c]:g}" for c in BOX_COLUMNS)
    result = run("stream", video_bundle, video_cohort.media_path(row["us_video_file"]), "--box", box,
                 "--spacing-mm", row["us_video_pixel_spacing_mm"], "--fast", "--out", tmp_path / "risk.csv")
    assert result.exit_code == 0, result.output
    for fragment in ("frames/s sustained", "latency median", "p95", "final node risk", "key frames"):
        assert fragment in result.output, fragment
    rows = pd.read_csv(tmp_path / "risk.csv")
    assert list(rows.columns) == ["frame", "time_s", "risk", "latency_ms"]
    assert list(rows["frame"]) == list(range(int(row["us_video_frames"])))
    assert rows["risk"].between(0, 1).all() and (rows["latency_ms"] > 0).all()
    assert rows["time_s"].is_monotonic_increasing
    with one_torch_thread():
        offline = video_model.predict_nodes(test)[row["node_id"]]
    assert rows["risk"].iloc[-1] == pytest.approx(offline, abs=1e-5)
    assert f"final node risk {offline:.3f}" in result.output


def test_realtime_default_and_window(video_bundle, tmp_path):
    clip = write_video(tmp_path / "short.mp4", random_frames(8, (48, 64)), rate=30)
    result = run("stream", video_bundle, clip, "--window", "3", "--out", tmp_path / "out.csv")
    assert result.exit_code == 0, result.output
    assert "8 frames" in result.output and "real time" in result.output and "from 3 frame(s)" in result.output
    assert len(pd.read_csv(tmp_path / "out.csv")) == 8


@pytest.mark.skipif(not _lavfi_available(), reason="this PyAV/FFmpeg build has no lavfi input device")
def test_stream_from_a_capture_device(video_bundle):
    result = run("stream", video_bundle, "lavfi:testsrc=size=96x72:rate=30", "--device", "--max-frames", "12")
    assert result.exit_code == 0, result.output
    assert "12 frames" in result.output and "device" in result.output


def test_bundle_without_a_video_model(video_bundle, tmp_path):
    import json
    import shutil

    from lymphcast.bundle import write_sums
    from lymphcast.provenance import file_sha256

    other = tmp_path / "clinical_only"  # the same weights filed as another modality: no us_video model inside
    shutil.copytree(video_bundle, other)
    for suffix in (".json", ".safetensors"):
        (other / f"us_video{suffix}").rename(other / f"clinical{suffix}")
    manifest = json.loads((other / "bundle.json").read_text())
    manifest["modalities"], manifest["models"] = ["clinical"], ["clinical"]
    manifest["files"] = {f: file_sha256(other / f) for f in ("clinical.json", "clinical.safetensors")}
    (other / "bundle.json").write_text(json.dumps(manifest))
    write_sums(other)
    clip = write_video(tmp_path / "c.mp4", levels(3, (32, 32)))
    _clean_failure(run("stream", other, clip, "--fast"), "holds no us_video model (it has: clinical)",
                   "--modalities us_video")


def test_bad_video_and_box_are_named(video_bundle, tmp_path):
    out = tmp_path / "out.csv"
    _clean_failure(run("stream", video_bundle, tmp_path / "none.mp4", "--out", out), "none.mp4", "file not found")
    (tmp_path / "junk.mp4").write_bytes(b"certainly not a video")
    _clean_failure(run("stream", video_bundle, tmp_path / "junk.mp4", "--out", out), "junk.mp4")
    clip = write_video(tmp_path / "c.mp4", levels(3, (32, 32)))
    for text in ("1,2,3", "a,b,c,d", "10,10,5,20"):
        _clean_failure(run("stream", video_bundle, clip, "--box", text, "--fast"), "--box must be X0,Y0,X1,Y1", text)
    _clean_failure(run("stream", video_bundle, clip, "--box", "100,100,120,120", "--fast"), "outside the 32x32 frame")
    _clean_failure(run("stream", video_bundle, "v4l2:/dev/no-such-camera", "--device"), "no-such-camera")
    assert not out.exists()


def test_truncated_clip_leaves_no_csv(video_bundle, tmp_path):
    whole = write_video(tmp_path / "whole.avi", random_frames(30, (48, 64)), codec="mjpeg", pix_fmt="yuvj420p")
    broken = cut(whole, tmp_path / "broken.avi", 0.5)
    out = tmp_path / "out.csv"
    _clean_failure(run("stream", video_bundle, broken, "--fast", "--out", out), "broken.avi")
    assert not out.exists() and not any(p.name.startswith(".out.csv") for p in tmp_path.iterdir())
