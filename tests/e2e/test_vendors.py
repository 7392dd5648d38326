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
from incident.domain.incident import Severity
from incident.services import incidents as uc
from tests.conftest import T0
from tests.vendor_fakes.pagerduty import FakePagerDuty

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


async def _outbox_channels(settings: Settings) -> set[str]:
    app = await bootstrap.build(settings)
    try:
        return {m.channel for m in await app.outbox.messages()}
    finally:
        await app.close()
