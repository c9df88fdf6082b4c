"""Frame sources: a file played at its own rate (on a fake clock, so no test depends on the machine's speed), as
fast as it decodes, and a capture device through PyAV (FFmpeg's lavfi test source stands in for a camera)."""

from __future__ import annotations

import numpy as np
import pytest

from lymphcast.cohort import LymphCastError
from lymphcast.stream.sources import device_frames, file_frames, parse_device

from ..io.video_files import levels, write_video


class FakeClock:
    def __init__(self, decode_s: float = 0.0):
        self.now, self.decode_s, self.sleeps = 100.0, decode_s, []

    def __call__(self) -> float:
        self.now += self.decode_s  # each look at the clock costs a little, as decoding would
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def test_realtime_releases_each_frame_at_its_own_time(tmp_path):
    path = write_video(tmp_path / "clip.mp4", levels(6, (32, 48)), rate=20)
    clock = FakeClock()
    got = list(file_frames(path, True, clock=clock, sleep=clock.sleep))
    assert len(got) == 6 and got[0].pixels.shape == (32, 48) and got[0].pixels.dtype == np.uint8
    np.testing.assert_allclose([g.time_s for g in got], np.arange(6) / 20, atol=1e-6)
    np.testing.assert_allclose([g.released_at - got[0].released_at for g in got], np.arange(6) / 20, atol=1e-6)
    assert len(clock.sleeps) == 5


def test_a_late_consumer_keeps_the_schedule_so_its_wait_counts(tmp_path):
    path = write_video(tmp_path / "clip.mp4", levels(4, (32, 48)), rate=20)
    clock = FakeClock(decode_s=0.2)  # slower than the 50 ms between frames
    got = list(file_frames(path, True, clock=clock, sleep=clock.sleep))
    np.testing.assert_allclose([g.released_at - got[0].released_at for g in got], np.arange(4) / 20, atol=1e-6)
    assert clock.sleeps == [] and clock.now - got[-1].released_at > 0.5


def test_fast_releases_when_decoded(tmp_path):
    path = write_video(tmp_path / "clip.mp4", levels(5, (32, 48)), rate=10)
    clock = FakeClock(decode_s=0.001)
    got = list(file_frames(path, False, clock=clock, sleep=clock.sleep, max_frames=3))
    assert len(got) == 3 and clock.sleeps == [] and [round(g.time_s, 3) for g in got] == [0.0, 0.1, 0.2]


def test_unreadable_file_names_it(tmp_path):
    with pytest.raises(LymphCastError, match="missing.mp4.*file not found"):
        list(file_frames(tmp_path / "missing.mp4", False))
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(LymphCastError, match="junk.mp4"):
        list(file_frames(tmp_path / "junk.mp4", True))


def test_device_spec_parsing():
    assert parse_device("v4l2:/dev/video0") == ("v4l2", "/dev/video0")
    assert parse_device("lavfi:testsrc=size=64x48:rate=30") == ("lavfi", "testsrc=size=64x48:rate=30")
    assert parse_device("rtsp://scanner/live") == (None, "rtsp://scanner/live")
    assert parse_device("/dev/video0") == (None, "/dev/video0")


def _lavfi_available() -> bool:
    import av

    try:
        av.open("testsrc=size=64x48:rate=30", format="lavfi").close()
        return True
    except Exception:
        return False


@pytest.mark.skipif(not _lavfi_available(), reason="this PyAV/FFmpeg build has no lavfi input device")
def test_capture_device_through_pyav():
    got = list(device_frames("lavfi:testsrc=size=64x48:rate=30", max_frames=5))
    assert len(got) == 5 and all(g.pixels.shape == (48, 64) and g.pixels.dtype == np.uint8 for g in got)
    np.testing.assert_allclose([g.time_s for g in got], np.arange(5) / 30, atol=1e-6)
    assert all(b.released_at >= a.released_at for a, b in zip(got, got[1:]))


def test_missing_device_is_named():
    with pytest.raises(LymphCastError, match="cannot open capture device 'v4l2:/dev/no-such-camera'"):
        list(device_frames("v4l2:/dev/no-such-camera"))
