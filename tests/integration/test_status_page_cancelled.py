"""The public status page over real HTTP: a cancelled incident withdrawn (the default: gone
from the page, the JSON API, the feeds and the uptime) or, as configured, kept as resolved
with no impact; and what browsers and validators expect of the public side (a content
security policy, CORS preflights, the root, a favicon, valid times)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator

import pytest

from incident.clock import FakeClock
from incident.config import Settings
from incident.testing import RecordingEffects
from tests.integration.test_status_page import (
    Client,
    auth,
    call,
    get_json,
    page_settings,  # noqa: F401 (a fixture)
    settled,
    snapshot,
)
from tests.serving import serving


@pytest.fixture(params=["withdraw", "no_impact"])
async def client(
    request: pytest.FixtureRequest,
    page_settings: Settings,  # noqa: F811 (the fixture imported above)
    clock: FakeClock,
    vendor: RecordingEffects,
) -> AsyncIterator[Client]:
    configured = dataclasses.replace(page_settings, cancelled_incidents=request.param)
    async with serving(configured, clock, vendor) as test_client:
        snapshot(test_client).min_interval = 0
        snapshot(test_client).spacing = 0
        yield test_client


async def _page_with_a_false_alarm(client: Client) -> tuple[int, int]:
    """A real outage and a false alarm, both posted to the page; then the false alarm is
    cancelled."""
    real = await call(
        client,
        "POST",
        "/incidents",
        {
            "title": "db-7 disk full",
            "severity": "P1",
            "components": {"api": "major_outage"},
            "public_title": "API errors",
        },
    )
    alarm = await call(
        client,
        "POST",
        "/incidents",
        {
            "title": "synthetic check flapping",
            "severity": "P2",
            "components": {"checkout": "major_outage"},
            "public_title": "Checkout unavailable",
        },
    )
    alarm_id = alarm["incident"]["id"]
    await call(client, "POST", f"/incidents/{alarm_id}/updates", {"message": "Looking into it."})
    await settled(client)
    summary = await get_json(client, "/api/v2/summary.json")
    assert {i["name"] for i in summary["incidents"]} == {"API errors", "Checkout unavailable"}
    response = await client.post(
        f"/api/v1/incidents/{alarm_id}/cancel",
        json={"reason": "false_alarm", "note": "the check was misconfigured"},
        headers=auth(),
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["incident"]["status"] == "cancelled"
    assert body["incident"]["cancellation"] == "false_alarm"
    await settled(client)
    return real["incident"]["id"], alarm_id


async def test_a_cancelled_incident_is_withdrawn_or_shown_with_no_impact(
    client: Client,
) -> None:
    mode = snapshot(client).rt.cancelled_incidents
    _, alarm_id = await _page_with_a_false_alarm(client)
    summary = await get_json(client, "/api/v2/summary.json")
    components = {c["id"]: c["status"] for c in summary["components"]}
    # Either way, checkout is back to operational at once: it was never really down.
    assert components["checkout"] == "operational"
    assert components["api"] == "major_outage"
    assert [i["name"] for i in summary["incidents"]] == ["API errors"]  # unresolved only
    everything = await get_json(client, "/api/v2/incidents.json")
    names = {i["name"]: i for i in everything["incidents"]}
    html = await (await client.get("/status")).text()
    feed = await (await client.get("/history.atom")).text()
    if mode == "withdraw":
        assert set(names) == {"API errors"}
        assert "Checkout unavailable" not in html and "Checkout unavailable" not in feed
        page = await client.get(f"/status/incidents/{alarm_id}")
        assert page.status == 404
    else:
        shown = names["Checkout unavailable"]
        assert shown["status"] == "resolved" and shown["impact"] == "none"
        assert shown["resolved_at"] is not None
        assert "no impact" in shown["incident_updates"][0]["body"]
        assert "Checkout unavailable" in html


# --- what browsers and validators expect of the public side ---------------------------------


async def test_public_headers_preflight_root_and_favicon(
    page_settings: Settings,  # noqa: F811
    clock: FakeClock,
    vendor: RecordingEffects,
) -> None:
    async with serving(page_settings, clock, vendor) as client:
        page = await client.get("/status")
        policy = page.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src" not in policy
        assert "frame-ancestors 'none'" in policy
        html = await page.text()
        # <time datetime> to the second: HTML's time element takes no microseconds.
        stamps = re.findall(r'datetime="([^"]+)"', html)
        assert stamps and all(
            re.fullmatch(r"\d{4}-\d\d-\d\d(T\d\d:\d\d:\d\dZ)?", s) for s in stamps
        )
        for path in ("/api/v2/summary.json", "/status/api/v2/status.json", "/history.atom"):
            preflight = await client.options(
                path,
                headers={
                    "Origin": "https://widgets.example.com",
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "if-none-match",
                },
            )
            assert preflight.status == 204, path
            assert preflight.headers["Access-Control-Allow-Origin"] == "*"
            assert "If-None-Match" in preflight.headers["Access-Control-Allow-Headers"]
            assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
        root = await client.get("/", allow_redirects=False)
        assert root.status == 302 and root.headers["Location"] == "/status"
        icon = await client.get("/favicon.ico")
        assert icon.status == 200 and icon.content_type == "image/svg+xml"
        assert (await icon.read()).startswith(b"<svg")
