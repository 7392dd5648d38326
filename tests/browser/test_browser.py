"""One incident through a real browser: the public status page shows it (screenshots at
phone and desktop widths), the commander logs into the dashboard, acknowledges it and posts
an update, and the public page then shows that update."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.browser.conftest import COMMANDER_TOKEN, Service

PHONE = (390, 844)
DESKTOP = (1280, 900)
WAIT = 10  # seconds: the service answers in milliseconds; this only bounds a failure


def wait_for(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = WAIT) -> Any:
    from selenium.common.exceptions import (
        StaleElementReferenceException,
        TimeoutException,
        WebDriverException,
    )
    from selenium.webdriver.support.ui import WebDriverWait

    # The dashboard swaps in fresh parts of the page as things change, and a form's answer
    # replaces the whole document: an element found a moment ago may be gone (Chrome says
    # so either way, stale or "does not belong to the document"); look again.
    def look(d: Any) -> Any:
        try:
            return condition(d)
        except WebDriverException as error:
            if "does not belong to the document" in str(error.msg):
                return False
            raise

    ignored = (StaleElementReferenceException,)
    try:
        return WebDriverWait(driver, timeout, 0.1, ignored).until(look)
    except TimeoutException:
        raise AssertionError(
            f"{what}: not seen within {timeout} s on {driver.current_url}:\n{page_text(driver)}"
        ) from None


def page_text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    text: str = driver.find_element(By.TAG_NAME, "body").text
    return text


def act(driver: Any, what: str, action: Callable[[Any], Any]) -> None:
    """Do something to an element, finding it again if the page replaced it meanwhile."""

    def attempt(d: Any) -> bool:
        action(d)
        return True

    wait_for(driver, attempt, what)


def shows(driver: Any, url: str, text: str) -> bool:
    driver.get(url)
    return text in page_text(driver)


def screenshot(driver: Any, size: tuple[int, int], path: Path) -> None:
    """The whole page as laid out at this width (not only the first screenful)."""
    width, height = size
    driver.set_window_size(width, height)
    full_height = driver.execute_script("return document.documentElement.scrollHeight")
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": full_height, "scale": 1},
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.stat().st_size > 10_000, f"{path} looks empty"


def test_status_page_dashboard_and_update_in_a_real_browser(
    service: Service, browser: Any, artifacts: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    declared = service.api(
        "POST",
        "/api/v1/incidents",
        {
            "title": "checkout-7f9 pods crash-looping (OOM)",
            "severity": "P2",
            "service": "checkout",
            "impact": "Some card payments fail",
            "components": {"api": "partial_outage"},
            "public_title": "Payments failing for some customers",
        },
    )
    incident_id = declared["incident"]["id"]

    # --- the public page shows the incident, at phone and desktop widths -------------------
    browser.set_window_size(*PHONE)
    # The page is rebuilt in the background after a change: reload until it shows.
    wait_for(
        browser,
        lambda d: shows(d, f"{service.url}/status", "Payments failing for some customers"),
        "the incident on the status page",
    )
    text = page_text(browser)
    assert "Partial outage" in text or "Partial System Outage" in text
    assert "crash-looping" not in text  # the internal title stays internal
    api_row = browser.find_element(
        By.XPATH, "//*[contains(@class,'component')][.//*[text()='API']]"
    )
    assert "Partial outage" in api_row.text
    phone_width = browser.execute_script("return document.documentElement.scrollWidth")
    assert phone_width <= PHONE[0], f"the page scrolls sideways on a phone: {phone_width}px"
    screenshot(browser, PHONE, artifacts / "status-phone.png")
    screenshot(browser, DESKTOP, artifacts / "status-desktop.png")

    # --- the dashboard: log in, open the incident, acknowledge, post an update -------------
    browser.set_window_size(*DESKTOP)
    browser.get(f"{service.url}/ui")
    wait_for(browser, lambda d: "/ui/login" in d.current_url, "the login page")
    browser.find_element(By.ID, "token").send_keys("not-the-right-token-000")
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(browser, lambda d: "not one this service knows" in page_text(d), "the refusal")
    browser.find_element(By.ID, "token").send_keys(COMMANDER_TOKEN)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(browser, lambda d: "Open incidents" in page_text(d), "the dashboard")
    overview = page_text(browser)
    assert f"INC-{incident_id}" in overview and "Not acknowledged" in overview
    assert "crash-looping" in overview  # the commanders' screen shows the internal title

    # The open page follows the service without a reload: a second incident appears.
    second = service.api("POST", "/api/v1/incidents", {"title": "Search is slow", "severity": "P4"})
    wait_for(
        browser,
        lambda d: f"INC-{second['incident']['id']}" in page_text(d),
        "the new incident on the open dashboard",
    )
    screenshot(browser, DESKTOP, artifacts / "dashboard-overview.png")

    act(browser, "open", lambda d: d.find_element(By.LINK_TEXT, f"INC-{incident_id}").click())
    wait_for(browser, lambda d: d.current_url.endswith(f"/ui/incidents/{incident_id}"), "the page")
    # The script keeps the countdowns current: to the second, which the server never writes.
    wait_for(
        browser,
        lambda d: any(
            re.fullmatch(r"in (\d+m \d\ds|\d+s)", t.text)
            for t in d.find_elements(By.CSS_SELECTOR, "time[data-countdown]")
        ),
        "a live countdown",
    )
    act(browser, "acknowledge", lambda d: d.find_element(By.ID, "acknowledge").click())
    wait_for(browser, lambda d: "Acknowledged: re-paging has stopped." in page_text(d), "the ack")
    wait_for(
        browser,
        lambda d: "acknowledged by casey" in d.find_element(By.ID, "timeline").text,
        "the acknowledgement on the timeline",
    )

    message = f"We have found the cause and are rolling out a fix ({uuid.uuid4().hex[:8]})."
    act(browser, "type", lambda d: d.find_element(By.ID, "update-message").send_keys(message))
    act(
        browser,
        "choose",
        lambda d: Select(d.find_element(By.ID, "update-status")).select_by_value("identified"),
    )
    act(
        browser,
        "post",
        lambda d: d.find_element(By.CSS_SELECTOR, "#update-form button[type=submit]").click(),
    )
    wait_for(browser, lambda d: "Customer update posted." in page_text(d), "the update posted")
    wait_for(
        browser,
        lambda d: message in d.find_element(By.ID, "timeline").text,
        "the update on the timeline",
    )
    screenshot(browser, DESKTOP, artifacts / "dashboard-incident.png")
    screenshot(browser, PHONE, artifacts / "dashboard-incident-phone.png")

    # --- the public page now shows the update ----------------------------------------------
    browser.set_window_size(*DESKTOP)

    wait_for(browser, lambda d: shows(d, f"{service.url}/status", message), "the update on /status")
    assert "Identified" in page_text(browser)
    screenshot(browser, DESKTOP, artifacts / "status-after-update.png")
