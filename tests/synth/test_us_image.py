"""The us_image renderer: cohort files and columns, DICOM for one centre, determinism, and planted signs."""

from __future__ import annotations

import filecmp

import numpy as np
import pandas as pd
import pydicom
import pytest
from PIL import Image
from scipy import ndimage

from lymphcast.cohort import read_cohort
from lymphcast.synth import generate_cohort
from lymphcast.synth.us_renderer import SIZE, box, render_node
from lymphcast.synth.us_speckle import RAYLEIGH_SNR, speckle_envelope

from tests.synth.us_profiles import PLAIN, US


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = generate_cohort(tmp_path_factory.mktemp("us") / "c", patients=30, centres=4, seed=1,
                          modalities=["clinical", "us_image"], progress=False)
    return out, read_cohort(out)


def _load(path):
    if path.suffix == ".dcm":
        return pydicom.dcmread(path).pixel_array
    return np.asarray(Image.open(path))


def test_cohort_has_every_file_and_column(cohort):
    root, c = cohort
    nodes = c.nodes
    assert len(nodes) > 20
    for col in ("us_image_file", "us_doppler_file", "us_mask_file"):
        refs = nodes[col].str.split(";")
        assert (refs.str.len() == 2).all(), col
        assert all((root / r).is_file() for rs in refs for r in rs)
    spacing = nodes["us_pixel_spacing_mm"].astype(float)
    assert spacing.between(0.05, 1.0).all()
    for _, row in nodes.head(12).iterrows():
        mask = np.asarray(Image.open(root / row["us_mask_file"].split(";")[0]))
        assert mask.shape == (SIZE, SIZE) and mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
        assert box(mask) == tuple(int(row[f"us_box_{k}"]) for k in ("x0", "y0", "x1", "y1"))
    width = (nodes["us_box_x1"] - nodes["us_box_x0"]) / SIZE
    assert 0.38 < width.median() < 0.6 and width.between(0.1, 0.9).all()


def test_png_for_most_centres_and_dicom_for_the_last(cohort):
    root, c = cohort
    nodes = c.nodes.merge(c.patients[["patient_id", "centre"]], on="patient_id")
    dicom = nodes["us_image_file"].str.endswith(".dcm")
    assert set(nodes.loc[dicom, "centre"]) == {"D"} and (nodes.loc[~dicom, "centre"] != "D").all()
    for ref in nodes.loc[~dicom, "us_image_file"].head(5).str.split(";").sum():
        im = Image.open(root / ref)
        assert im.size == (SIZE, SIZE) and np.asarray(im).dtype == np.uint8
    row = nodes[dicom].iloc[0]
    ds = pydicom.dcmread(root / row["us_image_file"].split(";")[0])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.6.1" and ds.Modality == "US"
    assert ds.PatientID == row["patient_id"] and str(ds.PatientName) == f"SYNTHETIC^{row['patient_id']}"
    assert float(ds.PixelSpacing[0]) == pytest.approx(row["us_pixel_spacing_mm"], rel=1e-3)
    assert ds.SequenceOfUltrasoundRegions[0].PhysicalDeltaX == pytest.approx(row["us_pixel_spacing_mm"] / 10, rel=1e-3)
    assert ds.pixel_array.shape == (SIZE, SIZE) and ds.pixel_array.dtype == np.uint8
    doppler = pydicom.dcmread(root / row["us_doppler_file"].split(";")[0])
    assert doppler.StudyInstanceUID == ds.StudyInstanceUID and doppler.SOPInstanceUID != ds.SOPInstanceUID


def test_same_seed_same_images(tmp_path):
    kw = {"patients": 6, "centres": 2, "seed": 3, "modalities": ["us_image"], "progress": False}
    a, b = generate_cohort(tmp_path / "a", **kw), generate_cohort(tmp_path / "b", **kw)
    assert filecmp.cmp(a / "nodes.csv", b / "nodes.csv", shallow=False)
    files = sorted(p.relative_to(a) for p in (a / "media" / "us").iterdir())
    assert files and all(filecmp.cmp(a / f, b / f, shallow=False) for f in files)
    other = render_node(PLAIN, US, np.random.default_rng(1)).bmode[0]
    assert not np.array_equal(other, render_node(PLAIN, US, np.random.default_rng(2)).bmode[0])
    views = render_node(PLAIN, US, np.random.default_rng(1))
    assert np.array_equal(other, views.bmode[0]) and not np.array_equal(views.bmode[0], views.bmode[1])


def test_rayleigh_speckle_in_uniform_tissue():
    env = speckle_envelope(np.full((256, 256), 0.4, np.float32), (1.0, 2.0), np.random.default_rng(0))
    assert env.dtype == np.float32
    assert env.mean() / env.std() == pytest.approx(RAYLEIGH_SNR, abs=0.08)
    assert (env.astype(np.float64) ** 2).mean() == pytest.approx(0.4, rel=0.1)


def _inside(feats, seeds=range(6), view=0):
    out = []
    for seed in seeds:
        im = render_node({**PLAIN, **feats}, US, np.random.default_rng(seed))
        out.append((im.bmode[view], im.doppler[view], im.mask[view] > 0))
    return out


def test_cystic_nodes_are_darker_inside():
    solid = np.mean([b[m].mean() for b, _, m in _inside({})])
    cystic = np.mean([b[m].mean() for b, _, m in _inside({"cystic_change": 1})])
    assert cystic < solid - 8


def test_calcified_nodes_have_bright_foci():
    def bright(feats):
        return np.mean([(b[m] >= 220).mean() for b, _, m in _inside(feats)])
    assert bright({"calcification": 1}) > 3 * bright({}) + 0.002


def test_hyperechoic_and_hilum_are_brighter():
    plain = np.mean([b[m].mean() for b, _, m in _inside({})])
    assert np.mean([b[m].mean() for b, _, m in _inside({"hyperechoic": 1})]) > plain + 15
    assert np.mean([b[m].mean() for b, _, m in _inside({"hilum_present": 1}, view=1)]) > plain + 5


def test_long_axis_follows_the_ratio_in_the_longitudinal_view():
    def aspect(ratio):
        m = render_node({**PLAIN, "long_short_ratio": ratio}, US, np.random.default_rng(0)).mask[1]
        x0, y0, x1, y1 = box(m)
        return (x1 - x0) / (y1 - y0)
    assert aspect(1.2) < 1.5 < 2.2 < aspect(2.8)


def test_doppler_none_hilar_peripheral():
    for _, d, m in _inside({"vascularity": 0}):
        assert (d[ndimage.binary_dilation(m, iterations=3)] > 0).sum() <= 2
    for _, d, m in _inside({"vascularity": 2}):
        core = ndimage.binary_erosion(m, iterations=max(2, int(0.3 * np.sqrt(m.sum() / np.pi))))
        rim = m & ~core
        assert (d[rim] > 0).mean() > 2 * (d[core] > 0).mean() + 0.05
    hilar = [(d[m] > 0).mean() for _, d, m in _inside({"vascularity": 1})]
    assert min(hilar) > 0.01
