"""The us_video renderer: clips that decode, frame rates and lengths, sweep geometry, speckle, signs, determinism."""

from __future__ import annotations

import av
import numpy as np
import pandas as pd
import pydicom
import pytest

from lymphcast.cohort import check_cohort, read_cohort
from lymphcast.synth import available_renderers, generate_cohort
from lymphcast.synth.us_cine import TRUTH_FILE, VENDOR_FPS, centre_fps
from lymphcast.synth.us_cine_clip import MAX_SHAKE_MM, draw_sweep, frame_count, render_clip
from lymphcast.synth.us_cine_io import write_cine_dicom, write_mp4
from lymphcast.synth.us_cine_node import draw_solid, node_shape
from lymphcast.synth.us_tissue import SIZE

from tests.synth.us_profiles import PLAIN, US


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = generate_cohort(tmp_path_factory.mktemp("cine") / "c", patients=6, centres=2, seed=4,
                          modalities=["clinical", "us_image", "us_video"], progress=False)
    c = read_cohort(out)
    return out, c.nodes.merge(c.patients[["patient_id", "centre"]], on="patient_id"), c


def _decode(path) -> tuple[np.ndarray, float]:
    if path.suffix == ".dcm":
        ds = pydicom.dcmread(path)
        return ds.pixel_array, 1000.0 / float(ds.FrameTime)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        return np.stack([f.to_ndarray(format="gray") for f in container.decode(stream)]), float(stream.average_rate)


def test_us_video_is_a_renderable_modality():
    assert "us_video" in available_renderers()


def test_cohort_clips_exist_decode_and_match_their_columns(cohort):
    root, nodes, c = cohort
    assert check_cohort(root).problems == [] and len(nodes) >= 10
    assert nodes["us_video_file"].str.startswith("media/us_video/").all()
    dicom = nodes["us_video_file"].str.endswith(".dcm")
    assert set(nodes.loc[dicom, "centre"]) == {"B"} and (nodes.loc[~dicom, "centre"] == "A").all()
    assert dicom.any() and (~dicom).any() and nodes.loc[~dicom, "us_video_file"].str.endswith(".mp4").all()
    for centre in c.meta.centres:
        rows = nodes[nodes["centre"] == centre.id]
        assert (rows["us_video_fps"] == centre_fps(centre.acquisition["us"])).all()
    assert nodes["us_video_fps"].between(15, 30).all()
    assert (nodes["us_video_frames"] / nodes["us_video_fps"]).between(2.0, 5.0).all()
    for _, row in nodes.iterrows():
        frames, fps = _decode(root / row["us_video_file"])
        assert frames.shape == (row["us_video_frames"], SIZE, SIZE) and frames.dtype == np.uint8
        assert fps == pytest.approx(row["us_video_fps"], rel=1e-3)
        key = frames[int(row["us_video_key_frame"])]
        x0, y0, x1, y1 = (int(row[f"us_video_box_{k}"]) for k in ("x0", "y0", "x1", "y1"))
        assert 0 <= x0 < x1 <= SIZE and 0 <= y0 < y1 <= SIZE and key.std() > 10


def test_clips_agree_with_the_node_stills(cohort):
    _, nodes, _ = cohort
    assert np.allclose(nodes["us_video_pixel_spacing_mm"], nodes["us_pixel_spacing_mm"])
    # the key frame is the transverse section through the node's middle: as wide as the transverse still
    ratio = (nodes["us_video_box_x1"] - nodes["us_video_box_x0"]) / (nodes["us_box_x1"] - nodes["us_box_x0"])
    assert ratio.between(0.75, 1.33).all()


def test_mp4_keeps_frames_within_compression_error(tmp_path):
    clip = render_clip(PLAIN, US, 20, np.random.default_rng(0))
    write_mp4(tmp_path / "c.mp4", clip.frames, clip.fps)
    frames, fps = _decode(tmp_path / "c.mp4")
    assert fps == 20 and frames.shape == clip.frames.shape
    assert np.abs(frames.astype(int) - clip.frames).mean() < 8
    with av.open(str(tmp_path / "c.mp4")) as container:
        stream = container.streams.video[0]
        assert float(stream.duration * stream.time_base) == pytest.approx(len(clip.frames) / 20, abs=0.06)


