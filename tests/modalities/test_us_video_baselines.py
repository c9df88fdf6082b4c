"""The image model scoring cine-clip frames one at a time: the comparison the clip model is measured against."""

from __future__ import annotations

import numpy as np
import pytest

from lymphcast.cohort import read_cohort
from lymphcast.io.video import read_clip
from lymphcast.modalities.us_image import UsImageModel
from lymphcast.modalities.us_regions import square_window
from lymphcast.modalities.us_video_baselines import SUMMARIES, frame_regions, frame_scores, image_model_on_frames
from lymphcast.modalities.us_video_clips import video_nodes


@pytest.fixture(scope="module")
def image_model(synth_image_cohort_dir):
    cohort = read_cohort(synth_image_cohort_dir)
    return UsImageModel(seed=1, epochs=1, size=32, channels=(4, 8), detector="off", progress=False).fit(cohort)


@pytest.fixture(scope="module")
def clips_cohort(synth_video_cohort_dir):
    return read_cohort(synth_video_cohort_dir).in_centres(["D"])


def test_regions_are_the_sampled_frames_and_the_key_frame(clips_cohort):
    regions, table = frame_regions(clips_cohort, frames=4, size=32, margin=0.25)
    nodes = video_nodes(clips_cohort).set_index("node_id")
    assert set(table["node_id"]) == set(nodes.index)
    assert (table.groupby("node_id")["is_key"].sum() == 1).all()
    key = table[table["is_key"]].set_index("node_id")["frame"]
    assert (key == nodes.loc[key.index, "us_video_key_frame"]).all()
    assert regions.present[:, 0].all() and not regions.present[:, 1].any()
    assert (regions.extra[:, 0, 3] == 0).all()  # no Doppler in a clip
    # the key region is the key frame cut at the key-frame box with the image model's margin
    first = table.index[table["is_key"]][0]
    row = nodes.loc[table.loc[first, "node_id"]]
    clip, _ = read_clip(clips_cohort.media_path(row["us_video_file"]), max_frames=500)
    box = tuple(row[f"us_video_box_{c}"] for c in ("x0", "y0", "x1", "y1"))
    np.testing.assert_allclose(regions.boxes[first, 0], square_window(box, 0.25))
    assert regions.pixels[first, 0, 0].std() > 0 and clip.shape[0] == row["us_video_frames"]


def test_scores_per_node_and_patient(image_model, clips_cohort):
    scores = frame_scores(image_model, clips_cohort, frames=4)
    assert list(scores.columns) == list(SUMMARIES) and scores.notna().all().all()
    assert (scores["max"] >= scores["mean"] - 1e-12).all() and scores.stack().between(0, 1).all()
    patients = image_model_on_frames(image_model, clips_cohort, frames=4)
    assert set(patients) == set(SUMMARIES)
    for p in patients.values():
        assert list(p.index) == list(clips_cohort.patients["patient_id"]) and p.between(0, 1).all()
