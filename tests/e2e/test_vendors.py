"""Whole incidents through bootstrap's own wiring, with vendors configured by settings and
served by strict local fakes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme

from incident import bootstrap
from incident.clock import FakeClock
from incident.config import Settings
from incident.domain.incident import Role, Severity, Status
from incident.services import incidents as uc
from incident.testing import run_until
from tests.conftest import T0
from tests.vendor_fakes.pagerduty import FakePagerDuty, Person, Shift
from tests.vendor_fakes.slack import FakeSlack, User
from tests.vendor_fakes.statuspage import StatuspageFake

ROUTING_KEY = "R0ut1ngK3yR0ut1ngK3yR0ut1ngK3y32"
API_TOKEN = "u+T0kenT0kenT0kenT0ken"
M = timedelta(minutes=1)


@pytest.fixture
async def pagerduty() -> AsyncIterator[FakePagerDuty]:
    async with FakePagerDuty(ca=trustme.CA(), routing_key=ROUTING_KEY, api_token=API_TOKEN) as fake:
        yield fake
    assert fake.rejected == [], [s.problems for s in fake.rejected]


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
        await run_until(app, clock, T0 + 20 * M)
        await uc.acknowledge_incident(app.runtime, incident.id, by="dana")
        await run_until(app, clock, T0 + 60 * M)
        await uc.resolve_incident(app.runtime, incident.id, summary="rolled back", by="dana")
        await run_until(app, clock, T0 + 70 * M)
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
            await run_until(app, clock, T0 + 10 * M)
            await uc.post_customer_update(
                app.runtime,
                incident.id,
                message="We found the cause and are rolling back.",
                status=Status.IDENTIFIED,
                by="dana",
            )
            await run_until(app, clock, T0 + 40 * M)
            await uc.resolve_incident(app.runtime, incident.id, summary="rolled back", by="dana")
            await run_until(app, clock, T0 + 90 * M)
        finally:
            await app.close()
        assert statuspage.invalid == [] and statuspage.problems == []
        assert statuspage.rate_limited == 0  # the adapter queued instead of being refused
        assert len(statuspage.incidents) == 1
        (shown,) = statuspage.incidents.values()
        assert shown.name == "Service disruption"  # the public name, never the title
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


BOT_TOKEN = "xoxb-0000-1111-e2etoken"
AUDIENCE_CHANNELS = (
    "support-managers",
    "support",
    "support-leads",
    "eng-leads",
    "incident-management",
    "exec-escalations",
    "account-management",
)


async def run_p1_to_rca(app: bootstrap.Container, clock: FakeClock) -> int:
    """A P1 from declaration to its RCA: acknowledged, updated, resolved, RCA done."""
    incident, _ = await uc.declare_incident(
        app.runtime,
        title="Checkout API down",
        severity=Severity.P1,
        by="dana",
        service="checkout",
    )
    assert incident.id is not None
    await uc.assign_role(app.runtime, incident.id, Role.COMMANDER, "<@UDANA0001>", by="dana")
    await run_until(app, clock, T0 + 6 * M)
    await uc.acknowledge_incident(app.runtime, incident.id, by="dana")
    await run_until(app, clock, T0 + 25 * M)
    await uc.post_customer_update(
        app.runtime,
        incident.id,
        message="We found the cause and are rolling back.",
        status=Status.IDENTIFIED,
        by="dana",
    )
    await run_until(app, clock, T0 + 5 * 60 * M)
    await uc.resolve_incident(app.runtime, incident.id, summary="Rolled back.", by="dana")
    await run_until(app, clock, T0 + 30 * 60 * M)
    await uc.complete_rca(app.runtime, incident.id, link="https://wiki/rca/1", by="dana")
    await run_until(app, clock, T0 + 60 * 60 * M)
    return incident.id


@dataclasses.dataclass
class AllVendors:
    """Fresh fakes of PagerDuty (Ana on call for tier 3), Slack (Dana and Ana, the bot in
    every audience channel) and Statuspage (one Checkout component), and the settings that
    point the service at them."""

    pagerduty: FakePagerDuty
    slack: FakeSlack
    statuspage: StatuspageFake

    def settings(self, database: Path, **extra: Any) -> Settings:
        return Settings(
            database_url=f"sqlite:///{database}",
            pagerduty_routing_key=ROUTING_KEY,
            pagerduty_events_url=self.pagerduty.url,
            pagerduty_api_token=API_TOKEN,
            pagerduty_api_url=self.pagerduty.url,
            pagerduty_escalation_policies={"tier3": "PTIER3"},
            slack_bot_token=BOT_TOKEN,
            slack_api_url=self.slack.api_url,
            statuspage_api_key=self.statuspage.api_key,
            statuspage_page_id=self.statuspage.page_id,
            statuspage_api_url=self.statuspage.url,
            statuspage_components={"checkout": "cmp-checkout"},
            **extra,
        )


@contextlib.asynccontextmanager
async def all_vendors(clock: FakeClock) -> AsyncIterator[AllVendors]:
    pagerduty = FakePagerDuty(
        ca=trustme.CA(),
        routing_key=ROUTING_KEY,
        api_token=API_TOKEN,
        roster=[Shift(Person("PANA001", "Ana Oncall", "ana@example.com"), "PTIER3")],
    )
    slack = FakeSlack(
        bot_token=BOT_TOKEN,
        users=[
            User("UDANA0001", "dana", "dana@example.com"),
            User("UANA00001", "ana", "ana@example.com"),
        ],
        clock=clock,
    )
    statuspage = StatuspageFake(components={"cmp-checkout": "Checkout"}, clock=clock)
    async with pagerduty, slack, statuspage:
        for channel in AUDIENCE_CHANNELS:
            slack.add_channel(channel, members=[slack.bot_user])
        yield AllVendors(pagerduty, slack, statuspage)


async def run_against_fakes(
    tmp_path: Path, name: str, *, faults: bool
) -> tuple[dict[str, Any], list[str]]:
    """A P1 from declaration to RCA against fresh fakes of all three vendors; returns what
    the vendors ended with (comparable between runs) and the steps that failed for good."""
    clock = FakeClock(T0)
    async with all_vendors(clock) as vendors:
        pagerduty, slack, statuspage = vendors.pagerduty, vendors.slack, vendors.statuspage
        if faults:
            # 429 bursts, 500s, connections cut after the vendor acted, malformed answers,
            # and Statuspage down for the first ten minutes.
            pagerduty.rate_limit(3, retry_after=2)
            pagerduty.fail(5, status=500)
            pagerduty.drop(1, took_effect=True)
            slack.rate_limit(3, retry_after=1)
            slack.fail(4, status=500)
            slack.drop(2, took_effect=True)
            slack.malformed(1)
            statuspage.down_for(10 * 60)
            statuspage.rate_limit_next(2)
            statuspage.fail_next(2, process=True)
        settings = vendors.settings(tmp_path / f"{name}.db")
        app = await bootstrap.build(
            settings, clock=clock, vendor_tls=pagerduty.client_ssl_context()
        )
        try:
            incident_id = await run_p1_to_rca(app, clock)
            view = await uc.get_incident(app.runtime, incident_id)
        finally:
            await app.close()
        assert pagerduty.rejected == [] and slack.rejected == []
        assert statuspage.invalid == [] and statuspage.problems == []
        (shown,) = statuspage.incidents.values()
        state = {
            "pagerduty": sorted((a.dedup_key, a.status) for a in pagerduty.all_alerts()),
            "slack rooms": sorted(
                (c.name, tuple(sorted(c.members)), c.topic, tuple(b["title"] for b in c.bookmarks))
                for c in slack.created_by_bot()
            ),
            "slack posts": {
                c.name: sorted(m["metadata"]["event_payload"]["key"] for m in c.posts())
                for c in slack.channels.values()
                if not c.is_im
            },
            # Where the incident ended, and that the cause was shown. (During an outage
            # the page shows the status as it is when the vendor is back, so the early
            # history of the two runs may differ.)
            "statuspage": (
                len(statuspage.incidents),
                shown.statuses[-1],
                "identified" in shown.statuses,
                statuspage.components["cmp-checkout"].status,
            ),
        }
        failed = [
            f"{o.step_id}: {o.attempts} attempts, {o.last_error}"
            for o in view.history
            if o.state == "failed"
        ]
        return state, failed


async def test_a_p1_from_declaration_to_rca_against_all_three_vendors(tmp_path: Path) -> None:
    clean, failed = await run_against_fakes(tmp_path, "clean", faults=False)
    assert failed == []
    (alert,) = clean["pagerduty"]
    assert alert == ("inc-1/tier3", "resolved")
    ((room, members, topic, bookmarks),) = clean["slack rooms"]
    # The commander and whoever PagerDuty has on call for tier 3 are in the war room.
    assert room == "inc-1-checkout-api-down" and {"UDANA0001", "UANA00001"} <= set(members)
    assert topic.startswith("INC-1 P1") and {"Status page", "Runbook"} <= set(bookmarks)
    assert "| closed |" in topic and "UDANA0001" in topic  # kept up to date to the end
    posts = clean["slack posts"]
    assert posts[room], "the playbook's reminders are posted in the war room"
    # Unresolved at 4 hours: the VP / C-level escalation went out, once.
    assert len(posts["exec-escalations"]) == 1
    assert clean["statuspage"] == (1, "resolved", True, "operational")
    for keys in posts.values():
        assert len(keys) == len(set(keys)), "a message was posted twice"

    # The same incident with every kind of fault ends with the same vendor-side state.
    faulty, failed = await run_against_fakes(tmp_path, "faulty", faults=True)
    assert failed == []
    assert faulty == clean


async def _outbox_channels(settings: Settings) -> set[str]:
    app = await bootstrap.build(settings)
    try:
        return {m.channel for m in await app.outbox.messages()}
    finally:
        await app.close()


@pytest.mark.parametrize("vendor", ["pagerduty", "slack", "statuspage"])
async def test_a_crash_between_a_vendor_call_and_marking_it_done_doubles_nothing(
    tmp_path: Path, vendor: str
) -> None:
    """The process dies after a vendor took an effect of a P1 but before the step is marked
    done; the restarted service runs the step again, and the vendor shows it once."""
    clock = FakeClock(T0)
    pagerduty = FakePagerDuty(ca=trustme.CA(), routing_key=ROUTING_KEY, api_token=API_TOKEN)
    slack = FakeSlack(bot_token=BOT_TOKEN, clock=clock)
    statuspage = StatuspageFake(components={"cmp-checkout": "Checkout"}, clock=clock)
    async with pagerduty, slack, statuspage:
        for channel in AUDIENCE_CHANNELS:
            slack.add_channel(channel, members=[slack.bot_user])
        settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'crash.db'}",
            pagerduty_routing_key=ROUTING_KEY,
            pagerduty_events_url=pagerduty.url,
            slack_bot_token=BOT_TOKEN,
            slack_api_url=slack.api_url,
            statuspage_api_key=statuspage.api_key,
            statuspage_page_id=statuspage.page_id,
            statuspage_api_url=statuspage.url,
            statuspage_components={"checkout": "cmp-checkout"},
        )
        tls = pagerduty.client_ssl_context()
        app = await bootstrap.build(settings, clock=clock, vendor_tls=tls)
        incident, _ = await uc.declare_incident(
            app.runtime,
            title="Checkout API down",
            severity=Severity.P1,
            by="dana",
            service="checkout",
        )
        # The vendor acts at once but answers late: the answer never arrives.
        if vendor == "pagerduty":
            pagerduty.slow(1, seconds=5, path="/v2/enqueue", took_effect=True)
        elif vendor == "slack":
            slack.slow(1, seconds=5, method="conversations.create", took_effect=True)
        else:
            statuspage.slow_next(1, delay=5, method="POST", process=True)
        took_effect: dict[str, Callable[[], bool]] = {
            "pagerduty": lambda: bool(pagerduty.all_alerts()),
            "slack": lambda: bool(slack.created_by_bot()),
            "statuspage": lambda: bool(statuspage.incidents),
        }
        taken = took_effect[vendor]
        tick = asyncio.create_task(app.scheduler.tick(clock.now()))
        for _ in range(300):
            if taken():
                break
            await asyncio.sleep(0.01)
        assert taken() and not tick.done()
        tick.cancel()  # the crash: nothing after the vendor calls is recorded
        with contextlib.suppress(asyncio.CancelledError):
            await tick
        await app.close()

        restarted = await bootstrap.build(settings, clock=clock, vendor_tls=tls)
        try:
            assert await restarted.store.run(lambda tx: tx.release_claims()) > 0
            await run_until(restarted, clock, T0 + 10 * M)
            assert incident.id is not None
            view = await uc.get_incident(restarted.runtime, incident.id)
            assert not [o for o in view.history if o.state == "failed"]
        finally:
            await restarted.close()
        assert len(pagerduty.all_alerts()) == 1
        assert len(statuspage.incidents) == 1
        assert len(slack.created_by_bot()) == 1
        for room in slack.channels.values():
            keys = [m["metadata"]["event_payload"]["key"] for m in room.posts()]
            assert len(keys) == len(set(keys)), (room.name, keys)
        assert pagerduty.rejected == [] and slack.rejected == [] and statuspage.invalid == []
