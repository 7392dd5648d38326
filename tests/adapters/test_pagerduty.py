"""The PagerDuty adapter against a strict local PagerDuty (real HTTP over loopback TLS)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import aiohttp
import pagerduty
import pytest
import trustme

from incident.adapters.database.databases import Database, open_database
from incident.adapters.database.tables import IncidentRow
from incident.adapters.database.vendor_refs import VendorRefs
from incident.adapters.vendors.pagerduty import PagerDutyPager, events_client, rest_client
from incident.adapters.vendors.retries import RetryBudget
from incident.clock import Clock, FakeClock, SystemClock
from incident.domain.incident import Incident, Severity
from incident.domain.records import SubjectRef
from incident.services.ports import OnCall, Topic, VendorRejected, VendorUnavailable
from tests.vendor_fakes.pagerduty import FakePagerDuty, Person, Shift

ROUTING_KEY = "R0ut1ngK3yR0ut1ngK3yR0ut1ngK3y32"
API_TOKEN = "u+T0kenT0kenT0kenT0ken"
DECLARED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FAST = RetryBudget(attempts=3, backoff=0.01, backoff_cap=0.05, retry_after_cap=2.0)

ANA = Person("PANA001", "Ana Primary", "ana@example.com")
BO = Person("PBO0002", "Bo Secondary", "bo@example.com")
CY = Person("PCY0003", "Cy Manager", "cy@example.com")
ROSTER = [
    Shift(BO, "PTIER3", escalation_level=2, schedule="PSCHED2"),
    Shift(ANA, "PTIER3", escalation_level=1, schedule="PSCHED1"),
    Shift(ANA, "PTIER3", escalation_level=3),  # Ana again, on a later level: named once
    Shift(CY, "PTIER2", escalation_level=1, schedule="PSCHED9"),
]


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def pd(ca: trustme.CA) -> AsyncIterator[FakePagerDuty]:
    fake = FakePagerDuty(
        ca=ca,
        routing_key=ROUTING_KEY,
        api_token=API_TOKEN,
        roster=ROSTER,
        services={"PSVC01": "PTIER3"},
    )
    async with fake:
        yield fake
    # Every request the adapter sent must be one PagerDuty accepts; the tests that send bad
    # ones on purpose say so.
    if not fake.expect_rejections:
        assert fake.rejected == [], [s.problems for s in fake.rejected]


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = open_database(f"sqlite:///{tmp_path}/pagerduty.db")
    await db.create_schema()
    yield db
    await db.dispose()


@dataclass
class Made:
    pager: PagerDutyPager
    events: pagerduty.EventsApiV2Client
    rest: pagerduty.RestApiV2Client


MakePager = Callable[..., Made]


@pytest.fixture
def make(pd: FakePagerDuty, database: Database) -> Iterator[MakePager]:
    clients: list[pagerduty.ApiClient] = []

    def build(
        *,
        timeout: float = 1.0,
        retry: RetryBudget = FAST,
        routing_key: str = ROUTING_KEY,
        api_token: str = API_TOKEN,
        url: str | None = None,
        clock: Clock | None = None,
    ) -> Made:
        tls = pd.client_ssl_context()
        events = events_client(
            routing_key=routing_key,
            base_url=url or pd.url,
            timeout=timeout,
            verify=tls,
            trust_env=False,
        )
        rest = rest_client(
            api_token=api_token,
            base_url=url or pd.url,
            timeout=timeout,
            verify=tls,
            trust_env=False,
        )
        clients.extend([events, rest])
        clock = clock or SystemClock()
        pager = PagerDutyPager(
            events=events,
            rest=rest,
            refs=VendorRefs(database, clock),
            clock=clock,
            retry=retry,
            base_url="https://incidents.example.com",
        )
        return Made(pager, events, rest)

    yield build
    for client in clients:
        client.close()


async def new_incident(
    database: Database, *, severity: Severity = Severity.P1, service: str = "checkout"
) -> Incident:
    incident = Incident(
        title="Checkout API down",
        severity=severity,
        declared_at=DECLARED,
        declared_by="dana",
        service=service,
    )

    def add(session: object) -> int:
        row = IncidentRow(
            title=incident.title,
            severity=incident.severity.value,
            status=incident.status.value,
            service=incident.service,
            declared_at=incident.declared_at,
            declared_by=incident.declared_by,
        )
        session.add(row)  # type: ignore[attr-defined]
        session.flush()  # type: ignore[attr-defined]
        assert row.id is not None
        return row.id

    incident.id = await database.run(add)
    return incident


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# --- paging: one alert per incident and tier -------------------------------------------------


async def test_trigger_acknowledge_resolve_share_one_dedup_key(
    pd: FakePagerDuty, make: MakePager, database: Database
) -> None:
    pager = make().pager
    incident = await new_incident(database)

    first = await pager.page(
        incident=incident, tier="tier3", summary="[INC-1 P1] Checkout API down", key="inc-1/p/0"
    )
    again = await pager.page(
        incident=incident, tier="tier3", summary="[INC-1 P1] Checkout API down", key="inc-1/r/1"
    )
    await pager.acknowledge(incident=incident, key="inc-1/ack")
    await pager.resolve(incident=incident, key="inc-1/resolve")

    assert first == again == f"inc-{incident.id}/tier3"
    [alert] = pd.all_alerts()
    assert alert.dedup_key == first
    assert alert.events == ["trigger", "trigger", "acknowledge", "resolve"]
    assert alert.statuses == ["triggered", "triggered", "acknowledged", "resolved"]
    assert alert.payload["severity"] == "critical"
    assert alert.payload["source"] == "checkout"
    assert alert.payload["summary"] == "[INC-1 P1] Checkout API down"
    assert alert.payload["custom_details"]["incident"] == incident.ref
    assert pd.rejected == []
    assert len(pd.seen("/v2/enqueue")) == 4


async def test_each_paged_tier_has_its_alert_and_all_are_resolved(
    pd: FakePagerDuty, make: MakePager, database: Database
) -> None:
    pager = make().pager
    incident = await new_incident(database, severity=Severity.P2)
    other = await new_incident(database)
    await pager.page(incident=incident, tier="tier2", summary="P2", key="k1")
    await pager.page(incident=other, tier="tier3", summary="other incident", key="k2")
    await pager.page(incident=incident, tier="tier3", summary="P2 at 4 h", key="k3")
    await pager.page(incident=incident, tier="tier2", summary="P2 again", key="k4")

    await pager.resolve(incident=incident, key="k5")

    by_key = {a.dedup_key: a for a in pd.all_alerts()}
    assert len(pd.all_alerts()) == 3
    assert by_key[f"inc-{incident.id}/tier2"].status == "resolved"
    assert by_key[f"inc-{incident.id}/tier3"].status == "resolved"
    assert by_key[f"inc-{other.id}/tier3"].status == "triggered"  # another incident's
    assert pd.rejected == []


async def test_two_tiers_paged_at_once_each_get_their_alert(
    pd: FakePagerDuty, make: MakePager, database: Database
) -> None:
    pager = make().pager
    incident = await new_incident(database)
    await asyncio.gather(
        pager.page(incident=incident, tier="tier2", summary="s", key="a"),
        pager.page(incident=incident, tier="tier3", summary="s", key="b"),
        pager.page(incident=incident, tier="security", summary="s", key="c"),
    )
    await pager.acknowledge(incident=incident, key="ack")
    assert sorted(a.dedup_key for a in pd.all_alerts()) == [
        f"inc-{incident.id}/{tier}" for tier in ("security", "tier2", "tier3")
    ]
    assert {a.status for a in pd.all_alerts()} == {"acknowledged"}


async def test_acknowledging_an_incident_that_never_paged_sends_nothing(
    pd: FakePagerDuty, make: MakePager, database: Database
) -> None:
    pager = make().pager
    incident = await new_incident(database)
    await pager.acknowledge(incident=incident, key="k")
    await pager.resolve(incident=incident, key="k")
    assert pd.requests == []


async def test_a_page_after_a_restart_joins_the_same_alert(
    pd: FakePagerDuty, make: MakePager, database: Database
) -> None:
    incident = await new_incident(database)
    await make().pager.page(incident=incident, tier="tier3", summary="s", key="k")
    restarted = make().pager  # a new process: only the database remembers
    await restarted.page(incident=incident, tier="tier3", summary="s", key="k")
    await restarted.resolve(incident=incident, key="r")
    [alert] = pd.all_alerts()
    assert alert.events == ["trigger", "trigger", "resolve"]


async def test_a_long_summary_is_cut_to_what_pagerduty_takes(
    pd: FakePagerDuty, make: MakePager, database: Database
) -> None:
    incident = await new_incident(database, severity=Severity.P4, service="")
    await make().pager.page(incident=incident, tier="tier1", summary="x" * 5000, key="k")
    [alert] = pd.all_alerts()
    assert len(alert.payload["summary"]) == 1024
    assert alert.payload["severity"] == "info"
    assert alert.payload["source"] == "incident-service"
    assert pd.rejected == []


# --- faults ------------------------------------------------------------------------------------


async def test_a_timed_out_page_that_took_effect_is_retried_into_the_same_alert(
    pd: FakePagerDuty, make: MakePager, database: Database
) -> None:
    pd.slow(1, seconds=2.0, took_effect=True)
    incident = await new_incident(database)
    await make(timeout=0.2).pager.page(incident=incident, tier="tier3", summary="s", key="k")
    [alert] = pd.all_alerts()
    assert alert.events == ["trigger", "trigger"]
    assert [s.fault for s in pd.seen("/v2/enqueue")] == ["slow", None]
    assert pd.rejected == []


async def test_a_dropped_connection_is_retried(
    pd: FakePagerDuty, make: MakePager, database: Database
) -> None:
    pd.drop(1, took_effect=True)
    incident = await new_incident(database)
    await make().pager.page(incident=incident, tier="tier3", summary="s", key="k")
    assert len(pd.all_alerts()) == 1
    assert [s.fault for s in pd.requests] == ["drop", None]


async def test_429_waits_as_long_as_retry_after_says_then_succeeds(
    pd: FakePagerDuty, make: MakePager, database: Database
) -> None:
    pd.rate_limit(1, retry_after=1)
    incident = await new_incident(database)
    await make().pager.page(incident=incident, tier="tier3", summary="s", key="k")
    first, second = pd.seen("/v2/enqueue")
    assert (first.status, second.status) == (429, 202)
    assert second.at - first.at >= 1.0
    assert len(pd.all_alerts()) == 1


async def test_a_retry_after_given_as_a_date_is_honoured(
    pd: FakePagerDuty, make: MakePager, database: Database
) -> None:
    clock = FakeClock(DECLARED)
    pd.rate_limit(1, retry_after=format_datetime(DECLARED + timedelta(seconds=2), usegmt=True))
    incident = await new_incident(database)
    await make(clock=clock).pager.page(incident=incident, tier="tier3", summary="s", key="k")
    assert clock.now() - DECLARED == timedelta(seconds=2)  # waited (virtually) as asked
    assert len(pd.all_alerts()) == 1


async def test_a_retry_after_beyond_the_cap_gives_up_at_once(
    pd: FakePagerDuty, make: MakePager, database: Database
) -> None:
    pd.rate_limit(1, retry_after=120)
    incident = await new_incident(database)
    with pytest.raises(VendorUnavailable) as raised:
        await make().pager.page(incident=incident, tier="tier3", summary="s", key="k")
    assert raised.value.retry_after == 120
    assert "429" in str(raised.value) and "wait 120 s" in str(raised.value)
    assert len(pd.requests) == 1


async def test_a_500_burst_within_the_bound_still_pages_once(
    pd: FakePagerDuty, make: MakePager, database: Database
) -> None:
    pd.fail(2, status=500)
    incident = await new_incident(database)
    await make().pager.page(incident=incident, tier="tier3", summary="s", key="k")
    assert [s.status for s in pd.requests] == [500, 500, 202]
    assert len(pd.all_alerts()) == 1


async def test_beyond_the_bound_a_domain_error_without_secrets(
    pd: FakePagerDuty, make: MakePager, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    pd.fail(10, status=503)
    incident = await new_incident(database)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(VendorUnavailable) as raised:
        await make().pager.page(incident=incident, tier="tier3", summary="s", key="k")
    text = str(raised.value)
    assert text == (
        f"PagerDuty: trigger of inc-{incident.id}/tier3 failed after 3 attempt(s): "
        "server error (HTTP 503)"
    )
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # no vendor chain
    assert len(pd.requests) == FAST.attempts
    assert ROUTING_KEY not in caplog.text and API_TOKEN not in caplog.text
    assert [getattr(r, "action", None) for r in caplog.records if hasattr(r, "action")] == [
        "pagerduty_retry",
        "pagerduty_retry",
        "pagerduty_gave_up",
    ]


async def test_a_pagerduty_slower_than_the_timeout_is_unavailable(
    pd: FakePagerDuty, make: MakePager, database: Database
) -> None:
    pd.slow(5, seconds=2.0, took_effect=False)
    incident = await new_incident(database)
    with pytest.raises(VendorUnavailable, match="timed out"):
        await make(timeout=0.15, retry=RetryBudget(attempts=2, backoff=0.01)).pager.page(
            incident=incident, tier="tier3", summary="s", key="k"
        )
    assert pd.all_alerts() == []


async def test_a_refused_connection_is_unavailable(make: MakePager, database: Database) -> None:
    incident = await new_incident(database)
    made = make(url=f"https://127.0.0.1:{closed_port()}")
    with pytest.raises(VendorUnavailable, match="could not connect") as raised:
        await made.pager.page(incident=incident, tier="tier3", summary="s", key="k")
    assert ROUTING_KEY not in str(raised.value)
    with pytest.raises(VendorUnavailable, match=r"on-call lookup.*could not connect"):
        await made.pager.who_is_on_call(escalation_policy_id="PTIER3")


async def test_a_malformed_answer_is_retried_then_reported(
    pd: FakePagerDuty, make: MakePager, database: Database
) -> None:
    incident = await new_incident(database)
    pager = make().pager
    pd.malformed(1)
    await pager.page(incident=incident, tier="tier3", summary="s", key="k")
    assert len(pd.all_alerts()) == 1  # it took effect; the retry joined it

    pd.malformed(3, path="/v2/enqueue")
    with pytest.raises(VendorUnavailable, match="malformed response"):
        await pager.acknowledge(incident=incident, key="k")
    pd.malformed(3, path="/oncalls", body='{"oncalls": "nope"}')
    with pytest.raises(VendorUnavailable, match="malformed response"):
        await pager.who_is_on_call(escalation_policy_id="PTIER3")


async def test_a_pagerduty_down_for_ten_minutes_of_virtual_time(
    pd: FakePagerDuty, make: MakePager, database: Database
) -> None:
    clock = FakeClock(DECLARED)
    pd.down_until(DECLARED + timedelta(minutes=10), clock=clock)
    incident = await new_incident(database)
    pager = make(clock=clock, retry=RetryBudget(attempts=3, backoff=1.0)).pager
    with pytest.raises(VendorUnavailable, match="HTTP 503"):
        await pager.page(incident=incident, tier="tier3", summary="s", key="k")
    assert clock.now() - DECLARED < timedelta(seconds=10)  # waits were virtual, and short
    clock.advance(timedelta(minutes=10))
    await pager.page(incident=incident, tier="tier3", summary="s", key="k")
    assert len(pd.all_alerts()) == 1


async def test_an_invalid_event_is_refused_without_echoing_the_routing_key(
    pd: FakePagerDuty, make: MakePager, database: Database
) -> None:
    pd.expect_rejections = True
    incident = await new_incident(database)
    short_key = ROUTING_KEY[:-1]
    with pytest.raises(VendorRejected, match=r"HTTP 400.*routing_key") as raised:
        await make(routing_key=short_key).pager.page(
            incident=incident, tier="tier3", summary="s", key="k"
        )
    assert short_key not in str(raised.value)
    assert len(pd.requests) == 1  # a refusal is not retried


async def test_a_slow_pagerduty_does_not_block_the_event_loop(
    pd: FakePagerDuty, make: MakePager, database: Database
) -> None:
    pd.slow(1, seconds=0.4, path="/v2/enqueue")
    pd.rate_limit(1, retry_after=1, path="/oncalls")
    incident = await new_incident(database)
    pager = make(timeout=2.0).pager
    loop = asyncio.get_running_loop()
    ticks: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            ticks.append(loop.time())
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    await asyncio.gather(
        pager.page(incident=incident, tier="tier3", summary="s", key="k"),
        pager.who_is_on_call(escalation_policy_id="PTIER3"),
    )
    done.set()
    await task
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert ticks[-1] - ticks[0] >= 1.0
    assert max(gaps) < 0.2
    assert len(pd.all_alerts()) == 1


# --- on call -----------------------------------------------------------------------------------


async def test_who_is_on_call_for_an_escalation_policy(pd: FakePagerDuty, make: MakePager) -> None:
    people = await make().pager.who_is_on_call(escalation_policy_id="PTIER3")
    assert people == [
        OnCall(name="Ana Primary", email="ana@example.com", escalation_level=1),
        OnCall(name="Bo Secondary", email="bo@example.com", escalation_level=2),
    ]
    [seen] = pd.seen("/oncalls")
    assert ("escalation_policy_ids[]", "PTIER3") in seen.query
    assert ("include[]", "users") in seen.query
    assert pd.rejected == []


async def test_who_is_on_call_for_a_service_or_a_schedule(
    pd: FakePagerDuty, make: MakePager
) -> None:
    pager = make().pager
    by_service = await pager.who_is_on_call(service_id="PSVC01")
    assert [p.email for p in by_service] == ["ana@example.com", "bo@example.com"]
    by_schedule = await pager.who_is_on_call(schedule_id="PSCHED9")
    assert by_schedule == [OnCall(name="Cy Manager", email="cy@example.com", escalation_level=1)]
    assert await pager.who_is_on_call(escalation_policy_id="PNOBODY") == []
    assert pd.rejected == []
    with pytest.raises(VendorRejected, match="HTTP 404"):
        await pager.who_is_on_call(service_id="PUNKNOWN")


async def test_a_wrong_api_token_is_refused_and_not_repeated(
    pd: FakePagerDuty, make: MakePager, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pd.expect_rejections = True
    token = "u+WrongWrongWrongWrong"
    with pytest.raises(VendorRejected, match="HTTP 401") as raised:
        await make(api_token=token).pager.who_is_on_call(escalation_policy_id="PTIER3")
    assert token not in str(raised.value) and token not in caplog.text
    assert len(pd.requests) == 1


async def test_the_on_call_lookup_honours_retry_after(pd: FakePagerDuty, make: MakePager) -> None:
    pd.rate_limit(1, retry_after=1, path="/oncalls")
    people = await make().pager.who_is_on_call(escalation_policy_id="PTIER3")
    assert len(people) == 2
    first, second = pd.seen("/oncalls")
    assert second.at - first.at >= 1.0


# --- the fake is as strict as PagerDuty --------------------------------------------------------


async def test_the_fake_refuses_what_pagerduty_refuses(pd: FakePagerDuty) -> None:
    pd.expect_rejections = True
    good = {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "inc-1/tier3",
        "payload": {"summary": "s", "source": "checkout", "severity": "critical"},
    }
    bad_events = [
        {**good, "event_action": "escalate"},
        {**good, "payload": {**good["payload"], "severity": "fatal"}},  # type: ignore[dict-item]
        {**good, "payload": {**good["payload"], "summary": "x" * 1025}},  # type: ignore[dict-item]
        {**good, "payload": {"summary": "s", "severity": "info"}},  # no source
        {**good, "payload": {**good["payload"], "timestamp": "yesterday"}},  # type: ignore[dict-item]
        {**good, "routing_key": "short"},
        {**good, "routing_key": "x" * 32},  # no such integration
        {**good, "dedup_key": "k" * 256},
        {k: v for k, v in good.items() if k != "payload"},
        {"routing_key": ROUTING_KEY, "event_action": "resolve"},  # no dedup_key
    ]
    connector = aiohttp.TCPConnector(ssl=pd.client_ssl_context())
    async with aiohttp.ClientSession(connector=connector) as http:
        for event in bad_events:
            async with http.post(f"{pd.url}/v2/enqueue", json=event) as response:
                assert response.status == 400, event
                body = await response.json()
                assert body["status"] == "invalid event" and body["errors"], event
        async with http.post(f"{pd.url}/v2/enqueue", data=b"{not json") as response:
            assert response.status == 400
        async with http.post(f"{pd.url}/v2/enqueue", json=good) as response:
            assert response.status == 202
            assert await response.json() == {
                "status": "success",
                "message": "Event processed",
                "dedup_key": "inc-1/tier3",
            }

        rest = {
            "Authorization": f"Token token={API_TOKEN}",
            "Accept": "application/vnd.pagerduty+json;version=2",
            "Content-Type": "application/json",
        }
        refused = [
            ({**rest, "Authorization": f"Bearer {API_TOKEN}"}, "", 401),
            ({**rest, "Authorization": "Token token=nope"}, "", 401),
            ({k: v for k, v in rest.items() if k != "Accept"}, "", 400),
            (rest, "?escalation_policy_ids=PTIER3", 400),  # PagerDuty would ignore it
            (rest, "?limit=many", 400),
            (rest, "?include[]=teams", 400),
            (rest, "?earliest=yes", 400),
        ]
        for headers, query, status in refused:
            async with http.get(f"{pd.url}/oncalls{query}", headers=headers) as response:
                assert response.status == status, (headers, query)
                assert "error" in await response.json()
        async with http.get(
            f"{pd.url}/oncalls?escalation_policy_ids[]=PTIER3&limit=1&total=true", headers=rest
        ) as response:
            assert response.status == 200
            body = await response.json()
            assert body["more"] is True and body["total"] == 3 and len(body["oncalls"]) == 1
    assert len(pd.rejected) == len(bad_events) + 1 + len(refused)
    assert len(pd.all_alerts()) == 1


# --- pages about other subjects: a support case that cannot wait ---------------------------


async def test_a_case_that_cannot_wait_pages_each_tier_once_apart_from_an_incident(
    pd: FakePagerDuty, make: MakePager, database: Database
) -> None:
    pager = make().pager
    case = Topic(SubjectRef("case", 3), DECLARED, "CASE-3")
    for key in ("case-3/emergency-notice/1", "case-3/receipt-reminder/1"):  # a later step too
        await pager.send(
            about=case,
            audience="tier_3",
            destinations=["pager:tier3", "pager:security"],
            subject="CASE-3 ZD-1 [P1] Payouts fail: cannot wait",
            body="The customer's payroll runs tonight.",
            key=key,
        )
    incident = await new_incident(database)
    await pager.page(incident=incident, tier="tier3", summary="Checkout down", key="inc/1")
    by_key = {a.dedup_key: a for a in pd.all_alerts()}
    assert set(by_key) == {"case-3/tier3", "case-3/security", f"inc-{incident.id}/tier3"}
    paged = by_key["case-3/tier3"]
    assert paged.events == ["trigger", "trigger"]  # one alert, the second step added to it
    assert paged.payload["summary"] == "CASE-3 ZD-1 [P1] Payouts fail: cannot wait"
    assert paged.payload["custom_details"]["subject"] == "CASE-3"
    with pytest.raises(ValueError, match="pager: destinations"):
        await pager.send(
            about=case, audience="x", destinations=["email:a@b.c"], subject="s", body="b", key="k"
        )
