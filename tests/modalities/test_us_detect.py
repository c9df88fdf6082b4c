"""Node detector on full-field ultrasound frames: box matching against hand-made boxes and a brute-force IoU,
targets and augmentation, clear errors, and a small end-to-end fit / detect / pickle round trip."""

from __future__ import annotations

from dataclasses import replace

import joblib
import numpy as np
import pandas as pd
import pytest

from lymphcast.cohort import LymphCastError, read_cohort
from lymphcast.modalities.us_detect import NodeDetector
from lymphcast.modalities.us_detect_data import (BOX_COLUMNS, apply_augment, draw_augment, ellipse_target,
                                                  frame_table)
from lymphcast.modalities.us_detect_metrics import (DETECTION_COLUMNS, box_iou, detection_metrics, match_boxes,
                                                     scores_from_counts)

# --- IoU and matching: exact values on hand-made boxes ---------------------------------------------------

TRUTH = [(0, 0, 100, 10)]  # area 1000


def test_identical_boxes_have_iou_one_and_disjoint_zero():
    iou = box_iou([(0, 0, 10, 10), (20, 20, 30, 30)], [(0, 0, 10, 10)])
    assert iou.tolist() == [[1.0], [0.0]]


def test_half_overlap_exact_value():
    assert box_iou([(0, 0, 10, 10)], [(5, 0, 15, 10)])[0, 0] == pytest.approx(50 / 150)


def test_perfect_match():
    assert match_boxes([(0, 0, 100, 10, 0.9)], TRUTH).tolist() == [0]


def test_iou_exactly_half_matches_and_just_below_misses():
    assert match_boxes([(0, 0, 50, 10, 0.9)], TRUTH).tolist() == [0]     # 500 / 1000
    assert match_boxes([(0, 0, 49, 10, 0.9)], TRUTH).tolist() == [-1]    # 490 / 1000
    assert match_boxes([(0, 0, 200, 10, 0.9)], TRUTH).tolist() == [0]    # 1000 / 2000
    assert match_boxes([(0, 0, 201, 10, 0.9)], TRUTH).tolist() == [-1]   # 1000 / 2010


def test_duplicate_prediction_is_a_false_positive_and_the_higher_score_wins():
    pred = [(0, 0, 100, 10, 0.4), (0, 0, 98, 10, 0.8)]
    assert match_boxes(pred, TRUTH).tolist() == [-1, 0]


def test_greedy_by_score_not_by_overlap():
    # the confident, looser box takes the node; the tighter but less confident one is then a duplicate
    pred = [(0, 0, 95, 10, 0.3), (0, 0, 60, 10, 0.9)]
    assert match_boxes(pred, TRUTH).tolist() == [-1, 0]


def test_prediction_takes_the_free_truth_it_overlaps_most():
    truth = [(0, 0, 10, 10), (10, 0, 20, 10)]
    pred = [(0, 0, 10, 10, 0.9), (1, 0, 11, 10, 0.8), (9, 0, 19, 10, 0.7)]
    assert match_boxes(pred, truth).tolist() == [0, -1, 1]


@pytest.mark.parametrize("pred, truth, expected", [([], TRUTH, []), ([(0, 0, 5, 5, 0.5)], [], [-1]), ([], [], [])])
def test_empty_cases(pred, truth, expected):
    assert match_boxes(pred, truth).tolist() == expected


def test_iou_agrees_with_brute_force_pixel_sets():
    rng = np.random.default_rng(0)
    corners = rng.integers(0, 20, (60, 2, 2))
    boxes = np.concatenate([corners.min(1), corners.max(1) + 1], axis=1)  # x0, y0, x1, y1, never empty

    def pixels(b):
        return {(x, y) for x in range(b[0], b[2]) for y in range(b[1], b[3])}

    got = box_iou(boxes[:30], boxes[30:])
    for i in range(30):
        for j in range(30):
            a, b = pixels(boxes[i]), pixels(boxes[30 + j])
            assert got[i, j] == pytest.approx(len(a & b) / len(a | b))


