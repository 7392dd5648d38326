"""Incidents through a real browser: the public status page shows one (screenshots at phone
and desktop widths), the commander logs into the dashboard, acknowledges it and posts an
update, and the public page then shows that update; an incident declared from the
dashboard's form and cancelled as a false alarm; the history searched and filtered."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.browser.conftest import COMMANDER_TOKEN, VIEWER_TOKEN, Service

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


def log_in(driver: Any, service: Service, token: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{service.url}/ui")
    wait_for(driver, lambda d: "/ui/login" in d.current_url, "the login page")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(driver, lambda d: "Open incidents" in page_text(d), "the dashboard")


def test_declare_from_the_dashboard_then_cancel_as_a_false_alarm(
    service: Service, browser: Any, artifacts: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    tag = uuid.uuid4().hex[:8]
    title = f"Checkout pods restarting ({tag})"
    public_title = f"Checkout errors ({tag})"
    browser.set_window_size(*DESKTOP)
    log_in(browser, service, COMMANDER_TOKEN)
    act(browser, "declare", lambda d: d.find_element(By.LINK_TEXT, "Declare an incident").click())
    wait_for(browser, lambda d: d.current_url.endswith("/ui/declare"), "the declare form")

    browser.find_element(By.ID, "declare-title").send_keys(title)
    browser.find_element(By.ID, "declare-severity-p2").click()
    browser.find_element(By.ID, "declare-service").send_keys("checkout")
    browser.find_element(By.ID, "declare-impact").send_keys("Some card payments fail")
    Select(browser.find_element(By.ID, "declare-component-api")).select_by_value("partial_outage")
    browser.find_element(By.ID, "declare-public-title").send_keys(public_title)
    screenshot(browser, DESKTOP, artifacts / "dashboard-declare.png")
    browser.set_window_size(*DESKTOP)
    browser.find_element(By.CSS_SELECTOR, "#declare-form button[type=submit]").click()
    wait_for(
        browser,
        lambda d: "Incident declared; its playbook has started." in page_text(d),
        "the declared incident's page",
    )
    found = re.search(r"/ui/incidents/(\d+)$", browser.current_url.split("?")[0])
    assert found, browser.current_url
    incident_id = int(found.group(1))
    summary = browser.find_element(By.ID, "summary").text
    assert "P2" in summary and "Partial outage" in summary and public_title in summary
    incident = service.api("GET", f"/api/v1/incidents/{incident_id}")["incident"]
    assert incident["title"] == title and incident["declared_by"] == "casey"
    assert incident["components"] == {"api": "partial_outage"}
    # Customers see it on the status page.
    wait_for(
        browser,
        lambda d: shows(d, f"{service.url}/status", public_title),
        "the new incident on the status page",
    )

    # --- a false alarm after all: cancel it, confirming that the playbook stops -----------
    browser.get(f"{service.url}/ui/incidents/{incident_id}")
    act(
        browser,
        "open the cancel form",
        lambda d: d.find_element(By.CSS_SELECTOR, "#fold-cancel > summary").click(),
    )
    wait_for(
        browser,
        lambda d: d.find_element(By.ID, "cancel-warning").is_displayed(),
        "the warning",
    )
    assert "This stops the playbook." in browser.find_element(By.ID, "cancel-warning").text
    act(
        browser,
        "choose false alarm",
        lambda d: d.find_element(By.ID, "cancel-reason-false_alarm").click(),
    )
    act(
        browser,
        "note",
        lambda d: d.find_element(By.ID, "cancel-note").send_keys("A test alert left enabled"),
    )
    # Without the confirmation the browser itself does not send the form.
    act(
        browser,
        "submit unconfirmed",
        lambda d: d.find_element(By.CSS_SELECTOR, "#cancel-form button[type=submit]").click(),
    )
    assert browser.current_url.endswith(f"/ui/incidents/{incident_id}")
    assert service.api("GET", f"/api/v1/incidents/{incident_id}")["incident"]["status"] != (
        "cancelled"
    )
    act(browser, "confirm", lambda d: d.find_element(By.ID, "cancel-confirm").click())
    act(
        browser,
        "cancel",
        lambda d: d.find_element(By.CSS_SELECTOR, "#cancel-form button[type=submit]").click(),
    )
    wait_for(
        browser,
        lambda d: "Cancelled. The playbook has stopped" in page_text(d),
        "the cancellation",
    )
    summary = browser.find_element(By.ID, "summary").text
    assert "as a false alarm: A test alert left enabled" in summary
    assert "Cancelled" in summary
    wait_for(
        browser,
        lambda d: "cancelled as a false alarm" in d.find_element(By.ID, "timeline").text,
        "the cancellation on the timeline",
    )
    assert not browser.find_elements(By.ID, "fold-cancel")
    assert service.api("GET", f"/api/v1/incidents/{incident_id}")["incident"]["status"] == (
        "cancelled"
    )
    screenshot(browser, DESKTOP, artifacts / "dashboard-cancelled.png")
    # ... and the status page withdraws it.
    browser.set_window_size(*DESKTOP)
    wait_for(
        browser,
        lambda d: not shows(d, f"{service.url}/status", public_title),
        "the incident withdrawn from the status page",
    )


def test_search_the_history(service: Service, browser: Any, artifacts: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    tag = uuid.uuid4().hex[:8]
    made = {}
    for name, severity in (("alpha", "P2"), ("beta", "P3"), ("gamma", "P3")):
        title = f"Search {tag} {name}" if name != "gamma" else f"Unrelated {tag}"
        body = service.api("POST", "/api/v1/incidents", {"title": title, "severity": severity})
        made[name] = body["incident"]["id"]
    service.api("POST", f"/api/v1/incidents/{made['alpha']}/resolve", {"summary": "Fixed"})
    service.api("POST", f"/api/v1/incidents/{made['beta']}/cancel", {"reason": "declined"})
    service.api("POST", f"/api/v1/incidents/{made['gamma']}/resolve", {"summary": "Fixed"})

    browser.set_window_size(*DESKTOP)
    log_in(browser, service, VIEWER_TOKEN)
    assert not browser.find_elements(By.LINK_TEXT, "Declare")  # a viewer declares nothing
    act(browser, "history", lambda d: d.find_element(By.LINK_TEXT, "History").click())
    wait_for(browser, lambda d: "Past incidents" in page_text(d), "the history page")

    def listed(d: Any) -> list[str]:
        return [a.text for a in d.find_elements(By.CSS_SELECTOR, ".history-table td a.ref")]

    search = browser.find_element(By.ID, "history-q")
    search.send_keys(f"SEARCH {tag.upper()}")  # any case
    search.submit()
    wait_for(browser, lambda d: "q=SEARCH" in d.current_url, "the search")
    assert listed(browser) == [f"INC-{made['beta']}", f"INC-{made['alpha']}"]  # newest first
    results = browser.find_element(By.ID, "results").text
    assert "declined (not an incident)" in results and f"Unrelated {tag}" not in results

    Select(browser.find_element(By.ID, "history-status")).select_by_value("resolved")
    browser.find_element(By.CSS_SELECTOR, ".search-form button[type=submit]").click()
    wait_for(browser, lambda d: "status=resolved" in d.current_url, "the filtered search")
    assert listed(browser) == [f"INC-{made['alpha']}"]
    assert (
        browser.find_element(By.ID, "history-q").get_attribute("value") == f"SEARCH {tag.upper()}"
    )
    screenshot(browser, DESKTOP, artifacts / "dashboard-history.png")
    screenshot(browser, PHONE, artifacts / "dashboard-history-phone.png")
    browser.set_window_size(*DESKTOP)

    # A reference finds its incident, whatever its title.
    search = browser.find_element(By.ID, "history-q")
    search.clear()
    search.send_keys(f"inc-{made['gamma']}")
    Select(browser.find_element(By.ID, "history-status")).select_by_value("")
    browser.find_element(By.CSS_SELECTOR, ".search-form button[type=submit]").click()
    wait_for(browser, lambda d: listed(d) == [f"INC-{made['gamma']}"], "the incident by reference")
    act(browser, "open", lambda d: d.find_element(By.LINK_TEXT, f"INC-{made['gamma']}").click())
    wait_for(
        browser,
        lambda d: d.current_url.endswith(f"/ui/incidents/{made['gamma']}"),
        "the incident's page",
    )
    assert "Resolved" in browser.find_element(By.ID, "summary").text
