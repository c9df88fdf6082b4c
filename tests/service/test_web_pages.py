"""The surgeons' web page over a real locked bundle: sign-in and its cookie, the worklist, a case with its neck
diagram and heat maps, the refusals (no cookie, wrong role, unknown case), the model card; and the neck diagram
on its own."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from lymphcast.service.neck_diagram import GREY, colour, neck_svg, percent
from lymphcast.service.security import COOKIE
from lymphcast.service.web import markdown_html


@pytest.fixture(scope="module")
def app(service_core, service_case):
    from lymphcast.service.app import create_app

    return create_app(service_core)


def _client(app, role: str | None, tokens: dict) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    if role:
        client.cookies.set(COOKIE, tokens[role])
    return client


@pytest.fixture()
def clinician(app, service_tokens):
    return _client(app, "clinician", service_tokens)


def test_login_sets_a_strict_httponly_cookie_and_goes_to_the_worklist(app, service_tokens):
    client = _client(app, None, service_tokens)
    form = client.get("/login")
    assert form.status_code == 200 and 'name="token"' in form.text
    bad = client.post("/login", data={"token": "lc_nope"})
    assert bad.status_code == 401 and "unknown token" in bad.text and COOKIE not in bad.headers.get("set-cookie", "")
    good = client.post("/login", data={"token": service_tokens["clinician"]})
    assert good.status_code == 303 and good.headers["location"] == "/worklist"
    cookie = good.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={service_tokens['clinician']}")
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower() and "secure" not in cookie.lower()
    assert client.get("/worklist").status_code == 200  # the client kept the cookie
    out = client.post("/logout")
    assert out.status_code == 303 and f'{COOKIE}=""' in out.headers["set-cookie"]


def test_login_over_https_marks_the_cookie_secure(app, service_tokens):
    client = TestClient(app, base_url="https://testserver", follow_redirects=False)
    response = client.post("/login", data={"token": service_tokens["clinician"]})
    assert "secure" in response.headers["set-cookie"].lower()


def test_login_returns_to_a_local_page_only(app, service_tokens):
    client = _client(app, None, service_tokens)
    back = client.post("/login", data={"token": service_tokens["clinician"], "next": "/model-card"})
    assert back.headers["location"] == "/model-card"
    away = client.post("/login", data={"token": service_tokens["clinician"], "next": "//evil.example/x"})
    assert away.headers["location"] == "/worklist"


def test_without_a_cookie_pages_redirect_to_login(app, service_tokens, service_case):
    client = _client(app, None, service_tokens)
    assert client.get("/").headers["location"] == "/worklist"
    for path in ("/worklist", f"/cases/{service_case['case_id']}", "/model-card"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next=%2F"), path


def test_worklist_lists_the_case_newest_first(clinician, service_case):
    response = clinician.get("/worklist")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert "script-src" not in response.headers["content-security-policy"]  # default-src 'none': no scripts
    assert 'data-testid="worklist-row"' in response.text
    assert service_case["patient_id"] in response.text
    assert f'href="/cases/{service_case["case_id"]}"' in response.text
    assert percent(service_case["patient"]["probability"]) in response.text
    assert f'band-{service_case["patient"]["band"]}' in response.text


def test_case_page_shows_risk_diagram_nodes_and_heat_maps(clinician, service_case, service_core):
    response = clinician.get(f"/cases/{service_case['case_id']}")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    html = response.text
    risk = re.search(r'data-testid="patient-risk">([^<]+)<', html).group(1)
    assert risk == percent(service_case["patient"]["probability"])
    assert '<svg' in html and 'data-testid="neck-diagram"' in html
    t = service_case["thresholds"]
    assert f"at or above {percent(t['youden'])} (Youden)" in html
    assert f"below {percent(t['rule_out_sens95'])} (rule-out at 95% sensitivity)" in html
    node = service_case["nodes"][0]["node_id"]
    img = re.search(rf'<img[^>]*data-testid="heatmap-{node}"[^>]*>', html).group(0)
    assert 'loading="lazy"' in img and f'/heatmaps/{node}.png' in img and 'alt="Grad-CAM heat map' in img
    assert service_core.bundle.sha256[:12] in html and "Decision support, not a diagnosis" in html
    assert 'href="/model-card"' in html and 'data-testid="other-bundle"' not in html
    picture = clinician.get(re.search(r'src="([^"]+)"', img).group(1))  # the cookie is enough for the picture
    assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")


def test_case_page_names_the_patient_in_the_audit(clinician, service_case, service_core):
    clinician.get(f"/cases/{service_case['case_id']}")
    rows = service_core.audit.rows(patient_id=service_case["patient_id"], limit=50)
    assert any(r.get("case_id") == service_case["case_id"] and r.get("user") == "dr.a" for r in rows)


def test_key_frames_render_when_present_and_only_from_this_site(clinician, service_case, service_core, monkeypatch):
    result = dict(service_case, key_frames=[{"node_id": "N1", "frame": 7, "png": "/api/v1/x/7.png"},
                                            {"node_id": "N1", "frame": 9, "png": "https://evil.example/9.png"}])
    # the store is shared with other tests: show the changed result without writing it
    monkeypatch.setattr(service_core.store, "result", lambda case_id: result)
    html = clinician.get(f"/cases/{service_case['case_id']}").text
    assert 'data-testid="key-frame-N1-7"' in html and 'src="/api/v1/x/7.png"' in html
    assert "evil.example" not in html


def test_wrong_role_gets_a_403_page(app, service_tokens, service_case):
    client = _client(app, "integration", service_tokens)
    for path in ("/worklist", f"/cases/{service_case['case_id']}"):
        response = client.get(path)
        assert response.status_code == 403 and "text/html" in response.headers["content-type"]
        assert 'data-testid="error-403"' in response.text and service_case["patient_id"] not in response.text
    assert client.get("/model-card").status_code == 200  # every role may read the model card


def test_unknown_case_is_a_404_page(clinician):
    for case_id in ("c-20000101-0000000000", "..etc"):  # unknown; not even a case id
        response = clinician.get(f"/cases/{case_id}")
        assert response.status_code == 404 and 'data-testid="error-404"' in response.text


def test_model_card_page_renders_markdown_thresholds_and_calibration(clinician, service_core):
    html = clinician.get("/model-card").text
    assert "<h2>LymphCast model card</h2>" in html and "<li>" in html and "<code>" in html
    assert 'data-testid="model-thresholds"' in html and 'data-testid="model-calibration"' in html
    assert "95% CI" in html and percent(service_core.bundle.manifest["thresholds"]["youden"]) in html


def test_markdown_renderer_escapes_before_formatting():
    html = str(markdown_html("# Title <b>\n\nSome *text* with `a<b>` and\na second line.\n\n- one\n  more\n- two"))
    assert "<h2>Title &lt;b&gt;</h2>" in html
    assert "<p>Some *text* with <code>a&lt;b&gt;</code> and a second line.</p>" in html
    assert "<ul><li>one more</li><li>two</li></ul>" in html
    assert "<b>" not in html and "<script" not in str(markdown_html("<script>alert(1)</script>"))


# --- the neck diagram on its own -----------------------------------------------------------------------------------

THRESHOLDS = {"youden": 0.4, "rule_out_sens95": 0.1}
RESULT = {"patient_id": "P1", "thresholds": THRESHOLDS,
          "sides": [{"side": "left", "probability": 0.5}, {"side": "right", "probability": 0.02}],
          "levels": [{"side": "left", "level": "II", "probability": 0.05},
                     {"side": "left", "level": "III", "probability": 0.9}],
          "nodes": [{"node_id": "N<1>", "side": "left", "level": "III", "probability": 0.8}]}


def _fill(svg: str, side: str, level: str) -> str:
    return re.search(rf'fill="(#[0-9a-f]{{6}})"[^>]*data-testid="level-{side}-{level}"', svg).group(1)


def test_colour_runs_green_amber_red_with_the_thresholds():
    assert colour(0.0, THRESHOLDS) == colour(0.1, THRESHOLDS) == "#43a047"  # low band: green
    assert colour(0.25, THRESHOLDS) == "#ffb300"  # halfway between rule-out and Youden: amber
    assert colour(0.4, THRESHOLDS) == colour(1.0, THRESHOLDS) == "#e53935"  # high band: red
    assert colour(0.5) == "#ffb300"  # no thresholds: a plain probability scale
    assert colour(None) == colour(float("nan")) == GREY


def test_levels_are_coloured_by_their_risk_and_grey_when_unknown():
    svg = neck_svg(RESULT)
    assert _fill(svg, "left", "II") == colour(0.05, THRESHOLDS)
    assert _fill(svg, "left", "III") == colour(0.9, THRESHOLDS)
    assert _fill(svg, "left", "IV") == GREY and _fill(svg, "left", "V") == GREY  # the side has levels, not these
    for level in ("II", "III", "IV", "V"):  # the right side has no level risks: its side risk colours them
        assert _fill(svg, "right", level) == colour(0.02, THRESHOLDS)
    assert all(_fill(neck_svg({"patient_id": "P2"}), s, "III") == GREY for s in ("left", "right"))


def test_patient_left_is_on_the_viewers_right():
    svg = neck_svg(RESULT)
    x = {side: float(re.search(rf'<rect x="([\d.]+)"[^>]*data-testid="level-{side}-II"', svg).group(1))
         for side in ("left", "right")}
    assert x["left"] > x["right"]
    assert re.search(r">R</text>", svg) and re.search(r">L</text>", svg)
    assert "90%" in svg and "5.0%" in svg  # level labels carry the percentage


def test_diagram_text_is_escaped():
    svg = neck_svg({**RESULT, "patient_id": 'P"<script>'})
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "N&lt;1&gt;" in svg and "N<1>" not in svg
