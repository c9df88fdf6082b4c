"""The cytology renderer: drawn cell types track the latent features, flags change the arrangement, stains look
like their stain system, files are readable pyramids and PNGs with their pixel size, output is deterministic and
a generated cohort validates."""

from __future__ import annotations

import filecmp

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

from lymphcast.cohort import read_cohort
from lymphcast.synth import available_renderers, generate_cohort
from lymphcast.synth import cyto_cells as cc
from lymphcast.synth import cyto_renderer
from lymphcast.synth.cyto_raster import rasterise
from lymphcast.synth.cyto_renderer import TRUTH_FILE, render_patient
from lymphcast.synth.cyto_scene import REFERENCE_UM, build_scene
from lymphcast.synth.cyto_stain import rotate_hue, slide_stain
from lymphcast.synth.renderers import ON_REQUEST, resolve_modalities

SMALL = 512  # slide side in tests (256 um)


def _feats(hob=0.1, tall=0.1, mp=0, loc=0):
    return {"hobnail_fraction": hob, "tall_cell_fraction": tall, "micropapillary": mp, "loss_of_cohesion": loc}


def _drawn(scene):
    """Cells counted from the drawn primitives themselves: hobnail nuclei are the only flat primitives with a
    nuclear density of 0.75-0.95, tall cells the only square-cornered (p = 4) eosinophilic cytoplasm."""
    t = scene.prims
    nuc, eos = t["dens"][:, 0], t["dens"][:, 2]
    flat = (t["kind"] == cc.FLAT) & (t["dens"][:, [1, 2, 3, 4]].sum(axis=1) == 0)
    hob = flat & (nuc >= 0.75) & (nuc <= 0.95)
    return int(hob.sum()), int(((t["p"] == 4) & (eos >= 0.4)).sum()), hob


def _tissue(img: np.ndarray) -> np.ndarray:
    background = np.median(img.reshape(-1, 3)[::31], axis=0)
    return np.abs(img.astype(int) - background).max(axis=-1) > 15


def test_cytology_is_renderable_on_request_only():
    assert "cytology" in available_renderers() and "cytology" in ON_REQUEST
    assert "cytology" not in [r.name for r in resolve_modalities(None)]


@pytest.mark.parametrize("hob, tall", [(0.05, 0.3), (0.4, 0.05)])
def test_drawn_cell_types_track_the_fractions(hob, tall):
    shares, spread = [], []
    for seed in range(3):
        scene = build_scene(_feats(hob, tall, loc=seed % 2), REFERENCE_UM, np.random.default_rng(seed))
        n = scene.counts["tumour_cells"]
        n_hob, n_tall, _ = _drawn(scene)
        assert (n_hob, n_tall) == (scene.counts["hobnail_cells"], scene.counts["tall_cells"])
        assert 700 <= n <= 1200
        for k, f in ((n_hob, hob), (n_tall, tall)):
            assert abs(k / n - f) < 4 * np.sqrt(f * (1 - f) / n), (k, n, f)  # binomial tolerance
        shares.append(n_hob / n)
    assert abs(np.mean(shares) - hob) < 3 * np.sqrt(hob * (1 - hob) / 2100)


def test_hobnail_cells_sit_on_the_rim_of_groups():
    scene = build_scene(_feats(0.2, 0.0), REFERENCE_UM, np.random.default_rng(4))
    t = scene.prims
    nuclei = (t["kind"] == cc.FLAT) & (t["dens"][:, 0] >= 0.36) & (t["dens"][:, 0] <= 0.95) & (t["tex"] > 0.1)
    _, _, hob = _drawn(scene)
    xy = np.stack([t["x"], t["y"]], 1)
    d = np.hypot(*(xy[:, None] - xy[nuclei][None]).transpose(2, 0, 1))
    crowd = ((d > 0.1) & (d < 16)).sum(axis=1)  # other tumour nuclei around each one
    assert crowd[hob].mean() < 0.75 * crowd[nuclei & ~hob].mean()


def test_flags_change_the_arrangement():
    for seed in range(3):
        on = build_scene(_feats(mp=1, loc=1), REFERENCE_UM, np.random.default_rng(seed)).counts
        off = build_scene(_feats(mp=0, loc=0), REFERENCE_UM, np.random.default_rng(seed)).counts
        assert 8 <= on["micropapillary_clusters"] <= 15 and off["micropapillary_clusters"] <= 1
        assert 0.34 <= on["single_cells"] / on["tumour_cells"] <= 0.51
        assert 0.02 <= off["single_cells"] / off["tumour_cells"] <= 0.09