def test_dicom_clips_carry_frame_time_and_spacing(cohort):
    root, nodes, _ = cohort
    row = nodes[nodes["us_video_file"].str.endswith(".dcm")].iloc[0]
    ds = pydicom.dcmread(root / row["us_video_file"])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.3.1" and ds.Modality == "US"
    assert int(ds.NumberOfFrames) == row["us_video_frames"] and int(ds.CineRate) == row["us_video_fps"]
    assert float(ds.FrameTime) == pytest.approx(1000.0 / row["us_video_fps"], rel=1e-4)
    assert ds.FrameIncrementPointer == 0x00181063
    assert float(ds.PixelSpacing[0]) == pytest.approx(row["us_video_pixel_spacing_mm"], rel=1e-3)
    region = ds.SequenceOfUltrasoundRegions[0]
    assert region.PhysicalDeltaX == pytest.approx(row["us_video_pixel_spacing_mm"] / 10, rel=1e-3)
    assert ds.PatientID == row["patient_id"] and str(ds.PatientName) == f"SYNTHETIC^{row['patient_id']}"


def test_frame_truth_is_in_truth_only(cohort):
    root, nodes, _ = cohort
    truth = pd.read_csv(root / "truth" / TRUTH_FILE)
    assert not {"hilum", "foci", "cystic", "plane_mm", "section_mm2"} & set(nodes.columns)
    counts = truth.groupby("node_id").size()
    assert counts.reindex(nodes["node_id"]).tolist() == nodes["us_video_frames"].tolist()
    for node_id, rows in truth.groupby("node_id"):
        assert rows["frame"].tolist() == list(range(len(rows)))
        key = int(nodes.loc[nodes["node_id"] == node_id, "us_video_key_frame"].iloc[0])
        assert rows["section_mm2"].iloc[key] == rows["section_mm2"].max() > 0


def test_fps_and_length_ranges():
    assert set(VENDOR_FPS.values()) <= set(range(15, 31)) and centre_fps({**US, "fps": 17}) == 17
    for fps in (15, 24, 30):
        for duration in (0.5, 2.0, 3.3, 5.0, 9.0):
            assert 2.0 <= frame_count(duration, fps) / fps <= 5.0
    lengths = {len(render_clip(PLAIN, US, 15, np.random.default_rng(s)).frames) for s in range(3)}
    assert all(30 <= n <= 75 for n in lengths)


def test_a_longer_node_stays_longer_in_view():
    """The hand sweeps at a steady speed, so a node twice as long fills more frames of a clip of the same rate."""
    def seconds_in_view(ratio):
        clips = [render_clip({**PLAIN, "short_axis_mm": 5.0, "long_short_ratio": ratio}, US, 20, np.random.default_rng(s)) for s in range(4)]
        return np.mean([(c.section_mm2 > 0).sum() / c.fps for c in clips])

    assert seconds_in_view(3.0) > 1.5 * seconds_in_view(1.3)


