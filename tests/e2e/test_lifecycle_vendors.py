"""The lifecycle against every vendor at once, through bootstrap's own wiring: PagerDuty,
Slack and Statuspage served by their strict local fakes, and e-mail through a real SMTP
server (aiosmtpd). A P1 from declaration to its RCA, then a second P1 cancelled as a
false alarm."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import trustme

from incident import bootstrap
from incident.clock import FakeClock
from incident.config import parse_smtp_url
from incident.domain.incident import Cancellation, Severity, Status
from incident.services import incidents as uc
from incident.services.status_page import read_public_facts
from incident.testing import run_until
from tests.conftest import T0
from tests.e2e.test_vendors import all_vendors, run_p1_to_rca
from tests.vendor_fakes.smtp import Serve, smtp_servers

M = timedelta(minutes=1)
EXECUTIVES = "exec-team@example.com"


@pytest.fixture
def serve() -> Iterator[Serve]:
    with smtp_servers(trustme.CA()) as start:
        yield start


async def test_a_p1_to_its_rca_and_a_false_alarm_against_every_vendor(
    tmp_path: Path, serve: Serve
) -> None:
    clock = FakeClock(T0)
    mail = serve()
    async with all_vendors(clock) as vendors:
        pagerduty, slack, statuspage = vendors.pagerduty, vendors.slack, vendors.statuspage
        settings = vendors.settings(
            tmp_path / "lifecycle.db",
            smtp=parse_smtp_url(f"smtp://127.0.0.1:{mail.port}", where="test"),
            smtp_from="Incident Desk <incidents@example.com>",
            company_name="Acme",
        )
        app = await bootstrap.build(
            settings, clock=clock, vendor_tls=pagerduty.client_ssl_context()
        )
        try:
            assert app.live["email"].startswith("SMTP")
            first = await run_p1_to_rca(app, clock)
            # A second P1, cancelled as a false alarm once it has paged and been posted.
            second, _ = await uc.declare_incident(
                app.runtime,
                title="Payments API down",
                severity=Severity.P1,
                by="dana",
                service="checkout",
            )
            assert second.id is not None
            start = clock.now() - T0
            await run_until(app, clock, T0 + start + 2 * M)
            assert len(pagerduty.all_alerts()) == 2 and len(statuspage.incidents) == 2
            await uc.cancel_incident(
                app.runtime,
                second.id,
                reason=Cancellation.FALSE_ALARM,
                note="a test alert",
                by="dana",
            )
            await run_until(app, clock, T0 + start + 3 * 60 * M)
            closed = await uc.get_incident(app.runtime, first)
            cancelled = await uc.get_incident(app.runtime, second.id)
            public = (await read_public_facts(app.runtime)).build(
                app.runtime.catalog, cancelled=app.runtime.cancelled_incidents
            )
        finally:
            await app.close()
        assert pagerduty.rejected == [] and slack.rejected == []
        assert statuspage.invalid == [] and statuspage.problems == []

    # The executives hear by e-mail: within the first hour, at resolution, and the RCA link.
    sent = [m for m in mail.recorder.to(EXECUTIVES)]
    subjects = [str(m["Subject"]) for m in sent]
    assert len(subjects) == 3, subjects
    assert all(s.startswith("[Acme] [INC-1 P1] Checkout API down") for s in subjects)
    bodies = [m.get_content() for m in sent]
    assert "executive summary" in bodies[0]
    assert bodies[1].startswith("Resolved: INC-1 [P1]")
    assert "https://wiki/rca/1" in bodies[2]
    assert len({m["Message-ID"] for m in sent}) == 3
    # The VP / C-level escalation at 4 hours reached its address too.
    assert len(mail.recorder.to("vp-escalations@example.com")) == 1
    assert closed.incident.status is Status.CLOSED
    assert not [o for o in closed.history if o.state == "failed"]

    # The war room: one greeting, pinned, edited in place to the end (closed, with its RCA).
    (room,) = [c for c in slack.created_by_bot() if c.name.startswith("inc-1-")]
    greetings = [m for m in room.posts() if m["text"].startswith("*INC-1 [P1")]
    assert len(greetings) == 1, [m["text"][:40] for m in greetings]
    assert room.pinned() == greetings
    assert "RCA: https://wiki/rca/1" in greetings[0]["text"]
    assert "Commander: <@UDANA0001>" in greetings[0]["text"]  # a mention, not escaped text

    # The false alarm: its page resolved, withdrawn from both status pages, nothing else.
    alert = next(a for a in pagerduty.all_alerts() if a.dedup_key == f"inc-{second.id}/tier3")
    assert alert.statuses[-1] == "resolved"
    assert len(statuspage.incidents) == 1 and len(statuspage.deleted) == 1
    assert [i.id for i in public.incidents] == [str(first)]
    assert cancelled.incident.status is Status.CANCELLED
    assert cancelled.upcoming == []
    assert {o.step_id for o in cancelled.history if o.state == "done"} >= {
        "pager-resolve-cancelled",
        "status-page-withdrawn",
        "refresh-war-room-cancelled",
    }
    assert not [o for o in cancelled.history if o.state == "failed"]
    assert dataclasses.asdict(cancelled.incident)["rca_due_at"] is None
