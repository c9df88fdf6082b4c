"""Reading cine clips: containers and codecs, frame times, rotation, odd sizes, DICOM cine, errors, bounded memory."""

from __future__ import annotations

import sys
import tracemalloc
import warnings

import numpy as np
import pytest

from lymphcast.cohort.errors import LymphCastError
from lymphcast.io.video import (TruncatedVideoError, TruncatedVideoWarning, VideoReadError, iter_frames, open_video,
                                read_clip, upright)

from .video_files import cut, levels, random_frames, write_dicom_cine, write_video


def frame_levels(path, **kwargs) -> list[int]:
    """The brightness each decoded frame carries, rounded back to the index `levels` planted in it."""
    return [int(round((f.pixels.mean() - 20) / 9)) for f in iter_frames(path, **kwargs)]


# ---- containers and codecs ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("fps", [15, 30])
def test_h264_mp4_frame_count_rate_and_times(tmp_path, fps):
    path = write_video(tmp_path / "clip.mp4", levels(24, (48, 64)), rate=fps)
    info = open_video(path)
    assert (info.source, info.codec, info.width, info.height, info.frames) == ("video", "h264", 64, 48, 24)
    assert info.fps == pytest.approx(fps)
    assert info.duration_s == pytest.approx(24 / fps, abs=1e-3)
    assert info.variable_frame_rate is False and info.rotation == 0 and info.spacing_mm is None
    frames = list(iter_frames(path))
    assert [f.index for f in frames] == list(range(24))
    assert [f.time_s for f in frames] == pytest.approx([i / fps for i in range(24)], abs=1e-3)
    assert all(f.pixels.shape == (48, 64) and f.pixels.dtype == np.uint8 for f in frames)
    assert frame_levels(path) == list(range(24))  # in order, none dropped or repeated


def test_mjpeg_avi_and_h264_mov_are_read(tmp_path):
    avi = write_video(tmp_path / "clip.avi", levels(10, (48, 64)), codec="mjpeg", pix_fmt="yuvj420p")
    mov = write_video(tmp_path / "clip.mov", levels(10, (48, 64)))
    assert (open_video(avi).codec, open_video(avi).container) == ("mjpeg", "avi")
    assert open_video(mov).codec == "h264"
    assert frame_levels(avi) == frame_levels(mov) == list(range(10))


@pytest.mark.parametrize("name, codec, pix_fmt", [("odd.avi", "mjpeg", "yuvj444p"), ("odd.mkv", "ffv1", "gray"),
                                                  ("odd_raw.avi", "rawvideo", "gray")])
def test_odd_size_is_kept_exactly(tmp_path, name, codec, pix_fmt):
    # H.264 in yuv420p refuses odd sizes (libx264 will not open), so odd sizes come in codecs that allow them
    planted = random_frames(6, (239, 317))
    path = write_video(tmp_path / name, planted, codec=codec, pix_fmt=pix_fmt)
    info = open_video(path)
    assert (info.width, info.height) == (317, 239)
    frames = list(iter_frames(path))
    assert [f.pixels.shape for f in frames] == [(239, 317)] * 6
    if codec != "mjpeg":  # lossless: every pixel back, and frames kept by the caller are not overwritten later
        assert all(np.array_equal(f.pixels, p) for f, p in zip(frames, planted, strict=True))


def test_colour_frames_come_as_rgb(tmp_path):
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    path = write_video(tmp_path / "colour.avi", [rgb] * 3, codec="mjpeg", pix_fmt="yuvj444p")
    first = next(iter_frames(path, gray=False))
    assert first.pixels.shape == (32, 48, 3)
    assert first.pixels.reshape(-1, 3).mean(axis=0) == pytest.approx([200, 100, 50], abs=4)
    grey = next(iter_frames(path)).pixels
    assert grey.mean() == pytest.approx(0.299 * 200 + 0.587 * 100 + 0.114 * 50, abs=3)  # ITU-R 601 luma