def test_scores_from_counts_f1_is_harmonic_mean_and_empty_is_nan():
    s = scores_from_counts(tp=6, n_pred=8, n_true=10)
    assert s["recall"] == 0.6 and s["precision"] == 0.75
    assert s["f1"] == pytest.approx(2 * 0.6 * 0.75 / (0.6 + 0.75))
    assert np.isnan(scores_from_counts(0, 0, 5)["precision"]) and scores_from_counts(0, 0, 5)["recall"] == 0


# --- targets and augmentation ---------------------------------------------------------------------------

def test_ellipse_target_fills_exactly_its_box():
    target, _ = ellipse_target(np.array([[4, 6, 20, 14]]), (32, 32), 32)
    rows, cols = np.nonzero(target)
    assert (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1) == (4, 6, 20, 14)
    assert target[6, 4] == 0  # a corner of the box is background


def test_small_nodes_weigh_more_than_large_ones():
    _, weight = ellipse_target(np.array([[2, 2, 6, 6], [10, 10, 60, 60]]), (64, 64), 64)
    assert weight[4, 4] > 1.0 and weight[35, 35] == 1.0 and weight.min() == 1.0


def test_augmentation_never_flips_depth():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 8, 8), dtype=np.uint8)
    params = {**draw_augment(rng, 6), "gain": np.zeros(6), "contrast": np.ones(6), "gamma": np.ones(6),
              "flip": np.array([True] * 3 + [False] * 3)}
    x, y = apply_augment(images, (images,), params)
    np.testing.assert_allclose(x[:3], images[:3, :, ::-1] / 255.0, atol=1e-6)  # left-right, rows in place
    np.testing.assert_allclose(x[3:], images[3:] / 255.0, atol=1e-6)
    np.testing.assert_array_equal(y[:3], images[:3, :, ::-1])
    assert not any("vertical" in k or "up" in k for k in params)


# --- a tiny synthetic cohort ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from lymphcast.synth import generate_cohort

    out = generate_cohort(tmp_path_factory.mktemp("detect") / "c", patients=40, centres=2, seed=3,
                          modalities=["us_image"], progress=False)
    return read_cohort(out)


@pytest.fixture(scope="module")
def fitted(cohort):
    return NodeDetector(seed=1, epochs=2, size=64, channels=(4, 8, 16), progress=False).fit(cohort)


def _truth_as_detections(cohort):
    n = cohort.nodes
    cols = dict(zip(BOX_COLUMNS, ("x0", "y0", "x1", "y1")))
    return n.rename(columns=cols).assign(score=1.0)[list(DETECTION_COLUMNS)]


def test_metrics_of_the_truth_itself_are_perfect_and_drop_or_add_as_expected(cohort):
    truth = _truth_as_detections(cohort)
    assert detection_metrics(cohort, truth) == {"recall": 1.0, "precision": 1.0, "f1": 1.0, "n_true": len(truth),
                                                "n_pred": len(truth), "tp": len(truth)}
    stray = pd.DataFrame([{**truth.iloc[0].to_dict(), "us_frame_file": "media/us_frames/elsewhere.png"}])
    m = detection_metrics(cohort, pd.concat([truth.iloc[1:], stray]))
    assert (m["tp"], m["n_pred"], m["n_true"]) == (len(truth) - 1, len(truth), len(truth))


