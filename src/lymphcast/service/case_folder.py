"""A submitted case becomes a one-patient cohort folder, the format every model reads: the same validation as
any cohort, and the folder stays as the record of exactly what was scored."""

from __future__ import annotations

import csv
from pathlib import Path

from ..cohort import CohortError, LymphCastError, Problem, read_cohort
from ..cohort.fields import FieldSpec, STANDARD_FIELDS
from ..cohort.io import write_meta
from ..cohort.media_fields import US_IMAGE_NODE_FIELDS, US_VIDEO_NODE_FIELDS
from ..cohort.schema import CohortMeta
from .case_input import CLIP_KINDS, IMAGE_KINDS, CaseIn, image_kind

SITE = "site"  # the one centre of a service case: the hospital running the service


class CaseInputError(LymphCastError):
    """Input the client can fix: the API answers 422 with every problem, named by its place in the case."""


def model_fields(manifest: dict) -> dict[str, FieldSpec]:
    """The clinical fields the bundle was trained with (the standard fields for a manifest made outside `train`)."""
    stored = manifest.get("fields")
    if not stored:
        return dict(STANDARD_FIELDS)
    return {name: FieldSpec(**spec) for name, spec in stored.items()}


def write_case(case: CaseIn, images: dict[str, bytes], fields: dict[str, FieldSpec], folder: Path, key: str):
    """Write `case` and its uploaded `images` as a cohort in `folder` and read it back validated (the Cohort).
    Inside the folder the patient is `key` (the case id), so cases of one patient never collide when scored
    together; the patient's own identifier stays in the case's result."""
    problems = [Problem("case", f"field '{name}' is not one this model knows (it reads: {', '.join(fields)})",
                        column=f"clinical.{name}") for name in case.clinical if name not in fields]
    clips = {node.clip for node in case.nodes if node.clip}
    used = {name for node in case.nodes for name in node.images} | clips
    problems += [Problem("case", f"the case names image '{n}' but no file of that name was uploaded",
                         column="nodes.images") for n in sorted(used - set(images))]
    problems += [Problem("case", f"uploaded file '{n}' is not named by any node", column="files")
                 for n in sorted(set(images) - used)]
    kinds = {}
    for name, data in images.items():
        kinds[name] = image_kind(data, CLIP_KINDS if name in clips else IMAGE_KINDS)
        if kinds[name] is None:
            expected = "a cine clip (MP4, AVI, MKV or DICOM)" if name in clips else "a PNG, JPEG or DICOM image"
            problems.append(Problem(name, f"expected {expected}", column="files"))
    if any(p.column in ("files", "nodes.images") for p in problems):
        raise CaseInputError("the case cannot be scored", problems)
    (folder / "media").mkdir(parents=True)
    meta = CohortMeta(name=f"case-{folder.name}", centres=({"id": SITE},),
                      clinical_fields={n: (None if n in STANDARD_FIELDS and STANDARD_FIELDS[n] == s else s)
                                       for n, s in fields.items()},
                      node_fields={**(US_IMAGE_NODE_FIELDS if case.nodes else {}),
                                   **(US_VIDEO_NODE_FIELDS if clips else {})})
    write_meta(meta, folder)
    _write_rows(folder / "patients.csv", ["patient_id", "centre", "n1b", *fields],
                [{"patient_id": key, "centre": SITE, "n1b": "",
                  **{k: _cell(v) for k, v in case.clinical.items() if k in fields}}])
    if case.nodes:
        rows = []
        for i, node in enumerate(case.nodes, 1):
            node_id = f"{key}-{node.node_id or f'N{i:02d}'}"
            refs = []
            for v, name in enumerate(node.images, 1):
                ref = f"media/{node_id}_v{v}.{kinds[name]}"
                (folder / ref).write_bytes(images[name])
                refs.append(ref)
            row = {"node_id": node_id, "patient_id": key, "side": node.side, "level": node.level,
                   "metastatic": "", "us_image_file": ";".join(refs),
                   "us_pixel_spacing_mm": _cell(node.pixel_spacing_mm)}
            if clips:
                row.update(_clip_cells(node, folder, node_id, images, kinds))
            rows.append(row)
        _write_rows(folder / "nodes.csv", ["node_id", "patient_id", "side", "level", "metastatic", "us_image_file",
                                           "us_pixel_spacing_mm", *(CLIP_COLUMNS if clips else ())], rows)
    try:
        cohort = read_cohort(folder)
    except CohortError as exc:  # every problem at once: the unknown fields and the values that failed
        problems += [_in_case_terms(p, case) for p in exc.problems]
    if problems:
        raise CaseInputError("the case cannot be scored", problems)
    return cohort


CLIP_COLUMNS = ("us_video_file", "us_video_key_frame", "us_video_pixel_spacing_mm", "us_video_box_x0",
                "us_video_box_y0", "us_video_box_x1", "us_video_box_y1")


def _clip_cells(node, folder: Path, node_id: str, files: dict[str, bytes], kinds: dict[str, str]) -> dict:
    if not node.clip:
        return {}
    ref = f"media/{node_id}_clip.{kinds[node.clip]}"
    (folder / ref).write_bytes(files[node.clip])
    box = node.clip_box or (None,) * 4
    return {"us_video_file": ref, "us_video_key_frame": _cell(node.clip_key_frame),
            "us_video_pixel_spacing_mm": _cell(node.clip_pixel_spacing_mm),
            **{col: _cell(v) for col, v in zip(CLIP_COLUMNS[3:], box)}}


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _write_rows(path: Path, header: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


def _in_case_terms(problem: Problem, case: CaseIn) -> Problem:
    """Name a cohort problem by its place in the submitted case (clinical.age, nodes[2].level), not by the
    internal file and line the client never saw."""
    file = Path(problem.file).name
    if file == "patients.csv":
        return Problem("case", problem.message, column=f"clinical.{problem.column}" if problem.column else None)
    if file == "nodes.csv" and problem.line is not None:
        return Problem("case", problem.message, column=f"nodes[{problem.line - 2}]"
                       + (f".{problem.column}" if problem.column else ""))
    return Problem("case", problem.message)
