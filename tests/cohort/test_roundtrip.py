"""Reading then writing a cohort gives back the same tables; writing is atomic."""

from __future__ import annotations

import pandas as pd
import pytest

from lymphcast.cohort import LymphCastError, read_cohort, write_cohort


def test_read_write_read_is_identity(tiny, tmp_path):
    first = read_cohort(tiny)
    write_cohort(first, tmp_path / "copy")
    second = read_cohort(tmp_path / "copy")
    assert first.meta == second.meta
    for name in ("patients", "nodes", "cytology"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    assert (tmp_path / "copy" / "media" / "n1.png").is_file()


def test_write_refuses_a_non_empty_target_and_leaves_it_alone(tiny, tmp_path):
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep.txt").write_text("x")
    with pytest.raises(LymphCastError, match="not empty"):
        write_cohort(read_cohort(tiny), target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


def test_failed_write_leaves_nothing(tiny, tmp_path, monkeypatch):
    cohort = read_cohort(tiny)
    monkeypatch.setattr(pd.DataFrame, "to_csv", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        write_cohort(cohort, tmp_path / "out")
    assert list(tmp_path.iterdir()) == [tmp_path / "tiny"]


def test_subset_keeps_nodes_of_kept_patients_only(tiny):
    cohort = read_cohort(tiny).subset(["P2"])
    assert list(cohort.nodes["node_id"]) == ["N3"]
    assert cohort.cytology.empty
