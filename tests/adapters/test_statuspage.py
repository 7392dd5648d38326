"""The Statuspage adapter against a strict local Statuspage: real HTTP on loopback, no mocks.

Most tests run in virtual time: the adapter, its rate limiter and the fake share the
FakeClock, so waiting out a Retry-After or a backoff takes no real time and the clock shows
how long the adapter waited. Timeouts, refused connections and the event-loop check run
on the real clock with small numbers.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from incident.adapters.database.tables import VendorRefRow
from incident.adapters.database.vendor_refs import VendorRefs
from incident.adapters.vendors.statuspage import (
    METADATA_KEY,
    RequestSpacing,
    StatuspageStatusPage,
    component_status_for,
    impact_for,
    statuspage_status,
)
from incident.bootstrap import Container
from incident.clock import Clock, FakeClock, SystemClock
from incident.domain.incident import Incident, Severity, Status
from incident.domain.status_page import Catalog, Component, ComponentStatus
from incident.services import incidents as uc
from incident.services.ports import VendorRejected, VendorUnavailable
from tests.vendor_fakes.statuspage import StatuspageFake, response_validator

CHECKOUT = "cmpcheckout1"
SEARCH = "cmpsearch001"
COMPONENTS = {CHECKOUT: "Checkout", SEARCH: "Search"}


@pytest.fixture
async def statuspage(clock: FakeClock) -> AsyncIterator[StatuspageFake]:
    async with StatuspageFake(clock=clock, components=COMPONENTS) as fake:
        yield fake
    assert fake.problems == []  # the fake answered in the spec's shapes


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=2.0) as client:
        yield client


def make(
    app: Container,
    fake: StatuspageFake,
    http: httpx.AsyncClient,
    *,
    clock: Clock,
    base_url: str | None = None,
    **options: Any,
) -> StatuspageStatusPage:
    options.setdefault("components", {"checkout": CHECKOUT, "search": SEARCH})
    return StatuspageStatusPage(
        client=http,
        refs=VendorRefs(app.database, app.runtime.clock),
        clock=clock,
        page_id=fake.page_id,
        api_key=fake.api_key,
        base_url=base_url or fake.url,
        **options,
    )


async def declare(
    app: Container,
    *,
    severity: Severity = Severity.P1,
    service: str = "checkout",
    title: str = "Checkout API down",
) -> Incident:
    incident, _ = await uc.declare_incident(
        app.runtime, title=title, severity=severity, by="dana", service=service
    )
    return incident


def gaps(fake: StatuspageFake) -> list[float]:
    times = sorted(r.at for r in fake.requests)
    return [b - a for a, b in itertools.pairwise(times)]


# --- the mapping from our words to Statuspage's ---------------------------------------------


@pytest.mark.parametrize(
    ("severity", "status", "expected"),
    [
        (Severity.P1, Status.INVESTIGATING, "major_outage"),
        (Severity.P1, Status.IDENTIFIED, "major_outage"),
        (Severity.P1, Status.MONITORING, "degraded_performance"),
        (Severity.P1, Status.RESOLVED, "operational"),
        (Severity.P2, Status.INVESTIGATING, "partial_outage"),
        (Severity.P2, Status.CLOSED, "operational"),
        (Severity.P3, Status.IDENTIFIED, "degraded_performance"),
        (Severity.P3, Status.MONITORING, "degraded_performance"),
        (Severity.P4, Status.INVESTIGATING, None),
        (Severity.P4, Status.RESOLVED, "operational"),
        (Severity.P1, Status.CANCELLED, "operational"),
    ],
)
def test_component_status(severity: Severity, status: Status, expected: str | None) -> None:
    assert component_status_for(severity, status) == expected


@pytest.mark.parametrize(
    ("severity", "impact"),
    [
        (Severity.P1, "critical"),
        (Severity.P2, "major"),
        (Severity.P3, "minor"),
        (Severity.P4, "none"),
    ],
)
def test_impact(severity: Severity, impact: str) -> None:
    assert impact_for(severity) == impact


def test_statuses() -> None:
    assert [statuspage_status(s) for s in Status] == [
        "investigating",
        "identified",
        "monitoring",
        "resolved",
        "resolved",
        "resolved",  # cancelled: see withdraw
    ]


# --- the rate limiter ------------------------------------------------------------------------


async def test_spacing_queues_in_virtual_time() -> None:
    clock = FakeClock()
    spacing = RequestSpacing(clock, interval=1.0)
    start = clock.monotonic()
    await asyncio.gather(*(spacing.wait() for _ in range(5)))
    assert clock.monotonic() - start == pytest.approx(4.0, abs=1e-5)
    spacing.hold(30)
    await spacing.wait()
    assert clock.monotonic() - start == pytest.approx(34.0, abs=1e-5)


# --- the life of one incident ----------------------------------------------------------------


async def test_named_components_and_the_public_title_are_what_statuspage_shows(
    app: Container, clock: FakeClock, statuspage: StatuspageFake, http: httpx.AsyncClient
) -> None:
    catalog = Catalog.build([Component("payments", "Payments"), Component("find", "Search")])
    adapter = make(
        app,
        statuspage,
        http,
        clock=clock,
        catalog=catalog,
        components={"payments": CHECKOUT, "find": SEARCH},
    )
    incident = await declare(app, title="db-7.internal pool exhausted for cust-4821")
    incident.components = {
        "payments": ComponentStatus.PARTIAL_OUTAGE,
        "find": ComponentStatus.DEGRADED_PERFORMANCE,
    }
    await adapter.publish(
        incident=incident, status=Status.INVESTIGATING, body="Looking into it.", key="k/1"
    )
    shown = statuspage.only_incident()
    assert shown.name == "Partial outage affecting Payments and Search"
    assert statuspage.components[CHECKOUT].status == "partial_outage"
    assert statuspage.components[SEARCH].status == "degraded_performance"
    incident.status = Status.RESOLVED
    incident.public_title = "Slow payments"
    await adapter.publish(incident=incident, status=Status.RESOLVED, body="Fixed.", key="k/2")
    assert statuspage.components[CHECKOUT].status == "operational"
    assert statuspage.components[SEARCH].status == "operational"
    assert "db-7" not in repr(statuspage.requests) and "cust-4821" not in repr(statuspage.requests)


async def test_one_incident_follows_ours_from_declaration_to_resolution(
    app: Container, clock: FakeClock, statuspage: StatuspageFake, http: httpx.AsyncClient
) -> None:
    adapter = make(app, statuspage, http, clock=clock)
    incident = await declare(app)
    assert incident.id is not None
    steps = [
        (Status.INVESTIGATING, "We are investigating checkout errors.", "major_outage"),
        (Status.IDENTIFIED, "We found the cause.", "major_outage"),
        (Status.MONITORING, "A fix is out; we are watching.", "degraded_performance"),
        (Status.RESOLVED, "Checkout works again.", "operational"),
    ]
    for n, (status, body, component) in enumerate(steps):
        await adapter.publish(incident=incident, status=status, body=body, key=f"k/{n}")
        shown = statuspage.only_incident()
        assert shown.status == status.value
        assert statuspage.components[CHECKOUT].status == component
    shown = statuspage.only_incident()
    # Customers see a public name, never the internal title.
    assert shown.name == "Service disruption"
    assert shown.impact_override == "critical"
    assert shown.metadata == {METADATA_KEY: {"incident_id": str(incident.id), "ref": incident.ref}}
    assert shown.statuses == ["investigating", "identified", "monitoring", "resolved"]
    assert shown.bodies == [body for _, body, _ in steps]
    assert shown.resolved_at is not None
    assert shown.component_ids == [CHECKOUT]
    assert [
        [(c["old_status"], c["new_status"]) for c in u.affected_components] for u in shown.updates
    ] == [
        [("operational", "major_outage")],
        [],
        [("major_outage", "degraded_performance")],
        [("degraded_performance", "operational")],
    ]
    assert statuspage.components[SEARCH].status == "operational"
    refs = VendorRefs(app.database, clock)
    assert await refs.find(incident.id, "statuspage", "incident") == shown.id
    # Re-running a step that already posted (a crash after the send) writes nothing.
    seen = len(statuspage.requests)
    await adapter.publish(incident=incident, status=Status.RESOLVED, body="again", key="k/3")
    assert len(statuspage.requests) == seen
    # Every request was valid, none was refused for speed, and they came a second apart.
    assert statuspage.invalid == []
    assert statuspage.rate_limited == 0
    assert min(gaps(statuspage)) >= 1.0 - 1e-6


async def test_closed_shows_resolved_and_severity_sets_the_impact(
    app: Container, clock: FakeClock, statuspage: StatuspageFake, http: httpx.AsyncClient
) -> None:
    adapter = make(app, statuspage, http, clock=clock)
    p3 = await declare(app, severity=Severity.P3, service="search", title="Search is slow")
    await adapter.publish(incident=p3, status=Status.INVESTIGATING, body="Slow.", key="p3/0")
    assert statuspage.components[SEARCH].status == "degraded_performance"
    p3.severity = Severity.P2  # raised: the next update says so
    await adapter.publish(incident=p3, status=Status.IDENTIFIED, body="Worse.", key="p3/1")
    shown = statuspage.only_incident()
    assert (shown.impact_override, statuspage.components[SEARCH].status) == (
        "major",
        "partial_outage",
    )
    await adapter.publish(incident=p3, status=Status.CLOSED, body="Done.", key="p3/2")
    assert shown.status == "resolved"
    assert statuspage.components[SEARCH].status == "operational"
    assert statuspage.components[CHECKOUT].status == "operational"  # never touched


async def test_p4_and_unmapped_services_leave_components_alone(
    app: Container, clock: FakeClock, statuspage: StatuspageFake, http: httpx.AsyncClient
) -> None:
    adapter = make(app, statuspage, http, clock=clock)
    p4 = await declare(app, severity=Severity.P4, title="Typo on the pricing page")
    other = await declare(app, severity=Severity.P1, service="billing", title="Invoices late")
    await adapter.publish(incident=p4, status=Status.INVESTIGATING, body="Known.", key="a")
    await adapter.publish(incident=other, status=Status.INVESTIGATING, body="Late.", key="b")
    first, second = statuspage.incidents.values()
    assert (first.impact_override, first.component_ids) == ("none", [])
    assert (second.impact_override, second.component_ids) == ("critical", [])
    assert {c.status for c in statuspage.components.values()} == {"operational"}


# --- a cancelled incident is withdrawn -------------------------------------------------------


async def published(
    app: Container, adapter: StatuspageStatusPage, *, title: str = "Checkout API down"
) -> Incident:
    """An incident shown on Statuspage (its checkout component in a major outage)."""
    incident = await declare(app, title=title)
    await adapter.publish(
        incident=incident, status=Status.INVESTIGATING, body="Looking into it.", key="p/0"
    )
    return incident


async def forget(app: Container, incident: Incident, name: str) -> None:
    """What a crash between Statuspage's answer and our write leaves: no reference."""
    table = VendorRefRow.__table__  # type: ignore[attr-defined]
    statement = delete(table).where(table.c.subject_id == incident.id, table.c.name == name)
    await app.database.run(lambda session: session.execute(statement))


