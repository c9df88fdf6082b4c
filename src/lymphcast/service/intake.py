"""Images arriving from PACS become cases: each ultrasound instance is kept with its study, the study's node views
so far plus the patient's clinical values (last sent through the API or FHIR) are scored together, and the
result goes back as a DICOM SR in the same study. A study therefore gets an updated report as views arrive."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from ..cohort import LymphCastError, atomic_file
from .case_input import CaseIn, NodeIn
from .dicom_us import UsInstance, read_header, read_us_instance

log = logging.getLogger("lymphcast.pacs")
MAX_VIEWS = 2  # the ultrasound model reads up to two views per node


def _key(text: str) -> str:
    """Folder and file names from identifiers, never the identifiers themselves (they are patient data)."""
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class ClinicalRecord:
    """The latest clinical values per patient, kept so that images arriving later can be scored with them."""

    def __init__(self, root: Path):
        self.root = Path(root) / "clinical"
        self.root.mkdir(parents=True, exist_ok=True)

    def save(self, patient_id: str, values: dict) -> None:
        if values and values != self.values(patient_id):
            with atomic_file(self.root / f"{_key(patient_id)}.json") as tmp:
                tmp.write_text(json.dumps(values), encoding="utf-8")

    def values(self, patient_id: str) -> dict:
        path = self.root / f"{_key(patient_id)}.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


class DicomIntake:
    def __init__(self, core):
        self.core = core
        self.studies = Path(core.settings.data_dir) / "studies"

    def on_instance(self, data: bytes, name: str) -> bytes:
        """One arriving instance → the study's updated SR (bytes); a LymphCastError for images it cannot use."""
        from .dicom_sr import risk_report, to_bytes

        instance = read_us_instance(data, name=name)
        if instance.level is None:
            raise LymphCastError(f"{name}: no neck level found (ImageComments 'level II'..'level VI' or the anatomic "
                                 f"region code); the node cannot be placed")
        folder = self.studies / _key(instance.study_uid)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_file(folder / f"{_key(instance.sop_uid)}.dcm") as tmp:
            tmp.write_bytes(data)
        kept = [p.read_bytes() for p in sorted(folder.glob("*.dcm"))]  # this study's views so far, read once
        views = [(read_us_instance(raw, name=f"{name} (kept view)"), raw) for raw in kept]
        views = [(inst, raw) for inst, raw in views if inst.patient_id == instance.patient_id]
        case, images = self.case_of(instance, [inst for inst, _ in views])
        result = self.core.submit(case, images, source="pacs")
        evidence = [read_header(raw, name=name) for _, raw in views]
        return to_bytes(risk_report(result, evidence))

    def case_of(self, latest: UsInstance, instances: list[UsInstance]) -> tuple[CaseIn, dict[str, bytes]]:
        """Group views into nodes: views with the same side, level and node label are one node (up to two
        views); a view without a label is a node of its own."""
        import io

        from PIL import Image

        nodes: dict[tuple, list[UsInstance]] = {}
        for inst in instances:
            key = (inst.side, inst.level, inst.node_label or inst.sop_uid)
            nodes.setdefault(key, []).append(inst)
        node_models, images, used = [], {}, set()
        for i, ((side, level, label), views) in enumerate(sorted(nodes.items(), key=lambda kv: kv[0][:2]), 1):
            names = []
            for v, inst in enumerate(views[:MAX_VIEWS], 1):
                buffer = io.BytesIO()
                Image.fromarray(inst.pixels).save(buffer, format="PNG")
                names.append(f"n{i}_v{v}.png")
                images[names[-1]] = buffer.getvalue()
            spacing = next((inst.spacing_mm for inst in views if inst.spacing_mm), None)
            node_id = _safe_label(views[0].node_label, i)
            node_id = node_id if node_id not in used else f"N{i:02d}"
            used.add(node_id)
            node_models.append(NodeIn(node_id=node_id, side=side, level=level, images=names,
                                      pixel_spacing_mm=spacing))
        case = CaseIn(patient_id=latest.patient_id, clinical=self.core.clinical.values(latest.patient_id),
                      nodes=node_models, study_instance_uid=latest.study_uid,
                      accession_number=latest.accession or None)
        return case, images


def _safe_label(label: str | None, index: int) -> str:
    import re

    if label and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,15}", label):
        return label
    return f"N{index:02d}"
