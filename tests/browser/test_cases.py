"""Support cases in a real browser: the queue's response clock is coloured by the stylesheet
as its words say, every field of the case page is labelled, and the case page says why a
legal threat is at the CIO."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from tests.browser.conftest import COMMANDER_TOKEN, Service
from tests.browser.test_browser import DESKTOP, act, log_in, page_text, screenshot, wait_for

# dashboard.css: --sla-ok and --sla-ok-bg, as the browser computes them.
OK_TEXT = "rgba(52, 69, 99, 1)"
OK_BACKGROUND = "rgba(235, 236, 240, 1)"
# Form fields without a label, as the browser's own DOM sees them.
UNLABELLED = """
return Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))
  .filter(field => field.labels.length === 0 && !field.getAttribute('aria-label'))
  .map(field => field.name);
"""


def test_a_case_in_the_queue_and_on_its_page(
    service: Service, browser: Any, artifacts: Path
) -> None:
    from selenium.webdriver.common.by import By

    reference = f"ZD-{uuid.uuid4().hex[:8]}"
    opened = service.api(
        "POST",
        "/api/v1/cases",
        {
            "reference": reference,
            "customer_id": "cust-1",
            "summary": "Threatens to sue over a blocked payout",
            "plan": "pro",
            "flags": ["legal_threat"],
        },
    )
    case_id = opened["case"]["id"]
    browser.set_window_size(*DESKTOP)
    log_in(browser, service, COMMANDER_TOKEN)
    act(browser, "cases", lambda d: d.find_element(By.LINK_TEXT, "Support cases").click())
    wait_for(browser, lambda d: reference in page_text(d), "the case in its queue")
    pill = browser.find_element(By.CSS_SELECTOR, f"#case-row-{case_id} .sla")
    assert pill.text == "OK"  # just opened: the CIO's 2 business days have begun
    assert pill.value_of_css_property("color") == OK_TEXT
    assert pill.value_of_css_property("background-color") == OK_BACKGROUND
    screenshot(browser, DESKTOP, artifacts / "dashboard-cases.png")
    browser.set_window_size(*DESKTOP)

    act(browser, "open", lambda d: d.find_element(By.LINK_TEXT, f"CASE-{case_id}").click())
    wait_for(browser, lambda d: d.current_url.endswith(f"/ui/cases/{case_id}"), "the case page")
    assert "CIO because: legal threat" in browser.find_element(By.ID, "case-routing").text
    assert browser.execute_script(UNLABELLED) == []
    screenshot(browser, DESKTOP, artifacts / "dashboard-case.png")