WITHDRAWN = "This was a false alarm: the service was not affected."


async def test_withdraw_deletes_the_statuspage_incident(
    app: Container, clock: FakeClock, statuspage: StatuspageFake, http: httpx.AsyncClient
) -> None:
    adapter = make(app, statuspage, http, clock=clock)  # withdraw is the default
    incident = await published(app, adapter)
    assert incident.id is not None
    shown = statuspage.only_incident()
    assert statuspage.components[CHECKOUT].status == "major_outage"
    before = len(statuspage.requests)
    await adapter.withdraw(incident=incident, body=WITHDRAWN, key="w/0")
    assert statuspage.incidents == {} and list(statuspage.deleted) == [shown.id]
    # Deleting leaves a component as it was: it was set back to operational first.
    assert statuspage.components[CHECKOUT].status == "operational"
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in statuspage.requests[before:]] == [
        ("GET", shown.id),
        ("GET", "unresolved"),  # does another incident still show checkout?
        ("PATCH", shown.id),
        ("DELETE", shown.id),
    ]
    assert statuspage.requests[-2].body == {
        "incident": {"components": {CHECKOUT: "operational"}, "component_ids": [CHECKOUT]}
    }
    refs = VendorRefs(app.database, clock)
    assert await refs.find(incident.id, "statuspage", "withdrawn") == shown.id
    # Retried, and a publish still running when it was cancelled: nothing more is sent.
    seen = len(statuspage.requests)
    await make(app, statuspage, http, clock=clock).withdraw(
        incident=incident, body=WITHDRAWN, key="w/0"
    )
    await adapter.publish(incident=incident, status=Status.IDENTIFIED, body="Found.", key="p/1")
    assert len(statuspage.requests) == seen
    assert statuspage.invalid == [] and statuspage.rate_limited == 0
    assert min(gaps(statuspage)) >= 1.0 - 1e-6


