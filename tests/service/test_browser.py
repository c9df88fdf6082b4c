"""The web page in a real browser: headless Chromium signs in through the form, opens the worklist, clicks the
case and sees the risk, the neck diagram and a heat map that actually loaded (over the cookie, as a surgeon would).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")

pytestmark = pytest.mark.skipif(not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
                                reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, "
                                       "/usr/bin/chromedriver); CI installs them")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(service_core, service_case):
    """The app served by uvicorn on a free local port in a background thread; yields its base URL."""
    import uvicorn

    from lymphcast.service.app import create_app

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(service_core), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def test_surgeon_signs_in_opens_the_case_and_sees_risk_diagram_and_heat_map(server, browser, service_tokens,
                                                                          service_case):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from lymphcast.service.neck_diagram import percent

    wait = WebDriverWait(browser, 15)
    browser.get(f"{server}/worklist")  # not signed in: sent to the login form
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, '[data-testid="login-form"]')))
    assert "/login" in browser.current_url
    browser.find_element(By.ID, "token").send_keys(service_tokens["clinician"])
    browser.find_element(By.CSS_SELECTOR, '[data-testid="login-submit"]').click()

    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, '[data-testid="worklist-row"]')))
    assert browser.current_url.endswith("/worklist")
    # the page's scripts can never read the token
    assert browser.execute_script("return document.cookie") == ""
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, '[data-testid="worklist-row"]')
               if service_case["patient_id"] in r.text)
    row.find_element(By.CSS_SELECTOR, '[data-testid="case-link"]').click()

    risk = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, '[data-testid="patient-risk"]')))
    assert risk.text == percent(service_case["patient"]["probability"])
    assert browser.find_element(By.CSS_SELECTOR, '[data-testid="patient-id"]').text == service_case["patient_id"]
    diagram = browser.find_element(By.CSS_SELECTOR, 'svg[data-testid="neck-diagram"]')
    assert diagram.is_displayed() and diagram.size["width"] > 200
    assert len(diagram.find_elements(By.CSS_SELECTOR, "rect[data-testid^='level-']")) == 8

    node = service_case["nodes"][0]["node_id"]
    img = browser.find_element(By.CSS_SELECTOR, f'[data-testid="heatmap-{node}"]')
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", img)  # it loads lazily
    loaded = "return arguments[0].complete && arguments[0].naturalWidth > 0;"
    WebDriverWait(browser, 20).until(lambda _: browser.execute_script(loaded, img))
    assert browser.execute_script("return arguments[0].naturalWidth;", img) > 0
