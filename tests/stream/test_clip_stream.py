"""ClipStream: the streamed risk after the last frame is the offline risk; windows bound memory; every frame gives
an update with its latency; RGB frames; a frame of another size is refused."""

from __future__ import annotations

import numpy as np
import pytest

from lymphcast.cohort import LymphCastError
from lymphcast.io.video import iter_frames
from lymphcast.modalities.us_video_clips import BOX_COLUMNS
from lymphcast.stream import ClipStream, file_frames

from ..torch_threads import one_torch_thread


@pytest.fixture(scope="module")
def test_nodes(video_cohort):
    test = video_cohort.in_centres(["D"])
    return test, test.nodes.set_index("node_id").loc[lambda d: d["us_video_file"].notna()]


def _stream_for(model, row, **kwargs) -> ClipStream:
    return ClipStream(model, box=tuple(row[c] for c in BOX_COLUMNS), spacing_mm=row["us_video_pixel_spacing_mm"],
                      fps=row["us_video_fps"], **kwargs)


def test_last_update_equals_offline_prediction(video_model, video_cohort, test_nodes):
    test, nodes = test_nodes
    with one_torch_thread():
        offline = video_model.predict_nodes(test)
        offline_keys = video_model.key_frames(test, offline.index[:3])
        for node_id in offline.index[:3]:  # an MP4 and DICOM centre alike: the file decides
            row = nodes.loc[node_id]
            stream = _stream_for(video_model, row)
            updates = [stream.push(f.pixels, f.time_s, f.released_at)
                       for f in file_frames(video_cohort.media_path(row["us_video_file"]), realtime=False)]
            assert len(updates) == int(row["us_video_frames"])
            assert updates[-1].risk == pytest.approx(offline[node_id], abs=1e-5)
            assert updates[-1].frames_used == len(updates) == stream.buffered
            keys = offline_keys[offline_keys["node_id"] == node_id].sort_values("attention", ascending=False)
            assert stream.key_frames(1) == [int(keys["frame"].iloc[0])]
            frames, weights = stream.attention()
            np.testing.assert_allclose(weights, keys.sort_values("position")["attention"], atol=1e-5)


def test_every_frame_updates_with_latency(video_model, video_cohort, test_nodes):
    _, nodes = test_nodes
    row = nodes.iloc[0]
    with one_torch_thread():
        stream = _stream_for(video_model, row)
        updates = [stream.push(f.pixels, f.time_s) for f in iter_frames(video_cohort.media_path(row["us_video_file"]))]
    assert [u.index for u in updates] == list(range(len(updates)))
    assert [u.frames_used for u in updates] == list(range(1, len(updates) + 1))
    assert all(0 < u.risk < 1 and u.latency_ms > 0 and np.isfinite(u.logit) for u in updates)
    assert updates[1].time_s > updates[0].time_s
    assert stream.latest is updates[-1]
    assert len(stream.key_frames(3)) == 3 and all(0 <= k < len(updates) for k in stream.key_frames(3))


def test_first_frame_repeats_like_a_short_offline_clip(video_model):
    frame = np.random.default_rng(0).integers(0, 256, (60, 80), np.uint8)
    with one_torch_thread():
        stream = ClipStream(video_model)
        first = stream.push(frame, 0.0)
    frames, weights = stream.attention()
    assert list(frames) == [0] * video_model.frames and weights.sum() == pytest.approx(1, abs=1e-5)
    assert stream.key_frames(3) == [0] and first.frames_used == 1


def test_sliding_window_bounds_the_buffer(video_model):
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (60, 80), np.uint8) for _ in range(25)]
    with one_torch_thread():
        windowed = ClipStream(video_model, window=8)
        updates = [windowed.push(f, i / 20) for i, f in enumerate(frames)]
        assert windowed.buffered == 8 and [u.frames_used for u in updates][-3:] == [8, 8, 8]
        used, _ = windowed.attention()
        assert used.min() >= 25 - 8 and used.max() == 24  # only the window's frames are read
        assert all(k >= 25 - 8 for k in windowed.key_frames(5))
        fresh = ClipStream(video_model, window=8)  # the window alone decides: a stream started at frame 17 agrees
        last = [fresh.push(f, (17 + i) / 20) for i, f in enumerate(frames[-8:])][-1]
    assert last.risk == pytest.approx(updates[-1].risk, abs=1e-6)


def test_rgb_frames_are_read_as_grey(video_model):
    rgb = np.random.default_rng(2).integers(0, 256, (60, 80, 3), np.uint8)
    from lymphcast.io.video import luma

    with one_torch_thread():
        a = ClipStream(video_model, box=(20, 10, 50, 40)).push(rgb, 0.0)
        b = ClipStream(video_model, box=(20, 10, 50, 40)).push(luma(rgb), 0.0)
    assert a.risk == pytest.approx(b.risk, abs=1e-7)


def test_bad_frames_and_settings_are_refused(video_model):
    stream = ClipStream(video_model)
    with one_torch_thread():
        stream.push(np.zeros((60, 80), np.uint8), 0.0)
        with pytest.raises(LymphCastError, match="frame 1 is 81x60 pixels but the stream began with 80x60"):
            stream.push(np.zeros((60, 81), np.uint8), 0.05)
        with pytest.raises(LymphCastError, match="uint8"):
            stream.push(np.zeros((60, 80), np.float32), 0.05)
        with pytest.raises(LymphCastError, match="grey"):
            stream.push(np.zeros((60, 80, 2), np.uint8), 0.05)
        with pytest.raises(LymphCastError, match="outside the 80x60 frame"):
            ClipStream(video_model, box=(100, 100, 120, 120)).push(np.zeros((60, 80), np.uint8))
    with pytest.raises(LymphCastError, match="window"):
        ClipStream(video_model, window=0)
    with pytest.raises(LymphCastError, match="x1 > x0"):
        ClipStream(video_model, box=(10, 10, 5, 20))


def test_one_thread_per_frame_leaves_the_callers_setting(video_model):
    import torch

    frame = np.zeros((40, 40), np.uint8)
    with one_torch_thread():
        torch.set_num_threads(2)
        ClipStream(video_model).push(frame)
        assert torch.get_num_threads() == 2
        ClipStream(video_model, threads=None).push(frame)
        assert torch.get_num_threads() == 2
