"""Node regions: one per node with an image, shapes and dtypes, physical sizes from the box and the pixel
spacing, where the box comes from (mask, else us_box_*, else the whole image), crops centred on the node and
undistorted, single-view nodes, clear errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lymphcast.cohort import LymphCastError, read_cohort
from lymphcast.io.images import read_image
from lymphcast.modalities.us_regions import (BOX_COLUMNS, EXTRA, VIEWS, image_nodes, mask_box, node_regions,
                                             square_window)

SIZE, MARGIN = 32, 0.25


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from lymphcast.synth import generate_cohort

    out = generate_cohort(tmp_path_factory.mktemp("regions") / "c", patients=12, centres=2, seed=3,
                          modalities=["clinical", "us_image"], progress=False)
    return read_cohort(out)


@pytest.fixture(scope="module")
def regions(cohort):
    return node_regions(cohort, size=SIZE, margin=MARGIN, progress=False)


def _refs(value) -> list[str]:
    return str(value).split(";")


def _mask_box(cohort, ref):
    rows, cols = np.nonzero(read_image(cohort.media_path(ref)).pixels)
    return cols.min(), rows.min(), cols.max() + 1, rows.max() + 1


def _log_mm(box, spacing):
    return np.log((box[2] - box[0]) * spacing), np.log((box[3] - box[1]) * spacing)


# --- the synthetic cohort: every node has two views, a mask and a Doppler image -----------------------------

def test_one_region_per_node_with_an_image(cohort, regions):
    nodes = image_nodes(cohort)
    assert len(nodes) == len(cohort.nodes) > 20  # every synthetic node has images
    assert len(regions) == len(nodes) and list(regions.node_ids) == list(nodes["node_id"])
    n = len(nodes)
    assert regions.pixels.shape == (n, VIEWS, 2, SIZE, SIZE) and regions.pixels.dtype == np.uint8
    assert regions.extra.shape == (n, VIEWS, EXTRA) and regions.extra.dtype == np.float32
    assert regions.present.shape == (n, VIEWS) and regions.present.dtype == bool and regions.present.all()
    assert regions.boxes.shape == (n, VIEWS, 4)
    assert (regions.pixels[:, :, 0].reshape(n * VIEWS, -1).std(axis=1) > 5).all()  # real B-mode in every view
    assert regions.pixels[:, :, 1].any()  # some flow somewhere
    assert (regions.extra[:, :, 3] == 1).all()  # Doppler given for every view


def test_extra_holds_log_box_size_in_mm_and_the_window_is_the_box_with_its_margin(cohort, regions):
    nodes = image_nodes(cohort).set_index("node_id")
    for i, node_id in enumerate(regions.node_ids):
        row = nodes.loc[node_id]
        spacing = float(row["us_pixel_spacing_mm"])
        masks = _refs(row["us_mask_file"])
        first = tuple(float(row[c]) for c in BOX_COLUMNS)
        assert _mask_box(cohort, masks[0]) == first  # synthetic masks agree with us_box_*
        for v in range(VIEWS):
            box = _mask_box(cohort, masks[v])
            np.testing.assert_allclose(regions.extra[i, v, :2], _log_mm(box, spacing), rtol=1e-5)
            assert regions.extra[i, v, 2] == 1.0
            np.testing.assert_allclose(regions.boxes[i, v], square_window(box, MARGIN))
        # exp(log mm) is a plausible node size: a few mm to a few cm
        assert np.all((np.exp(regions.extra[i, :, :2]) > 1) & (np.exp(regions.extra[i, :, :2]) < 60))


def test_spacing_from_the_dicom_file_when_the_column_is_missing(cohort, regions):
    nodes = cohort.nodes.drop(columns=["us_pixel_spacing_mm"])
    dicom = nodes["us_image_file"].str.endswith(".dcm").to_numpy()
    assert dicom.any() and (~dicom).any()
    got = node_regions(replace(cohort, nodes=nodes), size=SIZE, margin=MARGIN, progress=False)
    np.testing.assert_allclose(got.extra[dicom], regions.extra[dicom], rtol=1e-3)  # same spacing, from the file
    assert (got.extra[~dicom][..., :3] == 0).all()  # PNG: size unknown, and flagged as unknown
    assert (got.extra[..., 3] == 1).all()
    assert (regions.extra[..., 4:] == 0).all()  # with a spacing, size in mm only
    share = got.extra[~dicom][..., 4:]  # without: the box's share of the image, the nearest size cue left
    assert (share < 0).all() and (share > np.log(0.02)).all()
    np.testing.assert_array_equal(got.pixels, regions.pixels)  # the crops do not depend on the spacing


def test_box_from_the_mask_first_then_us_box_then_the_whole_image(cohort, regions):
    nodes = cohort.nodes.iloc[:4].copy()
    shifted = nodes[list(BOX_COLUMNS)].to_numpy(float) + np.array([-6.0, -4.0, 3.0, 5.0])
    nodes[list(BOX_COLUMNS)] = shifted
    spacing = nodes["us_pixel_spacing_mm"].to_numpy(float)

    with_masks = node_regions(replace(cohort, nodes=nodes), size=SIZE, margin=MARGIN, progress=False)
    np.testing.assert_array_equal(with_masks.extra, regions.extra[:4])  # the masks win over us_box_*
    np.testing.assert_array_equal(with_masks.pixels, regions.pixels[:4])

    no_masks = nodes.assign(us_mask_file=np.nan)
    got = node_regions(replace(cohort, nodes=no_masks), size=SIZE, margin=MARGIN, progress=False)
    for i in range(4):
        h, w = read_image(cohort.media_path(_refs(nodes["us_image_file"].iloc[i])[0])).pixels.shape
        np.testing.assert_allclose(got.extra[i, 0, :2], _log_mm(shifted[i], spacing[i]), rtol=1e-5)
        np.testing.assert_allclose(got.boxes[i, 0], square_window(shifted[i], MARGIN))
        # us_box_* describe the first view only: the second falls back to the whole image
        np.testing.assert_allclose(got.extra[i, 1, :2], _log_mm((0, 0, w, h), spacing[i]), rtol=1e-5)
        np.testing.assert_allclose(got.boxes[i, 1], square_window((0, 0, w, h), MARGIN))
    assert not np.array_equal(got.pixels[:, 0], regions.pixels[:4, 0])

    neither = no_masks.drop(columns=list(BOX_COLUMNS))
    whole = node_regions(replace(cohort, nodes=neither), size=SIZE, margin=MARGIN, progress=False)
    np.testing.assert_allclose(whole.extra[:, 0], got.extra[:, 1])  # view 1 now also the whole image
    for i in range(4):
        np.testing.assert_allclose(whole.boxes[i, 0], whole.boxes[i, 1])  # both views: the whole image
        np.testing.assert_allclose(whole.boxes[i, 0], got.boxes[i, 1])

    blank_first = nodes.copy()
    blank_first.loc[blank_first.index[0], "us_box_x0"] = np.nan  # one missing coordinate: no box at all
    partial = node_regions(replace(cohort, nodes=blank_first.assign(us_mask_file=np.nan)), size=SIZE,
                           margin=MARGIN, progress=False)
    np.testing.assert_allclose(partial.boxes[0, 0], got.boxes[0, 1])
    np.testing.assert_allclose(partial.boxes[1:], got.boxes[1:])


# --- hand-made images: where exactly the crop lands -------------------------------------------------------

def _one_node_cohort(cohort, root, images: dict[str, np.ndarray], **row):
    (root / "media").mkdir(parents=True, exist_ok=True)
    for name, pixels in images.items():
        Image.fromarray(pixels).save(root / "media" / name)
    base = {"node_id": "X-N01", "patient_id": "X", "side": "left", "level": "III", "us_image_file": "media/a.png",
            "us_doppler_file": np.nan, "us_mask_file": np.nan, "us_pixel_spacing_mm": 0.1,
            **dict.fromkeys(BOX_COLUMNS, np.nan)}
    return replace(cohort, nodes=pd.DataFrame([{**base, **row}]), root=root)


def _picture(box, shape=(90, 120), inside=200, outside=10):
    img = np.full(shape, outside, np.uint8)
    x0, y0, x1, y1 = box
    img[y0:y1, x0:x1] = inside
    return img


def test_the_crop_is_centred_on_the_node_with_its_margin(cohort, tmp_path):
    box = (40, 30, 60, 50)  # 20 x 20 px; window 30 px square around its centre (50, 40)
    c = _one_node_cohort(cohort, tmp_path, {"a.png": _picture(box)}, **dict(zip(BOX_COLUMNS, box)))
    r = node_regions(c, size=30, margin=0.25, progress=False)  # 30 px window → 30 px: no resampling
    assert r.present.tolist() == [[True, False]]
    np.testing.assert_allclose(r.boxes[0, 0], (35, 25, 65, 55))
    expected = _picture((5, 5, 25, 25), shape=(30, 30))
    np.testing.assert_array_equal(r.pixels[0, 0, 0], expected)
    assert (r.pixels[0, 0, 1] == 0).all() and r.extra[0, 0, 3] == 0  # no Doppler file
    np.testing.assert_allclose(r.extra[0, 0, :3], (np.log(2.0), np.log(2.0), 1.0), rtol=1e-6)
    assert (r.pixels[0, 1] == 0).all() and (r.extra[0, 1] == 0).all()  # the absent second view

    big = node_regions(c, size=64, margin=0.25, progress=False)  # resampled: still centred and symmetric
    bright = big.pixels[0, 0, 0] > 100
    rows, cols = np.nonzero(bright)
    assert rows.mean() == pytest.approx(31.5, abs=0.3) and cols.mean() == pytest.approx(31.5, abs=0.3)
    assert 40 <= bright.sum(axis=1).max() <= 46  # 20 of 30 px → about 43 of 64


def test_an_elongated_node_is_not_distorted_and_outside_the_image_is_black(cohort, tmp_path):
    box = (0, 40, 40, 50)  # 40 x 10 px at the left edge: the window reaches 10 px beyond the image
    c = _one_node_cohort(cohort, tmp_path, {"a.png": _picture(box)}, **dict(zip(BOX_COLUMNS, box)))
    r = node_regions(c, size=60, margin=0.25, progress=False)  # window 60 px: no resampling
    np.testing.assert_allclose(r.boxes[0, 0], (-10, 15, 50, 75))
    crop = r.pixels[0, 0, 0]
    bright = crop == 200
    assert bright.sum(axis=1).max() == 40 and bright.sum(axis=0).max() == 10  # aspect ratio kept
    rows, cols = np.nonzero(bright)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (25, 34, 10, 49)  # centred in the window
    assert (crop[:, :10] == 0).all() and (crop[:, 10:] > 0).all()  # outside the image: 0, inside: tissue
    np.testing.assert_allclose(r.extra[0, 0, :2], np.log([4.0, 1.0]), rtol=1e-6)


def test_mask_and_doppler_of_the_second_view(cohort, tmp_path):
    node = (70, 20, 100, 40)
    mask = np.zeros((90, 120), np.uint8)
    mask[20:40, 70:100] = 255
    images = {"a.png": _picture((10, 10, 30, 30)), "b.png": _picture(node), "b_mask.png": mask,
              "a_mask.png": np.zeros((90, 120), np.uint8),  # an empty mask: us_box_* apply to view 1
              "a_flow.png": np.zeros((90, 120), np.uint8), "b_flow.png": _picture(node, inside=250, outside=0)}
    c = _one_node_cohort(cohort, tmp_path, images, us_image_file="media/a.png;media/b.png",
                         us_mask_file="media/a_mask.png;media/b_mask.png",
                         us_doppler_file="media/a_flow.png;media/b_flow.png",
                         **dict(zip(BOX_COLUMNS, (10, 10, 30, 30))))
    r = node_regions(c, size=45, margin=0.25, progress=False)
    assert r.present.tolist() == [[True, True]]
    np.testing.assert_allclose(r.boxes[0, 0], square_window((10, 10, 30, 30), 0.25))
    np.testing.assert_allclose(r.boxes[0, 1], square_window(node, 0.25))  # second view: from its own mask
    np.testing.assert_allclose(r.extra[0, 1], (np.log(3.0), np.log(2.0), 1.0, 1.0, 0.0, 0.0), rtol=1e-6)
    # Doppler is cut and resampled with the same window as its B-mode: flow and node coincide pixel by pixel
    bmode, flow = r.pixels[0, 1, 0].astype(float), r.pixels[0, 1, 1].astype(float)
    assert np.abs((bmode - 10) / 190 - flow / 250).max() < 0.02 and flow.max() > 200
    assert (r.pixels[0, 0, 1] == 0).all() and r.extra[0, 0, 3] == 1  # a Doppler file with no flow in it


def test_doppler_of_another_size_and_missing_files_are_clear_errors(cohort, tmp_path):
    c = _one_node_cohort(cohort, tmp_path, {"a.png": _picture((40, 30, 60, 50)),
                                            "small.png": np.zeros((40, 40), np.uint8)},
                         us_doppler_file="media/small.png")
    with pytest.raises(LymphCastError, match="media/small.png"):
        node_regions(c, size=SIZE, progress=False)
    gone = replace(c, nodes=c.nodes.assign(us_image_file="media/nowhere.png", us_doppler_file=np.nan))
    with pytest.raises(LymphCastError, match="media/nowhere.png"):
        node_regions(gone, size=SIZE, progress=False)


def test_nodes_without_images_are_left_out(cohort, regions):
    nodes = cohort.nodes.copy()
    nodes.loc[nodes.index[[1, 3]], "us_image_file"] = [np.nan, "  "]
    kept = image_nodes(replace(cohort, nodes=nodes))
    assert list(kept["node_id"]) == [n for i, n in enumerate(cohort.nodes["node_id"]) if i not in (1, 3)]
    r = node_regions(replace(cohort, nodes=nodes), size=SIZE, margin=MARGIN, progress=False)
    keep = np.ones(len(nodes), bool)
    keep[[1, 3]] = False
    np.testing.assert_array_equal(r.pixels, regions.pixels[keep])
    none = replace(cohort, nodes=cohort.nodes.drop(columns=["us_image_file"]))
    assert len(image_nodes(none)) == 0
    empty = node_regions(none, size=SIZE, progress=False)
    assert len(empty) == 0 and empty.pixels.shape == (0, VIEWS, 2, SIZE, SIZE)


# --- the helpers ------------------------------------------------------------------------------------------

def test_mask_box_is_the_tight_half_open_bounding_box():
    m = np.zeros((20, 30), np.uint8)
    assert mask_box(m) is None
    m[4, 7] = m[9, 12] = 255
    assert mask_box(m) == (7, 4, 13, 10)


def test_square_window_keeps_the_centre_and_takes_the_long_side():
    assert square_window((10, 20, 50, 30), 0.25) == pytest.approx((0, -5, 60, 55))
    assert square_window((10, 20, 10, 20), 0.0) == pytest.approx((9.5, 19.5, 10.5, 20.5))  # at least 1 px
