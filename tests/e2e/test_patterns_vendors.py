"""Patterns end to end through bootstrap's own wiring, against the strict Slack fake and a
real SMTP server (aiosmtpd): five customers' cases about the same stuck bridge transfer make
one incident candidate, posted once to #support-patterns; declaring it links all five; two
customer updates and the resolution each reach all five customers by e-mail exactly once,
across a restart of the service in the middle."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import trustme

from incident import bootstrap
from incident.clock import FakeClock
from incident.config import parse_smtp_url
from incident.domain.access import AccessRole, Principal
from incident.services import cases as uc
from incident.services import incidents as inc
from incident.testing import run_until
from tests.conftest import T0
from tests.e2e.test_vendors import all_vendors
from tests.service.test_patterns import STUCK, draft
from tests.vendor_fakes.smtp import Serve, smtp_servers

AGENT = Principal("alice", AccessRole.RESPONDER)
IC = Principal("dana", AccessRole.COMMANDER)
M = timedelta(minutes=1)


@pytest.fixture
def serve() -> Iterator[Serve]:
    with smtp_servers(trustme.CA()) as start:
        yield start


async def test_five_customers_one_candidate_in_slack_and_every_customer_mailed_once(
    tmp_path: Path, serve: Serve
) -> None:
    clock = FakeClock(T0 + timedelta(hours=8, minutes=30))  # a Monday morning in Berlin
    mail = serve()
    async with all_vendors(clock) as vendors:
        slack = vendors.slack
        slack.add_channel("support-patterns", members=[slack.bot_user])
        settings = vendors.settings(
            tmp_path / "patterns.db",
            smtp=parse_smtp_url(f"smtp://127.0.0.1:{mail.port}", where="test"),
            smtp_from="Support Desk <support@example.com>",
        )

        async def start() -> bootstrap.Container:
            return await bootstrap.build(
                settings, clock=clock, vendor_tls=vendors.pagerduty.client_ssl_context()
            )

        app = await start()
        try:
            cases = []
            for n, text in enumerate(STUCK):
                view = await uc.open_case(app.support, draft(clock, n, text), by=AGENT)
                assert view.case.id is not None
                cases.append(view.case.id)
                await run_until(app, clock, clock.now() + 3 * M)
            (candidate,) = await app.patterns.candidates()
            _, incident_id = await app.patterns.declare(candidate.id or 0, by=IC)
            await inc.post_customer_update(
                app.runtime, incident_id, message="Transfers to Arbitrum are delayed.", by=IC
            )
            await run_until(app, clock, clock.now() + M)
            await app.close()
            app = await start()  # a restart between the two updates
            await inc.post_customer_update(
                app.runtime, incident_id, message="The relayer is back; transfers resume.", by=IC
            )
            await run_until(app, clock, clock.now() + M)
            await inc.resolve_incident(app.runtime, incident_id, summary="Relayer fixed", by=IC)
            await run_until(app, clock, clock.now() + 40 * M)  # past the candidate's reminder
            for case_id in cases:
                assert (await uc.read_case(app.support, case_id)).case.incident_id == incident_id
        finally:
            await app.close()
        assert slack.rejected == []

    (post,) = slack.channel_named("support-patterns").posts()
    assert "Incident candidate CAND-1" in post["text"] and "&lt;tx&gt;" in post["text"]
    for n in range(len(STUCK)):
        received = mail.recorder.to(f"customer{n}@example.org")
        notices = [
            m.get_content()
            for m in received
            if "wider issue" in m.get_content() or "has been resolved" in m.get_content()
        ]
        assert len(notices) == 3, [str(m["Subject"]) for m in received]
        assert "delayed" in notices[0] and "relayer is back" in " ".join(notices[1].split())
        assert "has been resolved" in notices[2]
        assert len({m["Message-ID"] for m in received}) == len(received)
