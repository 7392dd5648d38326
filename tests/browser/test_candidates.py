"""An incident candidate in a real browser: three customers' reports of one stuck transfer
are proposed as an incident; the commander finds it under Incident candidates, reads its
evidence (every field labelled, the suggested severity chosen) and declares it from its
page, landing on the incident's page with the cases linked."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

from tests.browser.conftest import COMMANDER_TOKEN, Service
from tests.browser.test_browser import DESKTOP, PHONE, act, log_in, page_text, screenshot, wait_for
from tests.browser.test_cases import UNLABELLED
from tests.integration.test_api_candidates import stuck_case

PROPOSED_WITHIN = 30.0  # seconds the served engine may take to compare the cases


def propose(service: Service, component: str) -> int:
    """Three Pro customers' cases on `component` (a cluster of its own in the shared
    service); the candidate proposed for them."""
    for n in range(3):
        body = {**stuck_case(n), "component": component, "reference": f"{component}-{n}"}
        service.api("POST", "/api/v1/cases", body)
    deadline = time.monotonic() + PROPOSED_WITHIN
    while time.monotonic() < deadline:
        for candidate in service.api("GET", "/api/v1/candidates?status=proposed")["candidates"]:
            shown = service.api("GET", f"/api/v1/candidates/{candidate['id']}")
            if shown["signature"]["component"] == component:
                number: int = candidate["id"]
                return number
        time.sleep(0.1)
    raise AssertionError(f"no candidate for {component} within {PROPOSED_WITHIN} s")


def test_a_candidate_is_found_read_and_declared(
    service: Service, browser: Any, artifacts: Path
) -> None:
    from selenium.webdriver.common.by import By

    number = propose(service, f"bridge-{uuid.uuid4().hex[:8]}")
    browser.set_window_size(*DESKTOP)
    log_in(browser, service, COMMANDER_TOKEN)
    act(
        browser, "candidates", lambda d: d.find_element(By.LINK_TEXT, "Incident candidates").click()
    )
    wait_for(browser, lambda d: f"CAND-{number}" in page_text(d), "the candidate in the list")
    act(browser, "open", lambda d: d.find_element(By.LINK_TEXT, f"CAND-{number}").click())
    wait_for(browser, lambda d: d.current_url.endswith(f"/ui/candidates/{number}"), "its page")
    summary = browser.find_element(By.ID, "candidate-summary").text
    assert "affects multiple users (3 customers)" in summary
    assert browser.find_element(By.ID, "declare-severity-p2").is_selected()  # the suggestion
    assert browser.execute_script(UNLABELLED) == []
    screenshot(browser, DESKTOP, artifacts / "dashboard-candidate.png")
    screenshot(browser, PHONE, artifacts / "dashboard-candidate-phone.png")
    browser.set_window_size(*DESKTOP)

    browser.find_element(By.ID, "declare-title").send_keys("Bridge relayer stuck")
    act(
        browser,
        "declare",
        lambda d: d.find_element(By.CSS_SELECTOR, "#declare-form button[type=submit]").click(),
    )
    wait_for(
        browser,
        lambda d: re.search(r"/ui/incidents/\d+\?done=candidate$", d.current_url),
        "the incident",
    )
    text = page_text(browser)
    assert "Bridge relayer stuck" in text and "every case of it is linked" in text
