"""Stain swap: the restained copy shows the same cells in another stain, changes only the chosen centre's
cytology, reproduces the source byte for byte in the source's own stain and refuses a cohort it cannot redraw."""

from __future__ import annotations

import filecmp
import shutil

import numpy as np
import pandas as pd
import pytest
import tifffile
import yaml
from PIL import Image

from lymphcast.cohort import LymphCastError, read_cohort
from lymphcast.synth import cyto_renderer, generate_cohort
from lymphcast.synth.stain_swap import restain_cohort

SMALL = 512  # slide side (256 um): enough cells for a tissue mask, fast to render
IMAGES = ("slide.tif", "field_1.png", "field_2.png")


@pytest.fixture(scope="module")
def small_slides():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cyto_renderer, "SLIDE_PX", SMALL)
        yield


@pytest.fixture(scope="module")
def source(small_slides, tmp_path_factory):
    # seed 0, 6 patients: centres A A B A D C, so Diff-Quik and Pap patients both
    return generate_cohort(tmp_path_factory.mktemp("swap") / "src", patients=6, centres=4, seed=0,
                           modalities=["clinical", "cytology"], progress=False, workers=1)


@pytest.fixture(scope="module")
def restained(source, small_slides):
    return restain_cohort(source, source.parent / "pap", centres=("A",), stain="Pap")


def _centre_of(folder):
    return pd.read_csv(folder / "patients.csv").set_index("patient_id")["centre"]


def _image(path):
    return tifffile.imread(path, level=0) if path.suffix == ".tif" else np.asarray(Image.open(path))


def _tissue(img, block=8):
    """Where there is something on the glass, whatever its colour: optical density above the background's,
    then blocks of `block` pixels that are a quarter tissue or more."""
    od = -np.log((img.astype(float) + 0.5) / 256).sum(axis=-1)
    full = od > np.median(od) + 0.25
    n = full.shape[0] // block
    return full, full[:n * block, :n * block].reshape(n, block, n, block).mean(axis=(1, 3)) > 0.25


def _files(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def test_only_the_chosen_centres_stain_changes(source, restained):
    cohort = read_cohort(restained)  # validates
    centre = _centre_of(source)
    assert set(centre) >= {"A", "B"}
    cyto = cohort.cytology.assign(centre=lambda t: centre.reindex(t["patient_id"]).to_numpy())
    assert (cyto["stain"] == "Pap").all() and set(cyto["centre"]) == set(centre)
    before = pd.read_csv(source / "cytology.csv")
    after = pd.read_csv(restained / "cytology.csv")
    assert before.drop(columns="stain").equals(after.drop(columns="stain"))
    assert (before["stain"] == np.where(centre.reindex(before["patient_id"]) == "A", "Diff-Quik", "Pap")).all()
    cells_before = pd.read_csv(source / "truth" / "cytology_cells.csv")
    cells_after = pd.read_csv(restained / "truth" / "cytology_cells.csv")
    assert cells_before.drop(columns="stain").equals(cells_after.drop(columns="stain"))  # same scenes
    assert (cells_after["stain"] == "Pap").all()
    meta = yaml.safe_load((restained / "cohort.yaml").read_text())
    assert [c["acquisition"]["cytology"]["stain"] for c in meta["centres"]] == ["Pap"] * 4
    assert meta["provenance"]["restained"] == {"source": "src", "centres": ["A"], "stain": "Pap"}
    assert _files(source) == _files(restained)
    for rel in _files(source):
        redrawn = rel.parts[:2] == ("media", "cytology") and centre[rel.parts[2]] == "A"
        changed = {"cytology.csv", "cohort.yaml", "truth/cytology_cells.csv"}
        assert filecmp.cmp(source / rel, restained / rel, shallow=False) == (not redrawn
                                                                              and rel.as_posix() not in changed), rel


def test_a_pap_centre_restained_in_diff_quik_leaves_the_others_alone(source, small_slides, tmp_path):
    out = restain_cohort(source, tmp_path / "dq_b", centres=("B",), stain="Diff-Quik")
    cohort = read_cohort(out)
    centre = _centre_of(source)
    stain = cohort.cytology["stain"].to_numpy()
    assert (stain == np.where(centre.reindex(cohort.cytology["patient_id"]).isin(["A", "B"]),
                              "Diff-Quik", "Pap")).all()
    assert [c.acquisition["cytology"]["stain"] for c in cohort.meta.centres] == ["Diff-Quik", "Diff-Quik", "Pap",
                                                                                "Pap"]
    for pid in centre.index:
        same = filecmp.cmp(source / "media/cytology" / pid / "slide.tif", out / "media/cytology" / pid / "slide.tif",
                           shallow=False)
        assert same == (centre[pid] != "B"), pid


def test_the_restained_images_show_the_same_cells(source, restained):
    centre = _centre_of(source)
    pids = list(centre.index[centre == "A"])
    masks = {}
    for pid in pids:
        for name in IMAGES:
            dq = _image(source / "media" / "cytology" / pid / name)
            pap = _image(restained / "media" / "cytology" / pid / name)
            assert dq.shape == pap.shape and (dq != pap).any()
            (full_dq, low_dq), (full_pap, low_pap) = _tissue(dq), _tissue(pap)
            assert 0.05 < full_dq.mean() < 0.6
            assert (low_dq == low_pap).mean() > 0.9, (pid, name)
            assert (full_dq & full_pap).sum() / (full_dq | full_pap).sum() > 0.75, (pid, name)
            masks[pid, name] = full_dq
            # the colours did change, on the tissue (the background differs too, but faintly)
            assert np.abs(dq.astype(int) - pap)[full_dq].mean() > 8, (pid, name)
        with tifffile.TiffFile(restained / "media" / "cytology" / pid / "slide.tif") as tif:
            assert tif.pages[0].description.endswith("Pap")
    # a control: another patient's slide does not pass for the same cells
    a, b = (masks[pid, "slide.tif"] for pid in pids[:2])
    assert (a & b).sum() / (a | b).sum() < 0.5


def test_the_original_stain_reproduces_the_source_byte_for_byte(source, small_slides, tmp_path):
    again = restain_cohort(source, tmp_path / "dq", centres=("A",), stain="Diff-Quik")
    assert _files(source) == _files(again)
    differ = [rel for rel in _files(source)
              if rel.name != "cohort.yaml" and not filecmp.cmp(source / rel, again / rel, shallow=False)]
    assert differ == []


def test_what_cannot_be_restained_is_refused(source, small_slides, tmp_path):
    with pytest.raises(LymphCastError, match="unknown stain 'H&E'"):
        restain_cohort(source, tmp_path / "x", stain="H&E")
    with pytest.raises(LymphCastError, match="no centre Q"):
        restain_cohort(source, tmp_path / "x", centres=("Q",))
    edited = shutil.copytree(source, tmp_path / "edited")
    latent = pd.read_csv(edited / "truth" / "cytology.csv")
    latent["hobnail_fraction"] *= 1.1
    latent.to_csv(edited / "truth" / "cytology.csv", index=False)
    with pytest.raises(LymphCastError, match="cytology.csv: column hobnail_fraction"):
        restain_cohort(edited, tmp_path / "x")
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".x.*"))
