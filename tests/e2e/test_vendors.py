"""Whole incidents through bootstrap's own wiring, with vendors configured by settings and
served by strict local fakes."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import trustme

from incident import bootstrap
from incident.clock import FakeClock
from incident.config import Settings
from incident.domain.incident import Severity, Status
from incident.services import incidents as uc
from tests.conftest import T0
from tests.vendor_fakes.pagerduty import FakePagerDuty
from tests.vendor_fakes.statuspage import StatuspageFake

ROUTING_KEY = "R0ut1ngK3yR0ut1ngK3yR0ut1ngK3y32"
API_TOKEN = "u+T0kenT0kenT0kenT0ken"
M = timedelta(minutes=1)


@pytest.fixture
async def pagerduty() -> AsyncIterator[FakePagerDuty]:
    async with FakePagerDuty(ca=trustme.CA(), routing_key=ROUTING_KEY, api_token=API_TOKEN) as fake:
        yield fake
    assert fake.rejected == [], [s.problems for s in fake.rejected]


async def run_until(app: bootstrap.Container, clock: FakeClock, until: timedelta) -> None:
    end = T0 + until
    while True:
        await app.scheduler.tick(clock.now())
        next_at = await app.store.run(lambda tx: tx.next_run_at())
        if next_at is None or next_at > end:
            break
        clock.set(max(clock.now(), next_at))
    clock.set(max(clock.now(), end))
    await app.scheduler.tick(clock.now())


async def test_a_p1_pages_once_through_pagerduty_and_is_acknowledged_and_resolved_there(
    settings: Settings, clock: FakeClock, pagerduty: FakePagerDuty
) -> None:
    configured = dataclasses.replace(
        settings,
        pagerduty_routing_key=ROUTING_KEY,
        pagerduty_events_url=pagerduty.url,
        pagerduty_api_token=API_TOKEN,
        pagerduty_api_url=pagerduty.url,
    )
    app = await bootstrap.build(configured, clock=clock, vendor_tls=pagerduty.client_ssl_context())
    try:
        assert app.live["pager"].startswith("PagerDuty")
        incident, _ = await uc.declare_incident(
            app.runtime, title="Checkout API down", severity=Severity.P1, by="dana"
        )
        assert incident.id is not None
        # Nobody acknowledges for 20 minutes: the re-pages join the one alert.
        await run_until(app, clock, 20 * M)
        await uc.acknowledge_incident(app.runtime, incident.id, by="dana")
        await run_until(app, clock, 60 * M)
        await uc.resolve_incident(app.runtime, incident.id, summary="rolled back", by="dana")
        await run_until(app, clock, 70 * M)
    finally:
        await app.close()
    alerts = pagerduty.all_alerts()
    assert len(alerts) == 1, alerts
    alert = alerts[0]
    assert alert.dedup_key == f"inc-{incident.id}/tier3"
    assert alert.events.count("trigger") >= 2  # the first page and at least one re-page
    assert alert.statuses[-1] == "resolved" and "acknowledged" in alert.statuses
    # The outbox kept no pages: PagerDuty served the port.
    outbox_rows = await _outbox_channels(configured)
    assert "page" not in outbox_rows


async def test_a_p1_keeps_one_statuspage_incident_following_it_to_resolved(
    settings: Settings, clock: FakeClock
) -> None:
    async with StatuspageFake(
        components={"cmp-checkout": "Checkout"}, clock=clock, min_interval=1.0
    ) as statuspage:
        configured = dataclasses.replace(
            settings,
            statuspage_api_key=statuspage.api_key,
            statuspage_page_id=statuspage.page_id,
            statuspage_api_url=statuspage.url,
            statuspage_components={"checkout": "cmp-checkout"},
        )
        app = await bootstrap.build(configured, clock=clock)
        try:
            assert app.live["status_page"].startswith("Statuspage")
            incident, _ = await uc.declare_incident(
                app.runtime,
                title="Checkout API down",
                severity=Severity.P1,
                by="dana",
                service="checkout",
            )
            assert incident.id is not None
            await run_until(app, clock, 10 * M)
            await uc.post_customer_update(
                app.runtime,
                incident.id,
                message="We found the cause and are rolling back.",
                status=Status.IDENTIFIED,
                by="dana",
            )
            await run_until(app, clock, 40 * M)
            await uc.resolve_incident(app.runtime, incident.id, summary="rolled back", by="dana")
            await run_until(app, clock, 90 * M)
        finally:
            await app.close()
        assert statuspage.invalid == [] and statuspage.problems == []
        assert statuspage.rate_limited == 0  # the adapter queued instead of being refused
        assert len(statuspage.incidents) == 1
        (shown,) = statuspage.incidents.values()
        assert shown.name == "Checkout API down"
        assert shown.statuses[0] == "investigating"
        assert "identified" in shown.statuses and shown.statuses[-1] == "resolved"
        assert any("We found the cause and are rolling back." in b for b in shown.bodies)
        assert statuspage.components["cmp-checkout"].status == "operational"
        outages = [
            change["new_status"]
            for update in shown.updates
            for change in update.affected_components
        ]
        assert "major_outage" in outages


async def _outbox_channels(settings: Settings) -> set[str]:
    app = await bootstrap.build(settings)
    try:
        return {m.channel for m in await app.outbox.messages()}
    finally:
        await app.close()