async def test_no_impact_resolves_it_with_the_last_word(
    app: Container, clock: FakeClock, statuspage: StatuspageFake, http: httpx.AsyncClient
) -> None:
    adapter = make(app, statuspage, http, clock=clock, cancelled_incidents="no_impact")
    incident = await published(app, adapter)
    await adapter.withdraw(incident=incident, body=WITHDRAWN, key="w/0")
    shown = statuspage.only_incident()
    assert shown.status == "resolved" and shown.resolved_at is not None
    assert shown.impact_override == "none"
    assert shown.bodies == ["Looking into it.", WITHDRAWN]
    assert statuspage.components[CHECKOUT].status == "operational"
    assert [(c["old_status"], c["new_status"]) for c in shown.updates[-1].affected_components] == [
        ("major_outage", "operational")
    ]
    # A crash before we wrote the withdrawal down: the retry sees it done and writes nothing.
    await forget(app, incident, "withdrawn")
    writes = len(statuspage.writes())
    await adapter.withdraw(incident=incident, body=WITHDRAWN, key="w/0")
    assert len(statuspage.writes()) == writes
    assert shown.bodies == ["Looking into it.", WITHDRAWN]
    seen = len(statuspage.requests)
    await adapter.withdraw(incident=incident, body=WITHDRAWN, key="w/0")
    assert len(statuspage.requests) == seen
    assert statuspage.invalid == []


