"""Import a hospital's own ultrasound node images (PNG/JPEG/DICOM) listed in a labels CSV into a cohort folder.

LABELS.csv, one row per lymph node image (the header names the columns, in any order):
    image       path to the image, relative to the CSV's folder or absolute (required)
    label       1 metastatic node, 0 benign (required)
    patient_id  optional; default: the image file's name without extension. Rows sharing a patient_id are
                several nodes of one patient.
    centre      optional centre id (letters, digits, _ . -); default: --centre, else "site"
    mask        optional path to a mask image of the same size; its non-zero pixels are the node
    box         optional "x0,y0,x1,y1" in pixels (x1, y1 exclusive; fractions are rounded outwards; quote it)
    side        optional left/right; unknown for most user images, so the default is "left"
    level       optional II-VI (or 2-6); default "IV" (a lateral level). Side and level carry no image
                information; they only place the node in the cohort format.
The node box is `box` if given, else the bounding box of the mask's non-zero pixels, else the whole image.

Written (a cohort that lymphcast.cohort.read_cohort accepts, using the same node columns and field specs as
the synthetic ultrasound renderer, so the same model trains on both):
    cohort.yaml   centres found in the data, node_fields us_box_* and us_pixel_spacing_mm, no clinical fields
    patients.csv  patient_id, centre, n1b. n1b = max of the labels of the patient's lateral (II-V) nodes: one
                  positive lateral node makes the patient N1b. A patient with only level VI nodes gets a blank
                  n1b (central nodes say nothing about N1b). Labels of rows skipped only for their image still
                  count, so a broken image never turns a positive patient negative.
    nodes.csv     node_id (n + CSV line), patient_id, side, level, metastatic, us_image_file, us_mask_file
                  (blank without mask), us_box_x0/y0/x1/y1, us_pixel_spacing_mm (blank when unknown: only
                  DICOM records it; a value outside the field's range is treated as unknown)
    media/us/     <node_id>.png (8-bit grayscale; colour converted) and <node_id>_mask.png (0/255)
    import_report.csv  every problem found (line, column, problem); rows with a problem were skipped

Problems (each with its CSV line and column, naming the image file): missing or unreadable files, a box outside
the image or empty, a mask of another size or with no non-zero pixel, a label other than 0/1, a patient under two
centres (all its rows are skipped), unknown values. Without `strict` bad rows are skipped and listed; with
`strict` any problem aborts and nothing is written. Messages never contain patient ids.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from .errors import CohortError, LymphCastError, Problem
from .io import atomic_dir, write_meta
from .media_fields import US_IMAGE_NODE_FIELDS as NODE_FIELDS  # the same as the synthetic cohort's
from .schema import LATERAL_LEVELS, LEVELS, SIDES, Centre, CohortMeta
from .tables import read_raw_table
from .validate import check_cohort
from .values import did_you_mean

REQUIRED = ("image", "label")
OPTIONAL = ("patient_id", "centre", "mask", "box", "side", "level")
DEFAULT_CENTRE = "site"
DEFAULT_SIDE = "left"
DEFAULT_LEVEL = "IV"
CENTRE_ID = r"[A-Za-z0-9_.-]+"
ARABIC_LEVELS = {"2": "II", "3": "III", "4": "IV", "5": "V", "6": "VI"}
REPORT = "import_report.csv"
NODE_HEADER = ("node_id", "patient_id", "side", "level", "metastatic", "us_image_file", "us_mask_file",
               "us_box_x0", "us_box_y0", "us_box_x1", "us_box_y1", "us_pixel_spacing_mm")


@dataclass
class ImportResult:
    out_dir: Path
    rows_read: int
    nodes: int
    patients: int
    problems: list[Problem] = field(default_factory=list)  # what was skipped or ignored, and why

    @property
    def rows_skipped(self) -> int:
        return len({p.line for p in self.problems if p.line is not None and p.line > 1})


@dataclass
class _Row:
    line: int
    image: Path
    label: int | None
    patient_id: str
    centre: str
    side: str
    level: str
    mask: Path | None
    box: tuple[int, int, int, int] | None


def _resolve(base: Path, ref: str) -> Path:
    p = Path(ref).expanduser()
    return p if p.is_absolute() else base / p


def _parse_box(text: str) -> tuple[tuple[int, int, int, int] | None, str | None]:
    parts = [p for p in re.split(r"[,;\s]+", text.strip().strip("()[]")) if p]
    if len(parts) != 4:
        return None, f"expected a box 'x0,y0,x1,y1' (4 numbers, in pixels), found '{text}'"
    try:
        x0, y0, x1, y1 = (float(p) for p in parts)
    except ValueError:
        return None, f"expected a box 'x0,y0,x1,y1' of numbers, found '{text}'"
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        return None, f"expected finite box coordinates, found '{text}'"
    if x1 <= x0 or y1 <= y0:
        return None, f"empty box '{text}': need x1 > x0 and y1 > y0 (x1, y1 are the exclusive right/bottom edges)"
    return (math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1)), None


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1; x1/y1 exclusive) of the non-zero pixels, None if there is none."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


class _Reader:
    """Parses the cells of each row; every problem goes to `problems` with its line and column."""

    def __init__(self, csv_path: Path, header: list[str], default_centre: str):
        self.file, self.base, self.header = csv_path.name, csv_path.parent, header
        self.default_centre = default_centre
        self.problems: list[Problem] = []

    def bad(self, line: int, column: str, message: str) -> None:
        self.problems.append(Problem(self.file, message, line, column))

    def row(self, cells: list[str], line: int) -> _Row:
        get = {name: cells[self.header.index(name)] if name in self.header else "" for name in (*REQUIRED, *OPTIONAL)}
        image_ref = get["image"]
        if not image_ref:
            self.bad(line, "image", "expected a path to the image, found a blank")
        label = None
        if get["label"] in ("0", "1"):
            label = int(get["label"])
        else:
            self.bad(line, "label", f"expected a label 0 or 1, found '{get['label']}'")
        centre = get["centre"] or self.default_centre
        if not re.fullmatch(CENTRE_ID, centre):
            self.bad(line, "centre", f"expected a centre id (letters, digits, _ . -), found '{centre}'")
        side = get["side"].lower() or DEFAULT_SIDE
        if side not in SIDES:
            self.bad(line, "side", f"expected one of {', '.join(SIDES)}, found '{get['side']}'" +
                     did_you_mean(side, SIDES))
        level = get["level"].upper() or DEFAULT_LEVEL
        level = ARABIC_LEVELS.get(level, level)
        if level not in LEVELS:
            self.bad(line, "level", f"expected one of {', '.join(LEVELS)}, found '{get['level']}'")
        box = None
        if get["box"]:
            box, msg = _parse_box(get["box"])
            if msg:
                self.bad(line, "box", msg)
        image = _resolve(self.base, image_ref) if image_ref else Path()
        patient_id = get["patient_id"] or (image.stem if image_ref else "")
        mask = _resolve(self.base, get["mask"]) if get["mask"] else None
        return _Row(line, image, label, patient_id, centre, side, level, mask, box)


def _centre_conflicts(rows: list[_Row], reader: _Reader) -> set[str]:
    """Patients listed under more than one centre; every row of such a patient is reported (without its id)."""
    centres: dict[str, dict[str, int]] = defaultdict(dict)
    for r in rows:
        centres[r.patient_id].setdefault(r.centre, r.line)
    bad = {pid for pid, cs in centres.items() if len(cs) > 1}
    for r in rows:
        if r.patient_id in bad:
            where = ", ".join(f"'{c}' (line {ln})" for c, ln in centres[r.patient_id].items())
            reader.bad(r.line, "centre", f"this row's patient is listed under several centres: {where}; "
                                         "a patient belongs to one centre")
    return bad


def _images(r: _Row, reader: _Reader):
    """Read, check and return (image, mask or None, box) of one row, or None after reporting the problem."""
    from ..io.images import ImageReadError, read_image

    ok = True
    try:
        img = read_image(r.image)
    except ImageReadError as exc:
        reader.bad(r.line, "image", f"image '{r.image.name}': {exc}")
        img, ok = None, False
    mask = None
    if r.mask is not None:
        try:
            mask = np.where(read_image(r.mask).pixels > 0, 255, 0).astype(np.uint8)
        except ImageReadError as exc:
            reader.bad(r.line, "mask", f"mask '{r.mask.name}': {exc}")
            ok = False
    if img is None:
        return None
    h, w = img.shape
    box = r.box
    if mask is not None:
        if mask.shape != img.shape:
            reader.bad(r.line, "mask", f"mask '{r.mask.name}' is {mask.shape[1]}x{mask.shape[0]} pixels but image "
                                       f"'{r.image.name}' is {w}x{h}; a mask must match its image")
            ok = False
        else:
            found = mask_box(mask)
            if found is None:
                reader.bad(r.line, "mask", f"mask '{r.mask.name}' is empty (no non-zero pixel)")
                ok = False
            box = box or found
    if box is not None and not (0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h):
        reader.bad(r.line, "box", f"box {','.join(map(str, box))} lies outside image '{r.image.name}' "
                                  f"({w}x{h} pixels: need 0 <= x0 < x1 <= {w} and 0 <= y0 < y1 <= {h})")
        ok = False
    if not ok:
        return None
    return img, mask, box or (0, 0, w, h)


def _n1b(rows: list[_Row]) -> dict[str, str]:
    """Patient label: max of the labels of its lateral-level nodes; blank with no lateral node."""
    out: dict[str, str] = {}
    for r in rows:
        if r.label is None or r.level not in LATERAL_LEVELS:
            out.setdefault(r.patient_id, "")
            continue
        prev = out.get(r.patient_id, "")
        out[r.patient_id] = str(max(r.label, int(prev)) if prev else r.label)
    return out


def _write_csv(path: Path, header, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(list(header))
        writer.writerows(rows)


def import_images(csv_path: str | Path, out_dir: str | Path, *, strict: bool = False, centre: str | None = None,
                  overwrite: bool = False) -> ImportResult:
    """Write the cohort folder `out_dir` from a labels CSV of node images (see the module docstring)."""
    from ..io.images import write_png

    csv_path, out_dir = Path(csv_path), Path(out_dir)
    default_centre = centre or DEFAULT_CENTRE
    if not re.fullmatch(CENTRE_ID, default_centre):
        raise LymphCastError(f"--centre '{default_centre}' is not a centre id (letters, digits, _ . -)")
    problems: list[Problem] = []
    table = read_raw_table(csv_path, csv_path.name, problems)
    if table is None:
        raise LymphCastError(f"cannot read labels table '{csv_path}'", problems)
    missing = [c for c in REQUIRED if c not in table.header]
    if missing:
        raise LymphCastError(f"cannot import '{csv_path}'", [
            Problem(table.file, f"required column '{c}' is missing" + did_you_mean(c, table.header), line=1)
            for c in missing])
    reader = _Reader(csv_path, table.header, default_centre)
    reader.problems += problems  # ragged rows, already skipped by read_raw_table
    for col in table.header:
        if col not in REQUIRED + OPTIONAL:
            reader.bad(1, col, f"column '{col}' is not used by import-images and is ignored" +
                       did_you_mean(col, REQUIRED + OPTIONAL))
    if not table.rows:
        raise LymphCastError(f"'{csv_path}' has no rows; expected one row per node image", reader.problems)

    rows = [reader.row(cells, line) for cells, line in zip(table.rows, table.lines)]
    conflicted = _centre_conflicts(rows, reader)
    n1b = _n1b([r for r in rows if r.patient_id not in conflicted])

    spacing_spec = NODE_FIELDS["us_pixel_spacing_mm"]
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        media = tmp / "media" / "us"
        media.mkdir(parents=True)
        nodes, kept = [], []
        bad_cells = {p.line for p in reader.problems}
        for r in rows:
            bad_before = r.line in bad_cells
            found = _images(r, reader) if r.image != Path() else None
            if found is None or bad_before:
                continue
            img, mask, box = found
            node_id = f"n{r.line:05d}"
            write_png(media / f"{node_id}.png", img.pixels)
            mask_file = ""
            if mask is not None:
                mask_file = f"media/us/{node_id}_mask.png"
                write_png(tmp / mask_file, mask)
            s = img.spacing_mm
            spacing = f"{s:.6g}" if s is not None and spacing_spec.min <= s <= spacing_spec.max else ""
            nodes.append([node_id, r.patient_id, r.side, r.level, str(r.label), f"media/us/{node_id}.png",
                          mask_file, *map(str, box), spacing])
            kept.append(r)
        problems = sorted(reader.problems, key=lambda p: (p.line or 0, p.column or ""))
        if strict and problems:
            raise LymphCastError(f"cannot import '{csv_path}' (--strict): {len(problems)} problem(s)", problems)
        if not nodes:
            raise LymphCastError(f"cannot import '{csv_path}': no valid row remains", problems)

        patients = list(dict.fromkeys(r.patient_id for r in kept))
        centre_of = {r.patient_id: r.centre for r in kept}
        node_fields = dict(NODE_FIELDS)
        meta = CohortMeta(
            name=csv_path.stem or "images",
            description=f"node images imported from {csv_path.name} with lymphcast import-images",
            centres=[Centre(id=c) for c in dict.fromkeys(centre_of[p] for p in patients)],
            node_fields=node_fields,
            provenance={"imported_from": csv_path.name,
                        "source_sha256": hashlib.sha256(csv_path.read_bytes()).hexdigest(),
                        "rows_read": len(table.rows), "nodes_imported": len(nodes),
                        "defaults": {"side": DEFAULT_SIDE, "level": DEFAULT_LEVEL, "centre": default_centre},
                        "n1b": "max of the labels of the patient's lateral (II-V) nodes",
                        "lymphcast_version": __version__})
        write_meta(meta, tmp)
        _write_csv(tmp / "patients.csv", ("patient_id", "centre", "n1b"),
                   [(p, centre_of[p], n1b.get(p, "")) for p in patients])
        _write_csv(tmp / "nodes.csv", NODE_HEADER, nodes)
        _write_csv(tmp / REPORT, ("line", "column", "problem"),
                   [("" if p.line is None else p.line, p.column or "", p.message) for p in problems])
        checked = check_cohort(tmp)
        if checked.problems:  # a bug in this importer, not in the user's input; never leave such a folder
            raise CohortError("the imported cohort does not pass validation", checked.problems)
    return ImportResult(out_dir, len(table.rows), len(nodes), len(patients), problems)