def test_variable_frame_rate_times_follow_each_frames_pts(tmp_path):
    pts_ms = [0, 33, 66, 200, 233, 500, 533, 1000]
    for name, codec, pix_fmt in [("vfr.mkv", "ffv1", "gray"), ("vfr.mp4", "libx264", "yuv420p")]:
        path = write_video(tmp_path / name, levels(8, (48, 64)), codec=codec, pix_fmt=pix_fmt, rate=30,
                           pts_ms=pts_ms)
        times = [f.time_s for f in iter_frames(path)]
        assert times == pytest.approx([t / 1000 for t in pts_ms], abs=1e-3), name
    assert open_video(tmp_path / "vfr.mp4").variable_frame_rate is True  # the MP4 index lists every frame


# ---- rotation ----------------------------------------------------------------------------------------------------

def test_upright_turns_counter_clockwise_by_the_rotation():
    stored = np.array([[1, 2], [3, 4]])
    assert upright(stored, 0) is stored
    assert upright(stored, 90).tolist() == [[2, 4], [1, 3]]    # a quarter turn counter-clockwise
    assert upright(stored, -90).tolist() == [[3, 1], [4, 2]]   # clockwise: a phone clip filmed in portrait
    assert upright(stored, 180).tolist() == [[4, 3], [2, 1]]
    assert upright(stored, 270).tolist() == upright(stored, -90).tolist()
    assert upright(stored, -89.6).tolist() == upright(stored, -90).tolist()


@pytest.mark.parametrize("rotation, corner", [(90, "bottom-left"), (-90, "top-right"), (180, "bottom-right")])
def test_rotation_metadata_turns_frames_upright(tmp_path, rotation, corner):
    stored = np.zeros((32, 64), np.uint8)
    stored[:8, :8] = 255  # a bright block in the stored picture's top-left corner
    path = write_video(tmp_path / "rotated.mp4", [stored] * 3, rotation=rotation)
    info = open_video(path)
    assert info.rotation == rotation % 360
    expected_shape = (32, 64) if rotation == 180 else (64, 32)
    assert (info.height, info.width) == expected_shape
    pixels = next(iter_frames(path)).pixels
    assert pixels.shape == expected_shape
    h, w = expected_shape
    rows = slice(0, 8) if corner.startswith("top") else slice(h - 8, h)
    cols = slice(0, 8) if corner.endswith("left") else slice(w - 8, w)
    assert pixels[rows, cols].mean() > 200 and pixels.mean() < 60


# ---- streaming: start, cap, bounded memory -----------------------------------------------------------------------

def test_start_and_max_frames_select_a_window_with_exact_indices(tmp_path):
    path = write_video(tmp_path / "clip.avi", levels(20, (24, 32)), codec="mjpeg", pix_fmt="yuvj420p", rate=10)
    window = list(iter_frames(path, start_s=0.5, max_frames=4))
    assert [f.index for f in window] == [5, 6, 7, 8]
    assert [f.time_s for f in window] == pytest.approx([0.5, 0.6, 0.7, 0.8])
    assert frame_levels(path, start_s=0.5, max_frames=4) == [5, 6, 7, 8]
    assert list(iter_frames(path, start_s=99)) == []
    assert list(iter_frames(path, max_frames=0)) == []


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads resident memory from /proc")
def test_streaming_memory_does_not_grow_with_clip_length(tmp_path):
    # 2,000 frames of 128x96: 24.6 MB if they were held. tracemalloc sees the numpy frames handed out; FFmpeg's own
    # buffers (demuxer, decoder) it does not, so the resident size of the process is measured as well.
    count, base = 2000, np.random.default_rng(0).integers(0, 256, (96, 128), dtype=np.uint8)
    path = write_video(tmp_path / "long.avi", [np.roll(base, i, axis=1) for i in range(count)], codec="mjpeg",
                       pix_fmt="yuvj420p", rate=30)
    tracemalloc.start()
    try:
        before, growth, seen = _rss_bytes(), 0, 0
        for frame in iter_frames(path):
            seen += 1
            if frame.index % 20 == 0:
                growth = max(growth, _rss_bytes() - before)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen == count
    assert peak < 1e6, f"Python-side allocations peaked at {peak / 1e6:.1f} MB while streaming"
    assert growth < 6e6, f"resident memory grew by {growth / 1e6:.1f} MB while streaming"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads resident memory from /proc")