def test_section_follows_the_ellipsoid_and_peaks_mid_sweep():
    for seed in range(3):
        clip = render_clip(PLAIN, US, 25, np.random.default_rng(seed))
        n, area = len(clip.frames), clip.section_mm2
        assert area[0] == 0 and area[-1] == 0 and 0.35 * n < np.argmax(area) < 0.65 * n
        assert np.all(np.diff(area[: np.argmax(area) // 2]) >= 0) or area[: n // 6].max() < 0.3 * area.max()
        # independent check: the plane at z cuts pi a b (1 - (z/c)^2) of an ellipsoid with the node's semi-axes
        rng = np.random.default_rng(seed)
        shape, ratio = node_shape(PLAIN, SIZE * clip.spacing_mm, rng)
        c = shape.b * ratio
        expected = np.pi * shape.a * shape.b * np.clip(1 - (clip.plane_mm / c) ** 2, 0, None)
        big = expected > 0.3 * expected.max()
        assert np.median(area[big] / expected[big]) == pytest.approx(1.0, abs=0.08)
        # the hypoechoic node darkens its box in the key frame compared with the first frame (no node there)
        x0, y0, x1, y1 = clip.box
        inner = (slice(y0 + (y1 - y0) // 4, y1 - (y1 - y0) // 4), slice(x0 + (x1 - x0) // 4, x1 - (x1 - x0) // 4))
        assert clip.frames[clip.key_frame][inner].mean() < clip.frames[0][inner].mean() - 15


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])


def test_speckle_decorrelates_partially_between_frames():
    clip = render_clip(PLAIN, US, 25, np.random.default_rng(5))
    frames = clip.frames[:, 100:124, 8:120]  # deep tissue below the node: only speckle and texture change
    assert clip.box[3] < 100
    lag = {k: np.mean([_corr(frames[t], frames[t + k]) for t in range(len(frames) - k)]) for k in (0, 1, 4, 40)}
    assert lag[0] == pytest.approx(1.0)
    assert 0.3 < lag[1] < 0.95 and lag[1] > lag[4] > lag[40]
    assert lag[1] > lag[40] + 0.2 and lag[40] < 0.3  # far apart, frames share only the tissue texture


def test_hilum_shows_in_some_frames_only_and_brightens_the_node():
    clip = render_clip({**PLAIN, "hilum_present": 1}, US, 25, np.random.default_rng(1))
    in_node = clip.section_mm2 > 0.5 * clip.section_mm2.max()
    assert clip.hilum.any() and not clip.hilum[clip.section_mm2 > 0].all()
    assert not clip.hilum[clip.section_mm2 == 0].any()
    x0, y0, x1, y1 = clip.box
    box = np.s_[:, y0:y1, x0:x1]
    bright = clip.frames[box].reshape(len(clip.frames), -1).mean(axis=1)
    assert bright[in_node & clip.hilum].mean() > bright[in_node & ~clip.hilum].mean() + 5
    lost = render_clip(PLAIN, US, 25, np.random.default_rng(1))
    assert not lost.hilum.any() and not lost.foci.any() and not lost.cystic.any()


def test_foci_and_cysts_appear_only_where_the_plane_cuts_them():
    seen_foci, seen_cyst = [], []
    for seed in range(4):
        clip = render_clip({**PLAIN, "calcification": 1, "cystic_change": 1}, US, 25, np.random.default_rng(seed))
        node = clip.section_mm2 > 0
        seen_foci.append(clip.foci[node] > 0)
        seen_cyst.append(clip.cystic[node])
        x0, y0, x1, y1 = clip.box
        peak = clip.frames[:, y0:y1, x0:x1].reshape(len(clip.frames), -1).max(axis=1)
        with_focus, without = peak[clip.foci > 0], peak[node & (clip.foci == 0)]
        assert np.median(with_focus) >= 215 and np.median(with_focus) > np.median(without) + 40
    foci, cyst = np.concatenate(seen_foci), np.concatenate(seen_cyst)
    assert 0.05 < foci.mean() < 0.95 and 0.05 < cyst.mean() < 0.95


def test_probe_shake_stays_below_a_millimetre():
    rng = np.random.default_rng(0)
    shape, ratio = node_shape(PLAIN, SIZE * 0.1, rng)
    solid = draw_solid(PLAIN, shape, ratio, rng)
    sweep = draw_sweep(solid, 100, 25, 0.1, rng)
    assert np.abs(sweep.shift * 0.1).max() <= MAX_SHAKE_MM and len(np.unique(sweep.shift)) > 2
    assert np.all(np.diff(sweep.z) * np.sign(sweep.z[-1] - sweep.z[0]) > -0.3)  # moves one way, jitter aside


def test_same_seed_same_clip_and_files(tmp_path):
    a, b = (render_clip({**PLAIN, "calcification": 1}, US, 20, np.random.default_rng(7)) for _ in range(2))
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.foci, b.foci)
    assert not np.array_equal(a.frames, render_clip(PLAIN, US, 20, np.random.default_rng(8)).frames[:len(a.frames)])
    for name in ("x", "y"):
        write_mp4(tmp_path / f"{name}.mp4", a.frames, 20)
        write_cine_dicom(tmp_path / f"{name}.dcm", a.frames, 20, patient_id="P1", spacing_mm=a.spacing_mm,
                         token="1", study="P1", series="s", description="d", vendor="Aurelia", frequency_mhz=12.0)
    assert (tmp_path / "x.mp4").read_bytes() == (tmp_path / "y.mp4").read_bytes()
    assert (tmp_path / "x.dcm").read_bytes() == (tmp_path / "y.dcm").read_bytes()
    assert np.array_equal(pydicom.dcmread(tmp_path / "x.dcm").pixel_array, a.frames)


def test_same_seed_same_cohort_clips(tmp_path):
    kw = {"patients": 2, "centres": 1, "seed": 9, "modalities": ["us_video"], "progress": False}
    a, b = generate_cohort(tmp_path / "a", **kw), generate_cohort(tmp_path / "b", **kw)
    files = sorted(p.name for p in (a / "media" / "us_video").iterdir())
    assert files and files == sorted(p.name for p in (b / "media" / "us_video").iterdir())
    for name in files + ["../../nodes.csv", f"../../truth/{TRUTH_FILE}"]:
        assert (a / "media" / "us_video" / name).read_bytes() == (b / "media" / "us_video" / name).read_bytes()
