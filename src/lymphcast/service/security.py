"""FastAPI dependencies for authentication (401) and role checks (403), and the audit middleware that writes one
row per request before its response leaves."""

from __future__ import annotations

import logging
import uuid

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from .auth import User

COOKIE = "lymphcast_token"
log = logging.getLogger("lymphcast.service")


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    # The web page's cookie counts only for reading: a cross-site form cannot make the browser submit a case.
    if request.method in ("GET", "HEAD"):
        return request.cookies.get(COOKIE)
    return None


def require(permission: str):
    def check(request: Request) -> User:
        user = request.app.state.core.tokens.user(_token(request))
        if user is None:
            raise HTTPException(401, "missing or unknown credentials: send 'Authorization: Bearer <token>'",
                                headers={"WWW-Authenticate": "Bearer"})
        request.state.user = user
        if not user.may(permission):
            raise HTTPException(403, f"the role '{user.role}' may not {permission} here")
        return user

    return Depends(check)


def note(request: Request, **fields) -> None:
    """What the audit row should say about this request (patient, case, result hash)."""
    request.state.audit = {**getattr(request.state, "audit", {}), **fields}


async def audit_middleware(request: Request, call_next):
    """Every request leaves one committed audit row before its response is sent (an answered request is on disk
    even if the process is killed right after)."""
    request_id = uuid.uuid4().hex[:16]
    try:
        response = await call_next(request)
    except Exception:  # a bug: answer 500 with the request id (the log has the details), and audit it like any other
        log.exception("internal error (request %s)", request_id)
        response = JSONResponse({"detail": f"internal error; quote request id {request_id} to the administrator"},
                                status_code=500)
    core = request.app.state.core
    user = getattr(request.state, "user", None)
    fields = getattr(request.state, "audit", {})
    route = request.scope.get("route")
    await run_in_threadpool(core.audit.record, user=user.name if user else None, role=user.role if user else None,
                            method=request.method, path=request.url.path, status=response.status_code,
                            action=getattr(route, "name", None), bundle_sha256=core.bundle.sha256,
                            client=request.client.host if request.client else None, request_id=request_id, **fields)
    response.headers["X-Request-ID"] = request_id
    return response