def test_dicom_frames_are_read_one_at_a_time(tmp_path):
    frames = np.random.default_rng(1).integers(0, 256, (300, 128, 128), dtype=np.uint8)  # 4.9 MB of pixels
    path = write_dicom_cine(tmp_path / "long.dcm", frames)
    del frames
    before, growth, seen = _rss_bytes(), 0, 0
    for frame in iter_frames(path):
        seen += 1
        growth = max(growth, _rss_bytes() - before)
    assert seen == 300 and growth < 2.5e6


# ---- read_clip ---------------------------------------------------------------------------------------------------

def test_read_clip_stacks_frames_and_times(tmp_path):
    path = write_video(tmp_path / "clip.mp4", levels(12, (48, 64)), rate=15)
    pixels, times = read_clip(path, max_frames=12)
    assert pixels.shape == (12, 48, 64) and pixels.dtype == np.uint8
    assert times == pytest.approx(np.arange(12) / 15, abs=1e-3)
    small, _ = read_clip(path, max_frames=20, size=(24, 40))
    assert small.shape == (12, 24, 40)
    assert small.mean(axis=(1, 2)) == pytest.approx(pixels.mean(axis=(1, 2)), abs=2)


def test_read_clip_refuses_a_clip_longer_than_its_cap(tmp_path):
    known = write_video(tmp_path / "known.avi", levels(12, (24, 32)), codec="mjpeg", pix_fmt="yuvj420p")
    with pytest.raises(VideoReadError, match=r"known\.avi.*12 frames, more than 10"):
        read_clip(known, max_frames=10)
    unknown = write_video(tmp_path / "unknown.mkv", levels(12, (24, 32)), codec="ffv1", pix_fmt="gray")
    assert open_video(unknown).frames is None  # Matroska does not announce its frame count
    with pytest.raises(VideoReadError, match=r"unknown\.mkv.*more than 10 frames"):
        read_clip(unknown, max_frames=10)


# ---- multi-frame DICOM -------------------------------------------------------------------------------------------

def test_dicom_cine_frames_times_and_spacing(tmp_path):
    frames = np.stack(random_frames(7, (39, 53)))
    path = write_dicom_cine(tmp_path / "cine.dcm", frames, frame_time_ms=40.0, region_delta_cm=0.012)
    info = open_video(path)
    assert (info.source, info.width, info.height, info.frames, info.pixel_format) == ("dicom", 53, 39, 7,
                                                                                        "MONOCHROME2")
    assert info.fps == pytest.approx(25.0) and info.duration_s == pytest.approx(0.28)
    assert info.spacing_mm == pytest.approx(0.12) and info.variable_frame_rate is False
    read = list(iter_frames(path))
    assert all(np.array_equal(f.pixels, p) for f, p in zip(read, frames, strict=True))
    assert [f.time_s for f in read] == pytest.approx([0.04 * i for i in range(7)])
    assert [f.index for f in iter_frames(path, start_s=0.1, max_frames=2)] == [3, 4]


def test_dicom_rgb_gives_601_luma_or_exact_rgb(tmp_path):
    frames = np.stack(random_frames(3, (20, 30, 3), seed=2))
    path = write_dicom_cine(tmp_path / "rgb.dcm", frames, region_delta_cm=None, pixel_spacing_mm=0.2)
    assert open_video(path).spacing_mm == pytest.approx(0.2)
    colour = [f.pixels for f in iter_frames(path, gray=False)]
    assert all(np.array_equal(c, p) for c, p in zip(colour, frames, strict=True))
    grey = next(iter_frames(path)).pixels
    expected = np.round(frames[0, ..., 0] * 0.299 + frames[0, ..., 1] * 0.587 + frames[0, ..., 2] * 0.114)
    assert np.abs(grey.astype(int) - expected.astype(int)).max() <= 1


def test_dicom_frame_time_vector_gives_variable_times(tmp_path):
    path = write_dicom_cine(tmp_path / "vfr.dcm", np.stack(levels(5, (16, 16))), frame_time_ms=None,
                            frame_time_vector=[0, 30, 30, 100, 40])
    assert [f.time_s for f in iter_frames(path)] == pytest.approx([0, 0.03, 0.06, 0.16, 0.20])
    assert open_video(path).variable_frame_rate is True


