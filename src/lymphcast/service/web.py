"""The surgeons' web page: log in with an access token, the worklist, one case (risk, neck diagram, nodes with
their heat maps, provenance) and the model card. Server-rendered HTML without scripts or external assets.

The login stores the token in an HttpOnly, SameSite=Strict cookie; `security` accepts that cookie only for GET
requests, so the page can read results and pictures but a cross-site form can never submit a case.
"""

from __future__ import annotations

import re
from datetime import datetime
from html import escape
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from .auth import User
from .neck_diagram import colour, neck_svg, percent
from .security import COOKIE, note, request_token

BANDS = ("high", "intermediate", "low", "unknown")
# Patient data: never cached, never framed, no referrer leaking case ids; styles inline, no scripts at all.
HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache", "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer",
           "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
                                      "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"}


def _when(value) -> str:
    try:
        return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return str(value or "")


def _local(url) -> str | None:
    """A same-site path or None: redirects and key-frame links never lead off the service."""
    url = str(url or "")
    return url if url.startswith("/") and not url.startswith("//") and "\\" not in url else None


_env = Environment(loader=PackageLoader("lymphcast.service", "templates"), autoescape=True)
_env.filters.update(pct=percent, when=_when, colour=colour, quote=lambda s: quote(str(s), safe=""),
                    band=lambda b: b if b in BANDS else "unknown")


def markdown_html(text: str) -> Markup:
    """A small, safe subset of Markdown: headings (one level down, the page owns h1), bullet lists, paragraphs and
    `code` spans. Everything is escaped first, so the card can never inject markup."""
    out, para, items = [], [], []

    def inline(s: str) -> str:
        return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(s.strip(), quote=False))

    def flush():
        if para:
            out.append(f"<p>{inline(' '.join(para))}</p>")
            para.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in text.splitlines():
        heading = re.match(r"^(#{1,5})\s+(.*)$", line)
        bullet = re.match(r"^\s*[-*]\s+(.*)$", line)
        if heading:
            flush()
            level = len(heading.group(1)) + 1
            out.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
        elif bullet:
            if para:
                flush()
            items.append(bullet.group(1))
        elif not line.strip():
            flush()
        elif items:  # an indented continuation of the last bullet
            items[-1] += " " + line.strip()
        else:
            para.append(line)
    flush()
    return Markup("\n".join(out))


def _estimate(value) -> str:
    """A calibration number, or [estimate, low, high] as 'estimate (95% CI low to high)'."""
    if isinstance(value, (list, tuple)) and len(value) == 3:
        return f"{value[0]:.2f} (95% CI {value[1]:.2f} to {value[2]:.2f})"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _page(request: Request, template: str, status: int = 200, user: User | None = None, **context) -> HTMLResponse:
    html = _env.get_template(template).render(request=request, user=user, **context)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _error(request: Request, status: int, title: str, message: str, user: User | None = None) -> HTMLResponse:
    return _page(request, "error.html", status, user, title=title, message=message, code=status)


def _viewer(request: Request, permission: str) -> tuple[User | None, Response | None]:
    """The signed-in user, or the response to send instead: to the login page (keeping where the surgeon was
    going) when nobody is signed in, a 403 page for a role that may not see this."""
    core = request.app.state.core
    user = core.tokens.user(request_token(request))
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return None, RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303, headers=HEADERS)
    request.state.user = user  # the audit row names who looked
    if not user.may(permission):
        return user, _error(request, 403, "Not allowed", f"The role '{user.role}' may not view this page; "
                                                         f"sign in with a clinician's token.", user)
    return user, None


def web_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def home():
        return RedirectResponse("/worklist", status_code=303)

    @router.get("/login")
    def login_form(request: Request, target: str = Query("/worklist", alias="next")):
        return _page(request, "login.html", next=_local(target) or "/worklist")

    @router.post("/login")
    def login(request: Request, token: str = Form(""), target: str = Form("/worklist", alias="next")):
        user = request.app.state.core.tokens.user(token.strip())
        if user is None:
            return _page(request, "login.html", 401, error="unknown token",
                         next=_local(target) or "/worklist")
        request.state.user = user
        response = RedirectResponse(_local(target) or "/worklist", status_code=303, headers=HEADERS)
        # No max-age: a session cookie, gone when the browser of a shared workstation closes.
        response.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict", path="/",
                            secure=request.url.scheme == "https")
        return response

    @router.post("/logout")
    def logout(request: Request):
        response = RedirectResponse("/login", status_code=303, headers=HEADERS)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")
        return response

    @router.get("/worklist")
    def worklist(request: Request):
        user, refused = _viewer(request, "read")
        if refused:
            return refused
        return _page(request, "worklist.html", user=user, rows=request.app.state.core.store.worklist(200))

    @router.get("/cases/{case_id}")
    def case(request: Request, case_id: str):
        user, refused = _viewer(request, "read")
        if refused:
            return refused
        core = request.app.state.core
        result = core.store.result(case_id)
        if result is None:
            return _error(request, 404, "No such case", f"There is no case '{case_id}'.", user)
        note(request, patient_id=result["patient_id"], case_id=case_id)
        heatmaps = core.bundle.component("us_image") is not None
        frames = [dict(f, png=_local(f.get("png"))) for f in result.get("key_frames") or [] if _local(f.get("png"))]
        return _page(request, "case.html", user=user, r=result, diagram=Markup(neck_svg(result)),
                     heatmaps=heatmaps, key_frames=frames,
                     same_bundle=result.get("provenance", {}).get("bundle_sha256") == core.bundle.sha256)

    @router.get("/model-card")
    def model_card(request: Request):
        user, refused = _viewer(request, "model")
        if refused:
            return refused
        core = request.app.state.core
        manifest = core.bundle.manifest
        calibration = {k: _estimate(v) for k, v in (manifest.get("calibration") or {}).items()}
        return _page(request, "model_card.html", user=user, card=markdown_html(core.model_card),
                     thresholds=manifest.get("thresholds", {}), calibration=calibration,
                     locked=manifest.get("locked"), sha256=core.bundle.sha256, modalities=core.bundle.modalities)

    return router