@pytest.mark.parametrize("mode", ["withdraw", "no_impact"])
async def test_a_never_published_incident_sends_nothing(
    app: Container,
    clock: FakeClock,
    statuspage: StatuspageFake,
    http: httpx.AsyncClient,
    mode: str,
) -> None:
    adapter = make(app, statuspage, http, clock=clock, cancelled_incidents=mode)
    incident = await declare(app)
    await adapter.withdraw(incident=incident, body=WITHDRAWN, key="w/0")
    assert statuspage.requests == []


async def test_a_retried_withdraw_is_harmless(
    app: Container, clock: FakeClock, statuspage: StatuspageFake, http: httpx.AsyncClient
) -> None:
    adapter = make(app, statuspage, http, clock=clock, attempts=1)
    incident = await published(app, adapter)
    shown = statuspage.only_incident()
    # Deleted, then the line went dead: the attempt fails, the step is retried later.
    statuspage.drop_next(method="DELETE", process=True)
    with pytest.raises(VendorUnavailable, match=f"withdrawing {incident.ref} failed"):
        await adapter.withdraw(incident=incident, body=WITHDRAWN, key="w/0")
    assert list(statuspage.deleted) == [shown.id]
    await adapter.withdraw(incident=incident, body=WITHDRAWN, key="w/0")  # the retry
    assert [r.method for r in statuspage.requests[-1:]] == ["GET"]  # gone: nothing to do
    assert [r.status for r in statuspage.requests if r.method == "DELETE"] == [0]
    refs = VendorRefs(app.database, clock)
    assert await refs.find(incident.id or 0, "statuspage", "withdrawn") == shown.id

    # Deleted by hand on Statuspage before we got to it: withdrawn all the same.
    other = await published(app, adapter, title="Search down")
    del statuspage.incidents[statuspage.only_incident().id]
    await adapter.withdraw(incident=other, body=WITHDRAWN, key="w/1")
    assert await refs.find(other.id or 0, "statuspage", "withdrawn") is not None
    assert [r.status for r in statuspage.invalid] == [404, 404]  # the two GETs of the gone
    statuspage.invalid.clear()


async def test_a_merged_duplicate_leaves_the_components_the_other_incident_shows(
    app: Container, clock: FakeClock, statuspage: StatuspageFake, http: httpx.AsyncClient
) -> None:
    adapter = make(app, statuspage, http, clock=clock)
    first = await published(app, adapter)
    duplicate = await published(app, adapter, title="Checkout errors again")
    await adapter.withdraw(incident=duplicate, body=WITHDRAWN, key="w/0")
    assert len(statuspage.incidents) == 1 and len(statuspage.deleted) == 1
    assert statuspage.components[CHECKOUT].status == "major_outage"  # still out, for `first`
    assert [r.method for r in statuspage.writes()][-1:] == ["DELETE"]  # no PATCH before it
    assert first.id is not None


@pytest.mark.parametrize("mode", ["withdraw", "no_impact"])
async def test_withdraw_waits_out_429_and_retries_500(
    app: Container,
    clock: FakeClock,
    statuspage: StatuspageFake,
    http: httpx.AsyncClient,
    mode: str,
) -> None:
    adapter = make(
        app, statuspage, http, clock=clock, cancelled_incidents=mode, attempts=5, backoff=2.0
    )
    incident = await published(app, adapter)
    before = len(statuspage.requests)
    statuspage.rate_limit_next(2, retry_after="7")
    start = clock.monotonic()
    statuspage.fail_next(2, status=500, method="PATCH")
    await adapter.withdraw(incident=incident, body=WITHDRAWN, key="w/0")
    assert clock.monotonic() - start >= 7 + 7 + 2 + 4  # Retry-After twice, then backoff
    assert [r.status for r in statuspage.requests[before:]][:2] == [429, 429]
    assert [r.status for r in statuspage.requests if r.method == "PATCH"] == [500, 500, 200]
    assert statuspage.components[CHECKOUT].status == "operational"
    if mode == "withdraw":
        assert statuspage.incidents == {} and len(statuspage.deleted) == 1
    else:
        assert statuspage.only_incident().bodies == ["Looking into it.", WITHDRAWN]