def test_dicom_timing_from_cine_rate_or_unknown(tmp_path):
    rated = write_dicom_cine(tmp_path / "rate.dcm", np.stack(levels(4, (16, 16))), frame_time_ms=None, cine_rate=20)
    assert [f.time_s for f in iter_frames(rated)] == pytest.approx([0, 0.05, 0.10, 0.15])
    untimed = write_dicom_cine(tmp_path / "untimed.dcm", np.stack(levels(4, (16, 16))), frame_time_ms=None)
    assert open_video(untimed).fps is None
    assert [f.time_s for f in iter_frames(untimed)] == [None] * 4
    assert np.isnan(read_clip(untimed, max_frames=4)[1]).all()
    with pytest.raises(VideoReadError, match="no frame timing"):
        next(iter_frames(untimed, start_s=0.1))


def test_dicom_jpeg_baseline_colour_is_decoded(tmp_path):
    rgb = np.zeros((6, 40, 48, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    path = write_dicom_cine(tmp_path / "jpeg.dcm", rgb, jpeg=True)
    assert open_video(path).codec.startswith("JPEG Baseline")
    frames = list(iter_frames(path, gray=False))
    assert len(frames) == 6
    assert frames[0].pixels.reshape(-1, 3).mean(axis=0) == pytest.approx([200, 100, 50], abs=3)


def test_dicom_monochrome1_is_inverted_and_12_bit_is_scaled(tmp_path):
    inverted = write_dicom_cine(tmp_path / "m1.dcm", np.full((2, 8, 8), 55, np.uint8), photometric="MONOCHROME1")
    assert next(iter_frames(inverted)).pixels.max() == 200
    deep = np.zeros((2, 8, 8), np.uint16)
    deep[:, :, 4:] = 4095
    deep[1] //= 2
    pixels, _ = read_clip(write_dicom_cine(tmp_path / "deep.dcm", deep, bits_stored=12), max_frames=2)
    assert pixels[0, 0].tolist() == [0] * 4 + [255] * 4
    assert pixels[1, 0, 7] == 127  # the same scale for every frame, not each frame stretched to its own range


# ---- errors: every one a VideoReadError naming the file ----------------------------------------------------------

def _expect_error(path, match, error=VideoReadError):
    with pytest.raises(error, match=match) as caught:
        list(iter_frames(path))
    assert str(path) in str(caught.value) and isinstance(caught.value, LymphCastError)
    if error is VideoReadError:
        with pytest.raises(error, match=match):
            open_video(path)


def test_missing_empty_and_non_video_files(tmp_path):
    _expect_error(tmp_path / "absent.mp4", "file not found")
    with pytest.raises(VideoReadError, match="file not found"):
        iter_frames(tmp_path / "absent.mp4")  # at the call, before the first frame is asked for
    (tmp_path / "empty.mp4").touch()
    _expect_error(tmp_path / "empty.mp4", "file is empty")
    _expect_error(tmp_path, "not a file")
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    _expect_error(tmp_path / "noise.mp4", "not a readable video")
    (tmp_path / "notes.avi").write_text("not a video " * 50)
    _expect_error(tmp_path / "notes.avi", "not a readable video")
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "still.png")
    (tmp_path / "still.mp4").write_bytes((tmp_path / "still.png").read_bytes())
    _expect_error(tmp_path / "still.mp4", "still image")
    (tmp_path / "fake.dcm").write_bytes(b"\0" * 300)
    _expect_error(tmp_path / "fake.dcm", "not a DICOM file")


def test_audio_only_and_zero_frame_files(tmp_path):
    import av

    for name, codec, fmt, dtype in [("audio.mp4", "aac", "fltp", np.float32), ("zero.mkv", "pcm_s16le", "s16",
                                                                                np.int16)]:
        with av.open(str(tmp_path / name), "w") as container:
            if name == "zero.mkv":  # a video stream that never gets a frame, next to some audio
                video = container.add_stream("ffv1", rate=15)
                video.width, video.height, video.pix_fmt = 32, 32, "gray"
            audio = container.add_stream(codec, rate=8000)
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype), format=fmt, layout="mono")
            frame.sample_rate = 8000
            for packet in [*audio.encode(frame), *audio.encode()]:
                container.mux(packet)
    _expect_error(tmp_path / "audio.mp4", "no video stream")
    _expect_error(tmp_path / "zero.mkv", "holds no video frames")