def test_stains_look_like_their_system_and_tissue_covers_the_slide():
    rng = np.random.default_rng(7)
    scene = build_scene(_feats(0.1, 0.1, 1, 1), REFERENCE_UM, rng)
    acq = {"hue_shift": 0.0, "intensity": 1.0}
    images = {s: rasterise(scene.prims, 0, 0, 2048, 0.5, slide_stain(s, acq, rng), rng) for s in ("Pap", "Diff-Quik")}
    pap = images["Pap"].astype(float)
    tissue = _tissue(images["Pap"])
    assert 0.15 <= tissue.mean() <= 0.5
    assert (np.median(pap[~tissue], axis=0) > 235).all()  # clean pale background
    g_minus_r = {s: (im[..., 1].astype(float) - im[..., 0])[tissue].mean() for s, im in images.items()}
    # Pap: blue-green (cyanophilic) cytoplasm; Diff-Quik: grey-blue to purple, magenta colloid
    assert g_minus_r["Pap"] > g_minus_r["Diff-Quik"] + 3, g_minus_r
    dq_background = np.median(images["Diff-Quik"][~tissue].astype(float), axis=0)
    assert dq_background[0] > dq_background[1]  # a faint pink-violet background


def test_hue_rotation_keeps_density_and_a_centres_intensity_darkens():
    v = np.array([[1.0, 0.5, 0.2]])
    turned = rotate_hue(v, 0.2)
    assert turned.sum() == pytest.approx(v.sum()) and not np.allclose(turned, v)
    rng = np.random.default_rng(0)
    scene = build_scene(_feats(), SMALL * 0.5, rng)
    means = [rasterise(scene.prims, 0, 0, SMALL, 0.5,
                       slide_stain("Pap", {"intensity": k}, np.random.default_rng(1)), np.random.default_rng(2)).mean()
             for k in (0.8, 1.2)]
    assert means[1] < means[0]


def test_files_are_a_pyramid_and_pngs_with_their_pixel_size(tmp_path):
    counts = render_patient(tmp_path / "P1", _feats(), 0, {"hue_shift": 0.02, "intensity": 1.1},
                            np.random.default_rng(3), slide_px=SMALL)
    assert counts["stain"] == "Diff-Quik"
    with tifffile.TiffFile(tmp_path / "P1" / "slide.tif") as tif:
        pages = tif.pages
        assert pages[0].shape == (SMALL, SMALL, 3) and pages[0].is_tiled and len(pages) >= 2
        x_res = pages[0].tags["XResolution"].value
        assert 1e4 / (x_res[0] / x_res[1]) == pytest.approx(0.5)  # pixels per centimetre
        assert "Diff-Quik" in pages[0].description
    for i in (1, 2):
        with Image.open(tmp_path / "P1" / f"field_{i}.png") as im:
            assert im.size == (640, 640) and im.mode == "RGB"
            assert im.info["dpi"][0] == pytest.approx(25400 / 0.25, rel=1e-3)
    assert not list(tmp_path.rglob("*.partial"))


def test_same_seed_gives_identical_files(tmp_path):
    for name in "ab":
        render_patient(tmp_path / name, _feats(0.2, 0.2, 1, 1), 1, {}, np.random.default_rng(9), slide_px=SMALL)
    for f in ("slide.tif", "field_1.png", "field_2.png"):
        assert filecmp.cmp(tmp_path / "a" / f, tmp_path / "b" / f, shallow=False)


def test_generated_cohort_validates(tmp_path, monkeypatch):
    monkeypatch.setattr(cyto_renderer, "SLIDE_PX", SMALL)
    root = generate_cohort(tmp_path / "c", patients=6, centres=2, seed=2, modalities=["clinical", "cytology"],
                           progress=False)
    cohort = read_cohort(root)
    cyto = cohort.cytology.merge(cohort.patients[["patient_id", "centre"]], on="patient_id")
    assert len(cyto) == 18 and set(cyto["kind"]) == {"slide", "field"}
    assert (cyto["stain"] == np.where(cyto["centre"] == "A", "Diff-Quik", "Pap")).all()
    assert (cyto.loc[cyto["kind"] == "slide", "microns_per_pixel"] == 0.5).all()
    assert all((root / f).is_file() for f in cyto["image_file"])
    truth = pd.read_csv(root / "truth" / TRUTH_FILE)
    assert list(truth["patient_id"]) == list(cohort.patients["patient_id"])
    assert (truth["hobnail_cells"] + truth["tall_cells"] <= truth["tumour_cells"]).all()
