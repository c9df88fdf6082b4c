"""FastAPI dependencies for authentication (401) and role checks (403), and the audit middleware that writes one
row per request before its response leaves."""

from __future__ import annotations

import logging
import traceback
import uuid

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from .auth import User

COOKIE = "lymphcast_token"
SCORING_PATHS = ("/api/v1/cases", "/api/v1/fhir/")  # POSTs here each score one case
log = logging.getLogger("lymphcast.service")


def request_token(request: Request) -> str | None:
    """The bearer token of a request, or for GET/HEAD the web page's cookie."""
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
        user = request.app.state.core.tokens.user(request_token(request))
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


class AuditMiddleware:
    """Every request leaves one committed audit row before its response starts (an answered request is on disk even
    if the process is killed right after); too-large bodies are refused here, before they are read. A plain ASGI
    middleware: Starlette's BaseHTTPMiddleware costs a task group and a stream per request."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        core = scope["app"].state.core
        request_id = uuid.uuid4().hex[:16]
        state = scope.setdefault("state", {})
        started = False

        async def audited_send(message):
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                started = True
                user, fields = state.get("user"), state.get("audit", {})
                route = scope.get("route")
                client = scope.get("client")
                await run_in_threadpool(
                    core.audit.record, user=user.name if user else None, role=user.role if user else None,
                    method=scope["method"], path=scope["path"], status=message["status"],
                    action=getattr(route, "name", None), bundle_sha256=core.bundle.sha256,
                    client=client[0] if client else None, request_id=request_id, **fields)
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", request_id.encode())]}
            await send(message)

        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > core.settings.max_upload_bytes:
            refuse = JSONResponse({"detail": f"request body of {int(length)} bytes exceeds the limit of "
                                             f"{core.settings.max_upload_bytes}"}, status_code=413)
            return await refuse(scope, receive, audited_send)
        try:
            if scope["method"] == "POST" and scope["path"].startswith(SCORING_PATHS):
                # announced on arrival, so a batch starting while this body is still being read waits for it
                with core.scorer.announce():
                    await self.app(scope, receive, audited_send)
            else:
                await self.app(scope, receive, audited_send)
        except Exception as exc:  # a bug: answer 500 with the request id, audited like any other
            # type and place only: an exception's message or locals can hold patient data
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            log.error("internal error (request %s): %s at %s:%d", request_id, type(exc).__name__,
                      frame.filename.rsplit("/", 1)[-1], frame.lineno)
            if started:
                raise
            failed = JSONResponse({"detail": f"internal error; quote request id {request_id} to the "
                                             f"administrator"}, status_code=500)
            await failed(scope, receive, audited_send)