async def test_withdraw_beyond_the_bound_is_unavailable_without_the_key(
    app: Container,
    clock: FakeClock,
    statuspage: StatuspageFake,
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    adapter = make(app, statuspage, http, clock=clock, attempts=3)
    incident = await published(app, adapter)
    statuspage.fail_next(3, status=500)  # as many as the adapter tries
    with pytest.raises(VendorUnavailable) as caught:
        await adapter.withdraw(incident=incident, body=WITHDRAWN, key="w/0")
    assert str(caught.value).startswith(
        f"Statuspage: withdrawing {incident.ref} failed after 3 attempts: HTTP 500 for GET"
    )
    assert len(statuspage.incidents) == 1
    statuspage.rate_limit_next(3, retry_after="3600")
    with pytest.raises(VendorUnavailable, match="longer than we wait") as limited:
        await adapter.withdraw(incident=incident, body=WITHDRAWN, key="w/0")
    assert limited.value.retry_after == 3600
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    for text in (str(caught.value), str(limited.value), logged):
        assert statuspage.api_key not in text
    await adapter.withdraw(incident=incident, body=WITHDRAWN, key="w/0")  # well again
    assert statuspage.incidents == {}


# --- never two: retries and restarts ---------------------------------------------------------


async def test_a_create_whose_answer_was_lost_is_found_not_repeated(
    app: Container, clock: FakeClock, statuspage: StatuspageFake, http: httpx.AsyncClient
) -> None:
    adapter = make(app, statuspage, http, clock=clock, attempts=1)
    incident = await declare(app)
    assert incident.id is not None
    statuspage.drop_next(method="POST", process=True)  # created, then the line went dead
    with pytest.raises(VendorUnavailable):
        await adapter.publish(incident=incident, status=Status.INVESTIGATING, body="Hi.", key="k")
    assert len(statuspage.incidents) == 1
    refs = VendorRefs(app.database, clock)
    assert await refs.find(incident.id, "statuspage", "incident") is None
    # The scheduler runs the step again, with the same key.
    await adapter.publish(incident=incident, status=Status.INVESTIGATING, body="Hi.", key="k")
    shown = statuspage.only_incident()
    assert len(shown.updates) == 1
    assert await refs.find(incident.id, "statuspage", "incident") == shown.id
    assert len(statuspage.writes()) == 1


@pytest.mark.parametrize("status", [Status.INVESTIGATING, Status.RESOLVED])
async def test_a_restart_that_lost_our_records_does_not_double(
    app: Container,
    clock: FakeClock,
    statuspage: StatuspageFake,
    http: httpx.AsyncClient,
    status: Status,
) -> None:
    incident = await declare(app)
    first = make(app, statuspage, http, clock=clock)
    await first.publish(incident=incident, status=status, body="Looking.", key="k/0")
    # A crash between Statuspage's create and our write: the rows never made it.
    await app.database.run(lambda session: session.execute(delete(VendorRefRow)))
    restarted = make(app, statuspage, http, clock=clock)
    await restarted.publish(incident=incident, status=status, body="Looking.", key="k/0")
    assert len(statuspage.only_incident().updates) == 1
    await restarted.publish(incident=incident, status=Status.RESOLVED, body="Fixed.", key="k/1")
    shown = statuspage.only_incident()
    assert shown.bodies == ["Looking.", "Fixed."]
    assert len(statuspage.writes()) == 2


async def test_two_steps_at_once_open_one_incident(
    app: Container, clock: FakeClock, statuspage: StatuspageFake, http: httpx.AsyncClient
) -> None:
    adapter = make(app, statuspage, http, clock=clock)
    incident = await declare(app)
    await asyncio.gather(
        adapter.publish(incident=incident, status=Status.INVESTIGATING, body="One.", key="a"),
        adapter.publish(incident=incident, status=Status.IDENTIFIED, body="Two.", key="b"),
    )
    assert sorted(statuspage.only_incident().bodies) == ["One.", "Two."]


# --- the rate limit: queue, do not fail ------------------------------------------------------


async def test_a_burst_is_queued_not_refused(app: Container, http: httpx.AsyncClient) -> None:
    # The adapter spaces the starts of its requests; arrivals jitter by a few milliseconds
    # (more under -X dev), so the fake allows half the spacing, as Statuspage's per-minute
    # window allows some slack around one per second.
    spacing_s = 0.08
    async with StatuspageFake(components=COMPONENTS, min_interval=spacing_s / 2) as fake:
        real = SystemClock()
        adapter = make(
            app, fake, http, clock=real, spacing=RequestSpacing(real, interval=spacing_s)
        )
        incidents = [await declare(app, title=f"Outage {n}") for n in range(4)]
        started = time.perf_counter()
        await asyncio.gather(
            *(
                adapter.publish(incident=i, status=Status.INVESTIGATING, body="x", key=f"k{n}")
                for n, i in enumerate(incidents)
            )
        )
        elapsed = time.perf_counter() - started
        assert len(fake.incidents) == 4
        assert fake.rate_limited == 0
        assert fake.invalid == []
        requests = len(fake.requests)
        assert requests == 8  # each: look for an earlier create, then create
        assert elapsed >= (requests - 1) * spacing_s
        assert min(gaps(fake)) >= spacing_s / 2
    assert fake.problems == []


@pytest.mark.parametrize("form", ["seconds", "http-date"])
async def test_429_waits_out_retry_after_then_succeeds(
    app: Container,
    clock: FakeClock,
    statuspage: StatuspageFake,
    http: httpx.AsyncClient,
    form: str,
) -> None:
    adapter = make(app, statuspage, http, clock=clock)
    incident = await declare(app)
    retry_after = (
        "7"
        if form == "seconds"
        else format_datetime(clock.now() + timedelta(seconds=7), usegmt=True)
    )
    statuspage.rate_limit_next(2, retry_after=retry_after)
    await adapter.publish(incident=incident, status=Status.INVESTIGATING, body="Hi.", key="k")
    assert len(statuspage.only_incident().updates) == 1
    first, second, third, *_ = sorted(r.at for r in statuspage.requests)
    assert second - first >= 7 - 1e-6
    if form == "seconds":  # a date is relative to the clock, which the first wait moved
        assert third - second >= 7 - 1e-6
    assert [r.status for r in statuspage.requests[:2]] == [429, 429]


async def test_rate_limited_to_the_end_hands_retry_after_to_the_scheduler(
    app: Container, clock: FakeClock, statuspage: StatuspageFake, http: httpx.AsyncClient
) -> None:
    adapter = make(app, statuspage, http, clock=clock, attempts=2, max_retry_after=60)
    incident = await declare(app)
    statuspage.rate_limit_next(2, retry_after="5")
    with pytest.raises(VendorUnavailable, match="rate limited") as caught:
        await adapter.publish(incident=incident, status=Status.INVESTIGATING, body="Hi.", key="k")
    assert caught.value.retry_after == 5
    # Asked to wait longer than we are willing to: give up at once, say how long it asked.
    statuspage.rate_limit_next(5, retry_after="3600")
    start = clock.monotonic()
    with pytest.raises(VendorUnavailable, match="longer than we wait") as caught:
        await adapter.publish(incident=incident, status=Status.INVESTIGATING, body="Hi.", key="k")
    assert caught.value.retry_after == 3600
    assert clock.monotonic() - start < 3600
    assert statuspage.incidents == {}


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_burst_of_server_errors_then_success(
    app: Container,
    clock: FakeClock,
    statuspage: StatuspageFake,
    http: httpx.AsyncClient,
    status: int,
) -> None:
    adapter = make(app, statuspage, http, clock=clock, attempts=5, backoff=2.0)
    incident = await declare(app)
    statuspage.fail_next(3, status=status)
    start = clock.monotonic()
    await adapter.publish(incident=incident, status=Status.INVESTIGATING, body="Hi.", key="k")
    assert len(statuspage.only_incident().updates) == 1
    assert clock.monotonic() - start >= 2 + 4 + 8  # exponential backoff
    assert len(statuspage.writes()) == 1


async def test_a_500_after_the_create_happened_does_not_double(
    app: Container, clock: FakeClock, statuspage: StatuspageFake, http: httpx.AsyncClient
) -> None:
    adapter = make(app, statuspage, http, clock=clock)
    incident = await declare(app)
    await adapter.publish(incident=incident, status=Status.INVESTIGATING, body="One.", key="a")
    statuspage.fail_next(1, status=502, method="PATCH", process=True)
    await adapter.publish(incident=incident, status=Status.IDENTIFIED, body="Two.", key="b")
    assert statuspage.only_incident().bodies == ["One.", "Two."]


async def test_beyond_the_bound_a_domain_error_without_the_key(
    app: Container,
    clock: FakeClock,
    statuspage: StatuspageFake,
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    adapter = make(app, statuspage, http, clock=clock, attempts=3)
    incident = await declare(app)
    statuspage.fail_next(10, status=500)
    with pytest.raises(VendorUnavailable) as caught:
        await adapter.publish(incident=incident, status=Status.INVESTIGATING, body="Hi.", key="k")
    error = caught.value
    assert error.vendor == "Statuspage"
    assert str(error).startswith(
        f"Statuspage: publishing {incident.ref} failed after 3 attempts: HTTP 500 for GET"
    )
    assert statuspage.incidents == {}
    assert len(statuspage.requests) == 3
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert "statuspage_retry" in logged
    for text in (str(error), repr(error), repr(error.args), logged, repr(adapter)):
        assert statuspage.api_key not in text


async def test_down_for_a_while_fails_the_attempt_then_recovers(
    app: Container, clock: FakeClock, statuspage: StatuspageFake, http: httpx.AsyncClient
) -> None:
    adapter = make(app, statuspage, http, clock=clock, attempts=4, backoff=1.0)
    incident = await declare(app)
    statuspage.down_until(clock.now() + timedelta(minutes=10))  # in virtual time
    with pytest.raises(VendorUnavailable, match="HTTP 503"):
        await adapter.publish(incident=incident, status=Status.INVESTIGATING, body="Hi.", key="k")
    clock.advance(timedelta(minutes=10))  # the scheduler's durable retry, later
    await adapter.publish(incident=incident, status=Status.INVESTIGATING, body="Hi.", key="k")
    assert len(statuspage.only_incident().updates) == 1


# --- the network misbehaving (real time, small numbers) --------------------------------------


async def test_a_timed_out_create_is_found_on_the_retry(
    app: Container, clock: FakeClock, statuspage: StatuspageFake
) -> None:
    async with httpx.AsyncClient(timeout=0.2) as http:
        adapter = make(app, statuspage, http, clock=clock)
        incident = await declare(app)
        statuspage.slow_next(method="POST", delay=1.0)  # done, but answered too late
        await adapter.publish(incident=incident, status=Status.INVESTIGATING, body="Hi.", key="k")
    assert len(statuspage.only_incident().updates) == 1
    assert len(statuspage.writes()) == 1


async def test_timeouts_beyond_the_bound(
    app: Container, clock: FakeClock, statuspage: StatuspageFake
) -> None:
    async with httpx.AsyncClient(timeout=0.1) as http:
        adapter = make(app, statuspage, http, clock=clock, attempts=2)
        incident = await declare(app)
        statuspage.slow_next(2, delay=1.0)
        with pytest.raises(VendorUnavailable, match="timed out") as caught:
            await adapter.publish(
                incident=incident, status=Status.INVESTIGATING, body="Hi.", key="k"
            )
    assert statuspage.api_key not in str(caught.value)
    assert statuspage.incidents == {}


async def test_a_refused_connection(
    app: Container, clock: FakeClock, statuspage: StatuspageFake, http: httpx.AsyncClient
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    adapter = make(
        app, statuspage, http, clock=clock, attempts=2, base_url=f"http://127.0.0.1:{port}/v1"
    )
    incident = await declare(app)
    with pytest.raises(VendorUnavailable, match="could not connect") as caught:
        await adapter.publish(incident=incident, status=Status.INVESTIGATING, body="Hi.", key="k")
    assert statuspage.api_key not in str(caught.value)


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("POST", '{"id": "trunc'),  # created, then a garbled answer
        ("POST", "[]"),  # JSON, but not an incident
        ("GET", '{"unexpected": true}'),  # the unresolved list is not a list
        ("GET", "<html>Bad gateway</html>"),
    ],
)
async def test_a_malformed_answer_is_retried(
    app: Container,
    clock: FakeClock,
    statuspage: StatuspageFake,
    http: httpx.AsyncClient,
    method: str,
    body: str,
) -> None:
    adapter = make(app, statuspage, http, clock=clock)
    incident = await declare(app)
    statuspage.malformed_next(method=method, body=body)
    await adapter.publish(incident=incident, status=Status.INVESTIGATING, body="Hi.", key="k")
    assert len(statuspage.only_incident().updates) == 1
    assert len(statuspage.writes()) == 1


async def test_a_slow_statuspage_does_not_block_the_event_loop(
    app: Container, clock: FakeClock, statuspage: StatuspageFake, http: httpx.AsyncClient
) -> None:
    adapter = make(app, statuspage, http, clock=clock)
    incident = await declare(app)
    statuspage.slow_next(method="GET", delay=0.3)
    beats: list[float] = []

    async def heartbeat() -> None:
        while True:
            beats.append(time.perf_counter())
            await asyncio.sleep(0.01)

    beating = asyncio.create_task(heartbeat())
    started = time.perf_counter()
    await adapter.publish(incident=incident, status=Status.INVESTIGATING, body="Hi.", key="k")
    took = time.perf_counter() - started
    beating.cancel()
    with pytest.raises(asyncio.CancelledError):
        await beating
    assert took >= 0.3
    assert len(beats) >= 10
    assert max(b - a for a, b in itertools.pairwise(beats)) < 0.1


# --- refusals: not retried, and they say what to fix -----------------------------------------


async def test_a_refusal_is_not_retried_and_says_what_to_fix(
    app: Container, clock: FakeClock, statuspage: StatuspageFake, http: httpx.AsyncClient
) -> None:
    incident = await declare(app)
    wrong_component = make(
        app, statuspage, http, clock=clock, components={"checkout": "cmpgone00001"}
    )
    with pytest.raises(VendorRejected, match=r"HTTP 422.*unknown component ids: cmpgone00001"):
        await wrong_component.publish(
            incident=incident, status=Status.INVESTIGATING, body="Hi.", key="k"
        )
    assert len(statuspage.writes()) == 1
    wrong_key = StatuspageStatusPage(
        client=http,
        refs=VendorRefs(app.database, clock),
        clock=clock,
        page_id=statuspage.page_id,
        api_key="sp-wrong-key-0123456789",
        base_url=statuspage.url,
    )
    with pytest.raises(VendorRejected, match=r"HTTP 401.*API key") as caught:
        await wrong_key.publish(incident=incident, status=Status.INVESTIGATING, body="Hi.", key="k")
    assert "sp-wrong-key-0123456789" not in str(caught.value)
    assert [r.status for r in statuspage.invalid] == [422, 401]
    statuspage.invalid.clear()


# --- the fake itself is strict ---------------------------------------------------------------


async def test_the_fake_refuses_what_statuspage_refuses(http: httpx.AsyncClient) -> None:
    clock = FakeClock()
    async with StatuspageFake(clock=clock, components=COMPONENTS, min_interval=0) as fake:
        incidents = f"{fake.url}/pages/{fake.page_id}/incidents"
        auth = {"Authorization": f"OAuth {fake.api_key}"}

        async def create(fields: dict[str, Any], headers: dict[str, str] = auth) -> int:
            answer = await http.post(incidents, json={"incident": fields}, headers=headers)
            return answer.status_code

        good = {"name": "Checkout down", "status": "investigating", "body": "Looking."}
        assert await create(good, {}) == 401
        assert await create(good, {"Authorization": f"Bearer {fake.api_key}"}) == 401
        assert await create(good, {"Authorization": "OAuth not-the-key"}) == 401
        wrong_page = await http.get(f"{fake.url}/pages/nosuchpage/incidents", headers=auth)
        assert wrong_page.status_code == 404
        assert (await http.post(incidents, json={"name": "x"}, headers=auth)).status_code == 400
        assert (await http.post(incidents, content=b"name=x", headers=auth)).status_code == 400
        bad_fields: list[dict[str, Any]] = [
            {"status": "investigating"},  # no name
            {**good, "status": "broken"},
            {**good, "status": "scheduled"},  # scheduled statuses need scheduled_for
            {**good, "impact_override": "apocalyptic"},
            {**good, "name": "x" * 256},
            {**good, "name": "   "},
            {**good, "body": "x" * 25_001},
            {**good, "components": {CHECKOUT: "down"}},
            {**good, "components": {"cmpunknown01": "major_outage"}},
            {**good, "component_ids": ["cmpunknown01"]},
            {**good, "metadata": {"ours": "not an object"}},
            {**good, "colour": "red"},
        ]
        for bad in bad_fields:
            assert await create(bad) in (400, 422), bad
        assert fake.incidents == {}
        assert await create({**good, "components": {CHECKOUT: "major_outage"}}) == 201
        by_query = await http.get(incidents, params={"api_key": fake.api_key})
        assert by_query.status_code == 200
        (shown,) = by_query.json()
        assert list(response_validator("Incident").iter_errors(_without_nulls(shown))) == []
        assert shown["components"][0]["status"] == "major_outage"
        assert shown["impact"] == "critical"  # computed from the component when not overridden

        # DELETE: the incident's id, no body, authenticated; gone for good afterwards.
        one = f"{incidents}/{shown['id']}"
        assert (await http.delete(f"{incidents}/incnosuch0001", headers=auth)).status_code == 404
        assert (await http.delete(one)).status_code == 401
        with_body = await http.request("DELETE", one, headers=auth, json={"incident": {}})
        assert with_body.status_code == 400
        deleted = await http.delete(one, headers=auth)
        assert deleted.status_code == 200 and deleted.json()["id"] == shown["id"]
        assert (await http.get(one, headers=auth)).status_code == 404
        assert (await http.delete(one, headers=auth)).status_code == 404
        assert fake.incidents == {} and list(fake.deleted) == [shown["id"]]
        assert fake.components[CHECKOUT].status == "major_outage"  # the page's, left as it was
    assert fake.problems == []


async def test_the_fake_enforces_its_rate_limit(http: httpx.AsyncClient) -> None:
    clock = FakeClock()
    async with StatuspageFake(clock=clock, min_interval=1.0) as fake:
        url = f"{fake.url}/pages/{fake.page_id}/incidents/unresolved"
        auth = {"Authorization": f"OAuth {fake.api_key}"}
        assert (await http.get(url, headers=auth)).status_code == 200
        limited = await http.get(url, headers=auth)
        assert (limited.status_code, limited.headers["Retry-After"]) == (429, "1")
        assert limited.json() == {"message": "Rate limit exceeded"}
        clock.advance(timedelta(seconds=1))
        assert (await http.get(url, headers=auth)).status_code == 200
        assert fake.rate_limited == 1


def _without_nulls(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _without_nulls(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [_without_nulls(v) for v in data]
    return data