def test_unsupported_codec(tmp_path):
    path = write_video(tmp_path / "clip.avi", levels(3, (16, 16)), codec="mjpeg", pix_fmt="yuvj420p")
    path.write_bytes(path.read_bytes().replace(b"MJPG", b"ZZZZ"))  # a FourCC no decoder knows
    _expect_error(path, "codec cannot be decoded")


def test_dicom_without_pixels_or_with_undecodable_compression(tmp_path):
    import pydicom
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEGLSLossless

    path = write_dicom_cine(tmp_path / "cine.dcm", np.stack(levels(3, (8, 8))))
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(tmp_path / "report.dcm")
    _expect_error(tmp_path / "report.dcm", "no PixelData")
    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS plugin is installed here")
    jpeg_ls = write_dicom_cine(tmp_path / "jls.dcm", np.stack(levels(3, (8, 8))), transfer_syntax=JPEGLSLossless)
    _expect_error(jpeg_ls, "compressed as JPEG-LS Lossless.*cannot be decoded here")


def test_mp4_cut_before_its_index_is_named_truncated(tmp_path):
    path = write_video(tmp_path / "clip.mp4", random_frames(30, (48, 64)))  # index ('moov') written at the end
    _expect_error(cut(path, tmp_path / "cut.mp4"), "without its index.*truncated")


@pytest.mark.parametrize("name, codec, pix_fmt", [("clip.avi", "mjpeg", "yuvj420p"), ("clip.mkv", "ffv1", "gray"),
                                                  ("clip.dcm", None, None)])
def test_truncated_file_raises_after_good_frames_or_yields_them_when_allowed(tmp_path, name, codec, pix_fmt):
    frames = random_frames(40, (48, 64))
    whole = tmp_path / name
    if codec is None:
        write_dicom_cine(whole, np.stack(frames))
    else:
        write_video(whole, frames, codec=codec, pix_fmt=pix_fmt)
    half = cut(whole, tmp_path / f"half_{name}")
    with pytest.raises(TruncatedVideoError, match=f"half_{name}.*truncated or damaged") as caught:
        list(iter_frames(half))
    assert 10 <= caught.value.frames_read < 40
    with pytest.warns(TruncatedVideoWarning, match="truncated"):
        kept = list(iter_frames(half, allow_truncated=True))
    assert len(kept) == caught.value.frames_read
    if codec != "mjpeg":  # lossless: what is kept is exactly the start of the clip
        assert all(np.array_equal(f.pixels, p) for f, p in zip(kept, frames))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(iter_frames(half, max_frames=5))) == 5  # a window before the damage reads cleanly


def test_truncated_mp4_with_its_index_first(tmp_path):
    import av

    path = tmp_path / "faststart.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:  # index written first
        stream = container.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for pixels in random_frames(40, (48, 64, 3)):
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    half = cut(path, tmp_path / "half.mp4")
    assert open_video(half).frames == 40  # the header is intact; the damage shows only when decoding
    with pytest.raises(TruncatedVideoError, match="half.mp4"):
        read_clip(half, max_frames=40)
    with pytest.warns(TruncatedVideoWarning):
        pixels, times = read_clip(half, max_frames=40, allow_truncated=True)
    assert 5 <= len(pixels) < 40 and len(times) == len(pixels)


def test_damaged_bytes_never_escape_as_other_exceptions(tmp_path):
    sources = [write_video(tmp_path / "a.mp4", random_frames(20, (32, 48))),
               write_video(tmp_path / "b.avi", random_frames(20, (32, 48)), codec="mjpeg", pix_fmt="yuvj420p"),
               write_dicom_cine(tmp_path / "c.dcm", np.stack(random_frames(20, (32, 48))))]
    rng = np.random.default_rng(7)
    for i in range(30):
        data = bytearray(sources[i % 3].read_bytes())
        start = int(rng.integers(0, len(data) - 64))
        length = int(rng.integers(8, 64))
        data[start:start + length] = rng.bytes(length)  # overwrite a few bytes, then maybe cut the end off
        damaged = tmp_path / f"damaged{i}{sources[i % 3].suffix}"
        damaged.write_bytes(bytes(data[: int(rng.integers(len(data) // 3, len(data) + 1))]))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                open_video(damaged)
                list(iter_frames(damaged, allow_truncated=bool(i % 2)))
        except VideoReadError as exc:
            assert str(damaged) in str(exc)
