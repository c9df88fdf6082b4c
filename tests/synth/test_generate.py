"""generate_cohort: determinism, argument checks, atomic output, modality selection and the renderer hook."""

from __future__ import annotations

import filecmp
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lymphcast.cohort import LymphCastError, read_cohort
from lymphcast.synth import Rendered, Renderer, available_renderers, generate_cohort
from lymphcast.synth import chunk as chunk_module
from lymphcast.synth import renderers as registry

FILES = ("cohort.yaml", "patients.csv", "nodes.csv", "truth/patients.csv", "truth/sides.csv", "truth/nodes.csv",
         "truth/cytology.csv", "truth/centres.csv", "truth/README.md")


def _make(path: Path, **kw) -> Path:
    kw = {"patients": 300, "centres": 3, "seed": 1, "progress": False, "modalities": ["clinical"], **kw}
    return generate_cohort(path, **kw)


def test_same_seed_same_files_and_other_seed_differs(tmp_path):
    a, b, c = _make(tmp_path / "a"), _make(tmp_path / "b"), _make(tmp_path / "c", seed=2)
    for name in FILES:
        assert filecmp.cmp(a / name, b / name, shallow=False), name
    assert not filecmp.cmp(a / "patients.csv", c / "patients.csv", shallow=False)
    assert not filecmp.cmp(a / "truth/nodes.csv", c / "truth/nodes.csv", shallow=False)


def test_metadata_and_layout(tmp_path):
    out = _make(tmp_path / "meta", patients=520)  # three chunks, the last one partial
    meta = yaml.safe_load((out / "cohort.yaml").read_text())
    assert meta["synthetic"] is True and meta["schema_version"] == 1
    assert [c["id"] for c in meta["centres"]] == ["A", "B", "C"]
    ct = meta["centres"][0]["acquisition"]["ct"]
    assert ct["slice_thickness_mm"] in (1.25, 2.5, 5.0) and abs(ct["hu_offset"]) <= 20
    assert {"us", "ct", "cytology"} <= set(meta["centres"][0]["acquisition"])
    assert all(v is None for v in meta["clinical_fields"].values()) and "palpable_adenopathy" in meta["clinical_fields"]
    assert meta["provenance"]["seed"] == 1 and meta["provenance"]["modalities"] == ["clinical"]
    cohort = read_cohort(out)
    assert list(cohort.patients["patient_id"][:2]) == ["P000001", "P000002"] and len(cohort.patients) == 520
    assert cohort.patients["patient_id"].is_unique and cohort.nodes["node_id"].is_unique
    truth = pd.read_csv(out / "truth/patients.csv")
    assert truth[[c for c in truth if c.startswith("risk_")]].apply(lambda s: s.between(0, 1)).all().all()


def test_large_cohort_is_quick_and_uses_many_chunks(tmp_path):
    out = _make(tmp_path / "wide", patients=1500, centres=26)
    assert set(pd.read_csv(out / "patients.csv")["centre"]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    read_cohort(out)


@pytest.mark.parametrize("kwargs, message", [
    ({"patients": 0}, "at least 1"), ({"patients": -5}, "at least 1"), ({"patients": 2.5}, "whole number"),
    ({"centres": 0}, "between 1 and 26"), ({"centres": 27}, "between 1 and 26"), ({"seed": -1}, "seed"),
    ({"modalities": ["clinicl"]}, "did you mean 'clinical'"), ({"modalities": ["xray"]}, "unknown modality"),
])
def test_bad_arguments_raise_and_leave_no_folder(tmp_path, kwargs, message):
    with pytest.raises(LymphCastError, match=message):
        _make(tmp_path / "bad", **kwargs)
    assert not (tmp_path / "bad").exists()
    assert list(tmp_path.iterdir()) == []


def test_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    real, calls = chunk_module.simulate_chunk, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr("lymphcast.synth.generate.simulate_chunk", flaky)
    with pytest.raises(KeyboardInterrupt):
        _make(tmp_path / "half", patients=600)
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_needs_overwrite(tmp_path):
    out = _make(tmp_path / "twice")
    with pytest.raises(LymphCastError, match="not empty"):
        _make(out)
    _make(out, seed=5, overwrite=True)
    assert yaml.safe_load((out / "cohort.yaml").read_text())["provenance"]["seed"] == 5


def test_a_registered_renderer_adds_media_without_changing_patients(tmp_path, monkeypatch):
    def fake_us(chunk, folder, centres, rng):
        media = folder / "media" / "us"
        media.mkdir(parents=True, exist_ok=True)
        refs = []
        for node_id, size in zip(chunk.node_ids, chunk.nodes.features["short_axis_mm"]):
            (media / f"{node_id}.txt").write_text(f"{size:.2f} {rng.random():.3f}")
            refs.append(f"media/us/{node_id}.txt")
        return Rendered(nodes={"us_image_file": np.array(refs)})

    monkeypatch.setattr(registry, "_RENDERERS", {"clinical": registry._RENDERERS["clinical"]})
    registry.register_renderer(Renderer("us_image", fake_us))
    assert available_renderers() == ("clinical", "us_image")
    with pytest.raises(ValueError, match="already registered"):
        registry.register_renderer(Renderer("us_image", fake_us))
    both, plain = _make(tmp_path / "both", modalities=None), _make(tmp_path / "plain")
    assert filecmp.cmp(both / "patients.csv", plain / "patients.csv", shallow=False)
    cohort = read_cohort(both)  # the validator checks every media file exists
    assert cohort.nodes["us_image_file"].str.startswith("media/us/").all()
    only_us = read_cohort(_make(tmp_path / "us", modalities=["us_image"]))
    assert "age" not in only_us.patients and only_us.meta.clinical_fields == {}
    assert only_us.patients["n1b"].equals(cohort.patients["n1b"])


def test_parallel_rendering_writes_the_same_cohort(tmp_path):
    """Chunks rendered by two worker processes give byte-identical tables and media to one process."""
    import hashlib
    from unittest import mock

    from lymphcast.synth import generate as gen

    def digest(folder):
        return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(folder.rglob("*")) if p.is_file()}

    with mock.patch.object(gen, "CHUNK_SIZE", 8):
        one = gen.generate_cohort(tmp_path / "one", patients=20, seed=4, modalities=["clinical", "us_image"],
                                  progress=False, workers=1)
        two = gen.generate_cohort(tmp_path / "two", patients=20, seed=4, modalities=["clinical", "us_image"],
                                  progress=False, workers=2)
    assert digest(one) == digest(two) and len(digest(one)) > 20