def test_fit_detect_shapes_and_boxes_inside_the_frame(cohort, fitted):
    assert fitted.best_epoch_ in (1, 2) and sum(fitted.n_frames_.values()) == cohort.nodes["us_frame_file"].nunique()
    ref = cohort.nodes["us_frame_file"].iloc[0]
    from lymphcast.io.images import read_image

    pixels = read_image(cohort.media_path(ref)).pixels
    prob = fitted.probability_maps([pixels])[0]
    assert prob.shape == pixels.shape and prob.dtype == np.float32 and 0 <= prob.min() <= prob.max() <= 1
    det = NodeDetector(**{**fitted.get_params(), "threshold": float(np.quantile(prob, 0.8)), "min_area_px": 1})
    det.state_dict_ = fitted.state_dict_  # same weights, a threshold that surely finds something
    boxes = det.detect(pixels, 0.15)
    assert boxes and all(isinstance(v, int) for b in boxes for v in b[:4])
    for x0, y0, x1, y1, score in boxes:
        assert 0 <= x0 < x1 <= pixels.shape[1] and 0 <= y0 < y1 <= pixels.shape[0] and 0 <= score <= 1
    assert [b[4] for b in boxes] == sorted((b[4] for b in boxes), reverse=True)
    found = det.detect_frames(cohort)
    assert list(found.columns) == list(DETECTION_COLUMNS) and len(found)
    assert set(found["us_frame_file"]) <= set(cohort.nodes["us_frame_file"])
    m = detection_metrics(cohort, found)
    assert m["n_pred"] == len(found) and 0 <= m["tp"] <= min(m["n_pred"], m["n_true"])


def test_pickle_round_trip_detects_the_same(cohort, fitted, tmp_path):
    joblib.dump(fitted, tmp_path / "det.joblib")
    back = joblib.load(tmp_path / "det.joblib")
    assert "_net" not in back.__dict__
    pixels = np.random.default_rng(0).integers(0, 256, (80, 100), dtype=np.uint8)  # any size, not square
    np.testing.assert_allclose(back.probability_maps([pixels])[0], fitted.probability_maps([pixels])[0], atol=1e-6)


def test_same_seed_same_weights(cohort, fitted):
    again = NodeDetector(**fitted.get_params()).fit(cohort)
    for k, v in fitted.state_dict_.items():
        np.testing.assert_array_equal(v.numpy(), again.state_dict_[k].numpy())


def test_not_fitted_is_a_clear_error():
    with pytest.raises(LymphCastError, match="not fitted"):
        NodeDetector().detect(np.zeros((32, 32), np.uint8))


def test_cohort_without_frames_or_boxes_names_the_column(cohort):
    with pytest.raises(LymphCastError, match="us_frame_file"):
        NodeDetector().fit(replace(cohort, nodes=cohort.nodes.drop(columns=["us_frame_file"])))
    with pytest.raises(LymphCastError, match="us_frame_box_y1"):
        NodeDetector().fit(replace(cohort, nodes=cohort.nodes.drop(columns=["us_frame_box_y1"])))


def test_a_frame_with_an_unboxed_node_does_not_train_but_is_searched(cohort):
    nodes = cohort.nodes.astype({"us_frame_box_x0": "Float64"})
    nodes.loc[0, "us_frame_box_x0"] = pd.NA
    partial = replace(cohort, nodes=nodes)
    ref = nodes.loc[0, "us_frame_file"]
    assert ref not in set(frame_table(partial, need_boxes=True)["us_frame_file"])
    searched = frame_table(partial, need_boxes=False).set_index("us_frame_file")
    assert len(searched.loc[ref, "boxes"]) == (nodes["us_frame_file"] == ref).sum() - 1


def test_unreadable_frame_names_the_file(cohort, fitted, tmp_path):
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "bad.png").write_bytes(b"not an image")
    nodes = cohort.nodes.iloc[:1].assign(us_frame_file="media/bad.png")
    with pytest.raises(LymphCastError, match="media/bad.png"):
        fitted.detect_frames(replace(cohort, nodes=nodes, root=tmp_path))
    missing = cohort.nodes.iloc[:1].assign(us_frame_file="media/nowhere.png")
    with pytest.raises(LymphCastError, match="media/nowhere.png"):
        NodeDetector().fit(replace(cohort, nodes=missing))
