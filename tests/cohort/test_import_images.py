"""`lymphcast import-images`: user node images + labels CSV → a valid cohort folder."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from lymphcast.cli import app
from lymphcast.cohort import LymphCastError, read_cohort
from lymphcast.cohort.import_images import import_images
from tests.io.test_images import gradient, write_dicom

runner = CliRunner()


def make_inputs(tmp_path, extra_rows=(), header="image,label,patient_id,centre,mask,box"):
    src = tmp_path / "src"
    (src / "img").mkdir(parents=True)
    Image.fromarray(gradient()).save(src / "img" / "a.png")
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[..., 1] = 100
    Image.fromarray(rgb).save(src / "img" / "b.jpg", quality=95)
    mask = np.zeros((32, 48), np.uint8)
    mask[5:9, 10:20] = 1
    Image.fromarray(mask).save(src / "img" / "b_mask.png")
    write_dicom(src / "img" / "c.dcm", gradient(), spacing=0.15)
    rows = ["img/a.png,0,P1,A,,\"2,3,20,25\"",
            "img/b.jpg,1,P1,A,img/b_mask.png,",
            f"{src / 'img' / 'c.dcm'},0,,B,,",  # absolute path; patient id defaults to the stem "c"
            *extra_rows]
    (src / "labels.csv").write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return src / "labels.csv"


def test_round_trip(tmp_path):
    labels = make_inputs(tmp_path)
    result = import_images(labels, tmp_path / "out")
    assert (result.nodes, result.patients, result.problems) == (3, 2, [])
    c = read_cohort(tmp_path / "out")
    assert sorted(c.meta.centre_ids) == ["A", "B"] and c.meta.clinical_fields == {}
    assert set(c.meta.node_fields) == {"us_box_x0", "us_box_y0", "us_box_x1", "us_box_y1", "us_pixel_spacing_mm"}
    pat = c.patients.set_index("patient_id")
    assert pat.loc["P1", "n1b"] == 1 and pat.loc["c", "n1b"] == 0 and pat.loc["c", "centre"] == "B"
    nodes = c.nodes.set_index("node_id")
    assert list(nodes["metastatic"]) == [0, 1, 0]
    assert list(nodes["side"]) == ["left"] * 3 and list(nodes["level"]) == ["IV"] * 3
    box = nodes[["us_box_x0", "us_box_y0", "us_box_x1", "us_box_y1"]].to_numpy()
    assert box.tolist() == [[2, 3, 20, 25], [10, 5, 20, 9], [0, 0, 32, 32]]  # from box, from mask, whole image
    spacing = nodes["us_pixel_spacing_mm"].tolist()
    assert np.isnan(spacing[0]) and np.isnan(spacing[1]) and spacing[2] == pytest.approx(0.15)
    files = nodes["us_image_file"].tolist()
    for f in files:
        img = Image.open(tmp_path / "out" / f)
        assert img.mode == "L" and f.endswith(".png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / files[0])), gradient())
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / files[2])), gradient())  # DICOM → PNG
    b = np.asarray(Image.open(tmp_path / "out" / files[1]))
    assert b.shape == (32, 48) and abs(int(b[0, 0]) - round(0.587 * 100)) <= 2  # RGB → gray, size kept
    mask = np.asarray(Image.open(tmp_path / "out" / nodes["us_mask_file"].iloc[1]))
    assert set(np.unique(mask)) == {0, 255}
    assert nodes["us_mask_file"].isna().tolist() == [True, False, True]


def test_corrupt_png_skipped_and_reported(tmp_path):
    labels = make_inputs(tmp_path, extra_rows=["img/broken.png,1,P9,A,,", "img/gone.png,1,P8,A,,"])
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)).save(labels.parent / "img" / "broken.png")
    data = (labels.parent / "img" / "broken.png").read_bytes()
    (labels.parent / "img" / "broken.png").write_bytes(data[: len(data) // 2])
    result = import_images(labels, tmp_path / "out")
    assert result.nodes == 3 and result.rows_skipped == 2
    text = [str(p) for p in result.problems]
    assert any("line 5" in t and "'broken.png'" in t and "column 'image'" in t for t in text)
    assert any("line 6" in t and "'gone.png'" in t and "not found" in t for t in text)
    with open(tmp_path / "out" / "import_report.csv", encoding="utf-8") as fh:
        report = list(csv.DictReader(fh))
    assert [r["line"] for r in report] == ["5", "6"] and "broken.png" in report[0]["problem"]
    assert "P9" not in (tmp_path / "out" / "import_report.csv").read_text()  # never patient ids
    assert len(read_cohort(tmp_path / "out").nodes) == 3

    with pytest.raises(LymphCastError) as exc:
        import_images(labels, tmp_path / "strict", strict=True)
    assert "broken.png" in str(exc.value) and "gone.png" in str(exc.value)
    assert not (tmp_path / "strict").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".strict")]  # no partial folder left


@pytest.mark.parametrize("row, column, words", [
    ("img/a.png,2,P5,A,,", "label", "0 or 1"),
    ("img/a.png,1,P5,A,,\"0,0,40,10\"", "box", "outside"),
    ("img/a.png,1,P5,A,,\"5,0,5,10\"", "box", "x1 > x0"),
    ("img/a.png,1,P5,A,img/b_mask.png,", "mask", "must match"),
    ("img/a.png,1,P5,A,img/empty.png,", "mask", "empty"),
    ("img/a.png,1,P1,B,,", "centre", "several centres"),
])
def test_row_problems(tmp_path, row, column, words):
    labels = make_inputs(tmp_path, extra_rows=[row])
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(labels.parent / "img" / "empty.png")
    result = import_images(labels, tmp_path / "out")
    hits = [p for p in result.problems if p.column == column and words in p.message]
    assert hits and hits[0].line >= 2, result.problems
    if column == "centre":  # a patient in two centres: all its rows are skipped
        assert result.nodes == 1 and {p.line for p in result.problems} == {2, 3, 5}
        assert "P1" not in " ".join(p.message for p in result.problems)
    else:
        assert result.nodes == 3
    read_cohort(tmp_path / "out")


def test_level_side_and_n1b_rule(tmp_path):
    labels = make_inputs(tmp_path, header="image,label,patient_id,centre,mask,box,side,level",
                         extra_rows=["img/a.png,1,Q,A,,,right,VI", "img/a.png,0,Q,A,,,Right,3"])
    text = labels.read_text().splitlines()
    text[1:4] = [t + ",," for t in text[1:4]]
    labels.write_text("\n".join(text) + "\n")
    c = read_cohort(import_images(labels, tmp_path / "out").out_dir)
    assert c.patients.set_index("patient_id").loc["Q", "n1b"] == 0  # a positive level VI node is not N1b
    q = c.nodes[c.nodes["patient_id"] == "Q"]
    assert q["level"].tolist() == ["VI", "III"] and q["side"].tolist() == ["right", "right"]


def test_no_valid_row_and_missing_columns(tmp_path):
    labels = make_inputs(tmp_path)
    labels.write_text("image,label\nnope.png,1\n")
    with pytest.raises(LymphCastError, match="no valid row"):
        import_images(labels, tmp_path / "out")
    labels.write_text("img,label\na.png,1\n")
    with pytest.raises(LymphCastError) as exc:
        import_images(labels, tmp_path / "out")
    assert "'image' is missing" in str(exc.value)
    assert not (tmp_path / "out").exists()


def test_cli(tmp_path):
    labels = make_inputs(tmp_path, extra_rows=["img/gone.png,1,P8,A,,"])
    res = runner.invoke(app, ["import-images", str(labels), "--out", str(tmp_path / "out"), "--centre", "X"])
    assert res.exit_code == 0, res.output
    assert "skipped" in res.output and "gone.png" in res.output and "P8" not in res.output
    res = runner.invoke(app, ["import-images", str(labels), "--out", str(tmp_path / "s"), "--strict"])
    assert res.exit_code == 2 and "Traceback" not in res.output and "gone.png" in res.output
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"image,label\n\xff\xfe,1\n")
    res = runner.invoke(app, ["import-images", str(bad), "--out", str(tmp_path / "o2")])
    assert res.exit_code == 2 and "Traceback" not in res.output and "UTF-8" in res.output
    bad.write_text("")
    res = runner.invoke(app, ["import-images", str(bad), "--out", str(tmp_path / "o2")])
    assert res.exit_code == 2 and "empty" in res.output
    assert not (tmp_path / "s").exists() and not (tmp_path / "o2").exists()
