"""The service's state: the verified bundle, the case store, the audit trail and the tokens; submitting a case
writes it, scores it and keeps the result, or leaves nothing behind."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..bundle import BundleError, load_bundle
from .audit import AuditLog
from .auth import TokenStore
from .case_folder import model_fields, write_case
from .case_input import CaseIn
from .intake import ClinicalRecord, DicomIntake
from .scoring import Scorer
from .store import CaseStore

log = logging.getLogger("lymphcast.service")


@dataclass(frozen=True)
class ServiceSettings:
    bundle: Path
    data_dir: Path
    tokens_file: Path | None = None
    max_upload_bytes: int = 20 * 1024 * 1024  # a case: clinical values and a few ultrasound views
    max_file_bytes: int = 8 * 1024 * 1024
    allow_unlocked: bool = False  # only for development: serve a model nobody locked


class ServiceCore:
    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.bundle = load_bundle(settings.bundle)  # verifies every file's hash first
        if not self.bundle.manifest.get("locked") and not settings.allow_unlocked:
            raise BundleError(f"'{settings.bundle}' is not a locked bundle; lock it with `lymphcast bundle MODEL "
                              f"--out BUNDLE` (the service serves only models someone chose to deploy)")
        self.fields = model_fields(self.bundle.manifest)
        self.scorer = Scorer(self.bundle)
        self.store = CaseStore(settings.data_dir)
        self.audit = AuditLog(Path(settings.data_dir) / "audit.sqlite")
        self.tokens = TokenStore(settings.tokens_file or Path(settings.data_dir) / "tokens.json")
        self.model_card = (Path(settings.bundle) / "MODEL_CARD.md").read_text(encoding="utf-8")
        self.clinical = ClinicalRecord(settings.data_dir)
        self.intake = DicomIntake(self)
        log.info("bundle %s loaded (%s)", self.bundle.sha256[:12], ", ".join(self.bundle.modalities))

    def submit(self, case: CaseIn, images: dict[str, bytes], *, source: str = "api") -> dict:
        case_id = self.store.new_case_id()
        folder = self.store.root / case_id
        try:
            with self.scorer.announce():
                cohort = write_case(case, images, self.fields, folder / "cohort", key=case_id)
                result = self.scorer.score(cohort, case_id=case_id, extra={
                    "patient_id": case.patient_id, "source": source, "study_instance_uid": case.study_instance_uid,
                    "accession_number": case.accession_number, "key_frames": self._clip_links(case, case_id)})
            self.store.save_result(case_id, result)
            if source != "pacs":  # images arriving later from PACS are scored with these values
                self.clinical.save(case.patient_id, case.clinical)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # a case that failed leaves nothing half-written
            raise
        log.info("case %s scored (%d node(s))", case_id, len(case.nodes))  # no patient identifier in logs
        return result

    def _clip_links(self, case: CaseIn, case_id: str) -> list[dict]:
        """Where the page finds each clip's risk-over-time picture with its key frames (made on first request)."""
        if self.bundle.component("us_video") is None:
            return []
        names = [(node.node_id or f"N{i:02d}", node.clip) for i, node in enumerate(case.nodes, 1)]
        return [{"node_id": name, "frame": None, "png": f"/api/v1/cases/{case_id}/clips/{name}.png"}
                for name, clip in names if clip]

    def heatmap(self, case_id: str, node_id: str) -> Path | None:
        """The Grad-CAM picture of one node's views, made on first request and kept with the case."""
        model = self.bundle.component("us_image")
        if model is None:
            return None

        def make(cohort, inside: str, row: dict, target: Path) -> bool:
            from PIL import Image

            from ..cohort import atomic_file
            from ..explain.gallery import ultrasound_pictures

            pictures = ultrasound_pictures(model, cohort, [inside])
            if inside not in pictures:
                return False
            with atomic_file(target) as tmp:
                Image.fromarray(pictures[inside]).save(tmp, format="PNG")
            return True

        return self._node_picture(case_id, node_id, "heatmaps", make)

    def clip_picture(self, case_id: str, node_id: str) -> Path | None:
        """A node's cine clip as the clip model read it: the risk after every frame and the key frames (those its
        attention weighed most), made on first request and kept with the case."""
        model = self.bundle.component("us_video")
        if model is None:
            return None

        def make(cohort, inside: str, row: dict, target: Path) -> bool:
            from ..explain.clip_gallery import risk_trace, save_trace_png

            if not isinstance(row.get("us_video_file"), str):
                return False
            trace = risk_trace(model, cohort, row)
            partial = target.with_name(f".{target.stem}.partial.png")  # matplotlib takes the format from the name
            save_trace_png(trace, partial, f"node {node_id} ({row['side']}, level {row['level']}): risk over the sweep")
            os.replace(partial, target)
            return True

        return self._node_picture(case_id, node_id, "clips", make)

    def _node_picture(self, case_id: str, node_id: str, kind: str, make) -> Path | None:
        """`<case>/<kind>/<node>.png`, made once by `make(cohort, node id inside the cohort, node row, target)`;
        None for an unknown case or node, or when `make` has nothing to draw."""
        from ..cohort import read_cohort

        folder, result = self.store.case_dir(case_id), self.store.result(case_id)
        if folder is None or result is None or node_id not in {n["node_id"] for n in result["nodes"]}:
            return None
        target = folder / kind / f"{node_id}.png"
        if target.is_file():
            return target
        cohort = read_cohort(folder / "cohort")
        inside = f"{case_id}-{node_id}"  # node ids in the case's cohort carry the case id
        row = cohort.nodes[cohort.nodes["node_id"] == inside].iloc[0].to_dict()
        target.parent.mkdir(exist_ok=True)
        with self.scorer.lock:  # the networks are shared with scoring
            return target if make(cohort, inside, row, target) else None
