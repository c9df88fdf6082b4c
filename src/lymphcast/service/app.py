"""The HTTP API (FastAPI; OpenAPI at /api/openapi.json, interactive docs at /api/docs) and the surgeons' web page.

    GET  /api/v1/health, /api/v1/ready              liveness; readiness with the bundle hash (no credentials)
    GET  /api/v1/model                              thresholds, calibration, modalities, model card (any role)
    POST /api/v1/cases                              a case as JSON (clinical values only)       integration
    POST /api/v1/cases/upload                       multipart: `case` (JSON) + image files       integration
    POST /api/v1/fhir/Bundle                        a FHIR Bundle of Patient + Observations      integration
    GET  /api/v1/cases, /api/v1/cases/{id}          worklist; one result                         clinician
    GET  /api/v1/cases/{id}/heatmaps/{node}.png     Grad-CAM of a node's views                   clinician
    GET  /api/v1/cases/{id}/clips/{node}.png        a clip's risk over the sweep + key frames    clinician
    GET  /api/v1/cases/{id}/fhir/RiskAssessment     the result as FHIR R5 (or ?version=R4)       clinician
    GET  /api/v1/audit                              recent audit rows                            admin
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from fastapi import Body, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..cohort import LymphCastError
from .case_input import CaseIn
from .core import ServiceCore
from .security import AuditMiddleware, note, require

MAX_FILES = 16


def _problems(exc: LymphCastError) -> dict:
    return {"message": exc.args[0], "problems": [str(p) for p in getattr(exc, "problems", [])]}


def create_app(core: ServiceCore) -> FastAPI:
    app = FastAPI(title="LymphCast", version=__version__, docs_url="/api/docs", redoc_url=None,
                  openapi_url="/api/openapi.json",
                  description="Risk of lateral neck lymph node metastasis (N1b) in papillary thyroid carcinoma, per "
                              "patient, neck side, level and node, from the locked model bundle. Decision support, "
                              "not a diagnosis.")
    app.state.core = core

    app.add_middleware(AuditMiddleware)

    @app.exception_handler(LymphCastError)
    async def user_error(request: Request, exc: LymphCastError):
        return JSONResponse({"detail": _problems(exc)}, status_code=422)

    @app.get("/api/v1/health", tags=["service"])
    def health():
        return {"status": "ok"}

    @app.get("/api/v1/ready", tags=["service"])
    def ready():
        return {"ready": True, "bundle_sha256": core.bundle.sha256, "modalities": core.bundle.modalities,
                "lymphcast_version": __version__}

    @app.get("/api/v1/model", tags=["model"], dependencies=[require("model")])
    def model():
        m = core.bundle.manifest
        return {"bundle_sha256": core.bundle.sha256, "modalities": core.bundle.modalities,
                "thresholds": m["thresholds"], "calibration": m.get("calibration"), "locked": m.get("locked"),
                "fields": m.get("fields"), "training": {k: v for k, v in m.get("training", {}).items()
                                                        if k != "input_sha256"}, "model_card": core.model_card}

    async def _submit(request: Request, case: CaseIn, images: dict[str, bytes], source: str) -> dict:
        note(request, patient_id=case.patient_id)
        result = await run_in_threadpool(core.submit, case, images, source=source)
        note(request, case_id=result["case_id"], result_sha256=_digest(result))
        return result

    @app.post("/api/v1/cases", tags=["cases"], status_code=201, dependencies=[require("submit")])
    async def submit_case(request: Request, case: CaseIn = Body(...)):
        return await _submit(request, case, {}, "api")

    @app.post("/api/v1/cases/upload", tags=["cases"], status_code=201, dependencies=[require("submit")])
    async def submit_case_with_images(request: Request, case: str = Form(..., description="The case as JSON"),
                                      files: list[UploadFile] = File(default_factory=list)):
        try:
            parsed = CaseIn.model_validate_json(case)
        except ValidationError as exc:
            raise HTTPException(422, [{"loc": ["case", *e["loc"]], "msg": e["msg"]} for e in exc.errors()]) from None
        if len(files) > MAX_FILES:
            raise HTTPException(413, f"{len(files)} files; at most {MAX_FILES} per case")
        images = {}
        for upload in files:
            data = await upload.read(core.settings.max_file_bytes + 1)
            if len(data) > core.settings.max_file_bytes:
                raise HTTPException(413, f"file '{upload.filename}' exceeds {core.settings.max_file_bytes} bytes")
            if upload.filename in images:
                raise HTTPException(422, f"two files are named '{upload.filename}'")
            images[upload.filename or ""] = data
        from .case_input import CLIP_KINDS, IMAGE_KINDS, image_kind

        known = {**IMAGE_KINDS, **CLIP_KINDS}
        if bad := [name for name, data in images.items() if image_kind(data, known) is None]:
            raise HTTPException(415, f"file(s) {', '.join(bad)}: expected PNG, JPEG or DICOM images or MP4, AVI, "
                                     f"MKV clips")
        return await _submit(request, parsed, images, "api")

    @app.post("/api/v1/fhir/Bundle", tags=["fhir"], status_code=201, dependencies=[require("submit")])
    async def submit_fhir(request: Request, version: Literal["R4", "R5"] = Query("R5")):
        from .fhir_input import clinical_from_fhir
        from .fhir_output import risk_assessment

        clinical = clinical_from_fhir(await request.body(), core.fields)
        case = CaseIn(patient_id=clinical.patient_id, clinical=clinical.values)
        result = await _submit(request, case, {}, "fhir")
        return {"result": result, "risk_assessment": risk_assessment(
            result, version=version, observation_references=clinical.observation_references,
            patient_reference=clinical.patient_reference)}

    @app.get("/api/v1/cases", tags=["cases"], dependencies=[require("read")])
    def worklist(limit: int = Query(200, ge=1, le=1000)):
        return core.store.worklist(limit)

    def _result(request: Request, case_id: str) -> dict:
        result = core.store.result(case_id)
        if result is None:
            raise HTTPException(404, f"no case '{case_id}'")
        note(request, patient_id=result["patient_id"], case_id=case_id, result_sha256=_digest(result))
        return result

    @app.get("/api/v1/cases/{case_id}", tags=["cases"], dependencies=[require("read")])
    def case_result(request: Request, case_id: str):
        return _result(request, case_id)

    def _picture(request: Request, case_id: str, node_id: str, make, what: str) -> FileResponse:
        _result(request, case_id)
        path = make(case_id, node_id)
        if path is None:
            raise HTTPException(404, f"no {what} for node '{node_id}' of case '{case_id}'")
        return FileResponse(path, media_type="image/png")

    @app.get("/api/v1/cases/{case_id}/heatmaps/{node_id}.png", tags=["cases"], dependencies=[require("read")],
             response_class=FileResponse)
    def heatmap(request: Request, case_id: str, node_id: str):
        return _picture(request, case_id, node_id, core.heatmap, "heat map")

    @app.get("/api/v1/cases/{case_id}/clips/{node_id}.png", tags=["cases"], dependencies=[require("read")],
             response_class=FileResponse)
    def clip_picture(request: Request, case_id: str, node_id: str):
        return _picture(request, case_id, node_id, core.clip_picture, "clip")

    @app.get("/api/v1/cases/{case_id}/fhir/RiskAssessment", tags=["fhir"], dependencies=[require("read")])
    def case_fhir(request: Request, case_id: str, version: Literal["R4", "R5"] = Query("R5")):
        from .fhir_output import risk_assessment

        result = _result(request, case_id)
        return risk_assessment(result, version=version, imaging_study_uid=result.get("study_instance_uid"))

    @app.get("/api/v1/audit", tags=["service"], dependencies=[require("manage")])
    def audit(patient_id: str | None = None, limit: int = Query(200, ge=1, le=5000)):
        return core.audit.rows(patient_id=patient_id, limit=limit)

    from .web import web_router

    app.include_router(web_router())
    return app


def app_from_environment() -> FastAPI:
    """The app for each worker process of `lymphcast serve --workers N` (uvicorn imports it by name): the settings
    come from the LYMPHCAST_SERVICE environment variable the parent set (JSON of ServiceSettings)."""
    import os
    from pathlib import Path

    from .core import ServiceSettings

    raw = json.loads(os.environ["LYMPHCAST_SERVICE"])
    paths = {k: Path(v) for k, v in raw.items() if k in ("bundle", "data_dir", "tokens_file") and v is not None}
    return create_app(ServiceCore(ServiceSettings(**{**raw, **paths})))


def _digest(result: dict) -> str:
    return hashlib.sha256(json.dumps(result, sort_keys=True).encode()).hexdigest()
