"""Cases linked to incidents, through the use cases and the real engine, in virtual time:
every customer-facing word of the incident (its updates, the playbook's holding updates, its
resolution) reaches each linked case's customer once; unlinking stops what is not sent yet;
resolution resolves the cases or waits for the customers' confirmation as configured; a
merged duplicate hands its cases over; a false alarm lets them go; a crash between sending
and marking sends nothing twice."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from incident.bootstrap import Container
from incident.clock import FakeClock
from incident.domain.access import AccessRole, Principal
from incident.domain.case import Case, CaseStatus, Plan
from incident.domain.errors import IllegalTransition, NotFound
from incident.domain.incident import Cancellation
from incident.domain.lifecycle import Severity
from incident.services import case_links as links
from incident.services import cases as uc
from incident.services import incidents as inc
from incident.services.cases import Support, case_ref
from incident.testing import RecordingEffects, SimulatedCrash, run_until
from tests.conftest import Build
from tests.service.test_cases import ROLES

AGENT = Principal("alice", AccessRole.RESPONDER)
IC = Principal("ivy", AccessRole.COMMANDER)
START = datetime(2026, 3, 9, 9, 30, tzinfo=UTC)  # a Monday, in business hours


def support(app: Container) -> Support:
    return Support(app.support.rt, app.support.playbook, ROLES)


def resolving_with(app: Container, status: CaseStatus) -> Support:
    """The service with linked cases becoming `status` when their incident resolves (the
    shipped playbook says pending)."""
    playbook = dataclasses.replace(app.support.playbook, on_incident_resolved=status)
    sp = Support(app.support.rt, playbook, ROLES)
    app.support.rt.followers[:] = [links.CaseRelay(sp)]
    return sp


def draft(clock: FakeClock, n: int) -> Case:
    return Case(
        reference=f"ZD-{2000 + n}",
        customer_id=f"cust-{n}",
        summary="Bridge transfer stuck for hours",
        plan=Plan.PRO,
        priority=Severity.P3,
        opened_at=clock.now(),
        opened_by="",
        customer_email=f"customer{n}@example.org",
    )


def to_customer(vendor: RecordingEffects, case_id: int) -> list[str]:
    """The messages the customer of a case got, in order."""
    subject = case_ref(case_id)
    return [
        s.body
        for s in vendor.sends
        if s.port == "messenger" and s.target == "customer" and s.subject == subject
    ]


def notices_to(vendor: RecordingEffects, case_id: int) -> list[str]:
    """Those that carry one of the linked incident's words."""
    return [
        body
        for body in to_customer(vendor, case_id)
        if "wider issue" in body or "has been resolved" in body
    ]


async def declare(app: Container) -> int:
    incident, _ = await inc.declare_incident(
        app.runtime, title="Bridge relayer stalled", severity=Severity.P2, by=IC
    )
    assert incident.id is not None
    return incident.id


async def open_cases(sp: Support, clock: FakeClock, count: int) -> list[int]:
    ids = []
    for n in range(count):
        view = await uc.open_case(sp, draft(clock, n), by=AGENT)
        assert view.case.id is not None
        ids.append(view.case.id)
    return ids


async def test_each_update_and_the_resolution_reach_each_linked_customer_once(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(START)
    app = await build()
    sp = support(app)
    incident_id = await declare(app)
    cases = await open_cases(sp, clock, 3)
    for case_id in cases:
        await links.link_case(sp, case_id, incident_id, by=AGENT)
    linked = await links.linked_cases(sp, incident_id)
    assert [c.id for c in linked.cases] == cases and linked.customers == 3

    clock.advance(timedelta(minutes=5))
    await inc.post_customer_update(
        app.runtime, incident_id, message="Transfers are delayed; funds are safe.", by=IC
    )
    clock.advance(timedelta(minutes=20))
    await inc.post_customer_update(
        app.runtime, incident_id, message="A fix is rolling out to the relayer.", by=IC
    )
    clock.advance(timedelta(minutes=10))
    await inc.resolve_incident(app.runtime, incident_id, summary="Relayer restarted", by=IC)
    await run_until(app, clock, clock.now() + timedelta(minutes=1))

    for case_id in cases:
        first, second, resolved = notices_to(vendor, case_id)
        assert "Transfers are delayed; funds are safe." in first
        assert "A fix is rolling out to the relayer." in second
        assert "has been resolved" in resolved and "let us know" in " ".join(resolved.split())
        view = await uc.read_case(sp, case_id)
        assert view.case.status is CaseStatus.PENDING  # as the shipped playbook says
    # The holding updates the P2 playbook sends on its cadence count too; each went once.
    keys = [s.key for s in vendor.sends if s.port == "messenger" and s.target == "customer"]
    assert len(keys) == len(set(keys))


async def test_configured_to_resolve_the_cases_resolve_with_their_incident(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(START)
    app = await build()
    sp = resolving_with(app, CaseStatus.RESOLVED)
    incident_id = await declare(app)
    (case_id,) = await open_cases(sp, clock, 1)
    await links.link_case(sp, case_id, incident_id, by=AGENT)
    await inc.resolve_incident(app.runtime, incident_id, summary="Relayer restarted", by=IC)
    await run_until(app, clock, clock.now() + timedelta(minutes=1))
    (resolved,) = notices_to(vendor, case_id)
    assert "resolved with it" in " ".join(resolved.split())
    view = await uc.read_case(sp, case_id)
    assert view.case.status is CaseStatus.RESOLVED
    assert view.case.resolution == f"resolved with INC-{incident_id}"
    assert "Relayer restarted" not in resolved  # the summary is internal


async def test_the_playbooks_holding_updates_are_relayed_too(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(START)
    app = await build()
    sp = support(app)
    incident_id = await declare(app)
    (case_id,) = await open_cases(sp, clock, 1)
    await links.link_case(sp, case_id, incident_id, by=AGENT)
    await run_until(app, clock, START + timedelta(hours=5))
    timeline = await app.store.run(lambda tx: tx.timeline(incident_id))
    holding = [e.text for e in timeline if e.kind == "customer_update" and e.data["automatic"]]
    assert holding, "the P2 playbook posts holding updates on its cadence"
    relayed = notices_to(vendor, case_id)
    assert len(relayed) == len(holding)
    for text, body in zip(holding, relayed, strict=True):
        assert " ".join(text.split())[:60] in " ".join(body.split())


async def test_a_case_linked_late_hears_the_latest_update_at_once(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(START)
    app = await build()
    sp = support(app)
    incident_id = await declare(app)
    await inc.post_customer_update(app.runtime, incident_id, message="Old news.", by=IC)
    await inc.post_customer_update(app.runtime, incident_id, message="Where we are now.", by=IC)
    (case_id,) = await open_cases(sp, clock, 1)
    clock.advance(timedelta(minutes=3))
    await links.link_case(sp, case_id, incident_id, by=AGENT)
    await run_until(app, clock, clock.now())
    (only,) = notices_to(vendor, case_id)
    assert "Where we are now." in only and "Old news." not in only


async def test_unlinking_stops_what_is_not_sent_yet_and_all_that_follows(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(START)
    app = await build()
    sp = support(app)
    incident_id = await declare(app)
    kept, dropped = await open_cases(sp, clock, 2)
    for case_id in (kept, dropped):
        await links.link_case(sp, case_id, incident_id, by=AGENT)
    await inc.post_customer_update(app.runtime, incident_id, message="First word.", by=IC)
    # Unlinked before the engine ran: its queued notice goes nowhere.
    view = await links.unlink_case(sp, dropped, by=AGENT)
    assert view.case.incident_id is None
    assert not [u for u in view.upcoming if u.step_id.startswith("incident_notice.")]
    await inc.post_customer_update(app.runtime, incident_id, message="Second word.", by=IC)
    await inc.resolve_incident(app.runtime, incident_id, summary="Fixed", by=IC)
    await run_until(app, clock, clock.now() + timedelta(minutes=1))
    assert len(notices_to(vendor, kept)) == 3
    assert notices_to(vendor, dropped) == []
    assert (await uc.read_case(sp, dropped)).case.status is CaseStatus.OPEN
    with pytest.raises(IllegalTransition, match="not linked"):
        await links.unlink_case(sp, dropped, by=AGENT)


async def test_waiting_for_confirmation_then_resolved_when_the_customer_stays_silent(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(START)
    app = await build()
    sp = support(app)
    assert sp.playbook.on_incident_resolved is CaseStatus.PENDING
    incident_id = await declare(app)
    answered, silent = await open_cases(sp, clock, 2)
    for case_id in (answered, silent):
        await links.link_case(sp, case_id, incident_id, by=AGENT)
    await inc.resolve_incident(app.runtime, incident_id, summary="Fixed", by=IC)
    await run_until(app, clock, clock.now() + timedelta(minutes=1))
    view = await uc.read_case(sp, silent)
    assert view.case.status is CaseStatus.PENDING
    assert "let us know" in " ".join(notices_to(vendor, silent)[-1].split())
    steps = {u.step_id: u.due_at for u in view.upcoming}
    assert set(steps) == {"confirmation-reminder", "confirmation-timeout"}
    # The customer answers: open again, its clocks running, the confirmation ones gone.
    clock.advance(timedelta(hours=1))
    back = await uc.record_progress(
        sp, answered, "Customer: still failing for me", to_customer=False, by=AGENT
    )
    assert back.case.status is CaseStatus.OPEN
    assert not {"confirmation-reminder", "confirmation-timeout"} & {
        u.step_id for u in back.upcoming
    }
    await run_until(app, clock, steps["confirmation-timeout"])
    reminded = to_customer(vendor, silent)[-1]
    assert "have not heard from you" in " ".join(reminded.split())
    done = await uc.read_case(sp, silent)
    assert done.case.status is CaseStatus.RESOLVED
    assert done.case.resolution is not None and "no answer" in done.case.resolution


async def test_a_reopened_incident_opens_the_cases_waiting_for_confirmation(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(START)
    app = await build()
    sp = support(app)
    incident_id = await declare(app)
    (case_id,) = await open_cases(sp, clock, 1)
    await links.link_case(sp, case_id, incident_id, by=AGENT)
    await inc.resolve_incident(app.runtime, incident_id, summary="Fixed", by=IC)
    clock.advance(timedelta(hours=2))
    await inc.reopen_incident(app.runtime, incident_id, reason="It is back", by=IC)
    view = await uc.read_case(sp, case_id)
    assert view.case.status is CaseStatus.OPEN and view.case.incident_id == incident_id
    await inc.post_customer_update(app.runtime, incident_id, message="It is back.", by=IC)
    await run_until(app, clock, clock.now())
    assert "It is back." in notices_to(vendor, case_id)[-1]


async def test_a_merged_duplicate_hands_its_cases_over_and_a_false_alarm_lets_them_go(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(START)
    app = await build()
    sp = support(app)
    duplicate, survivor, false_alarm = [await declare(app) for _ in range(3)]
    moved, freed = await open_cases(sp, clock, 2)
    await links.link_case(sp, moved, duplicate, by=AGENT)
    await links.link_case(sp, freed, false_alarm, by=AGENT)
    await inc.merge_incident(app.runtime, duplicate, into=survivor, by=IC)
    await inc.cancel_incident(app.runtime, false_alarm, reason=Cancellation.FALSE_ALARM, by=IC)
    assert (await uc.read_case(sp, moved)).case.incident_id == survivor
    assert (await uc.read_case(sp, freed)).case.incident_id is None
    await inc.post_customer_update(app.runtime, survivor, message="One word for all.", by=IC)
    await run_until(app, clock, clock.now())
    assert ["One word for all." in body for body in notices_to(vendor, moved)] == [True]
    assert notices_to(vendor, freed) == []


async def test_links_are_refused_to_incidents_that_are_over_or_missing(
    build: Build, clock: FakeClock
) -> None:
    clock.set(START)
    app = await build()
    sp = support(app)
    incident_id = await declare(app)
    (case_id,) = await open_cases(sp, clock, 1)
    await inc.resolve_incident(app.runtime, incident_id, summary="Fixed", by=IC)
    with pytest.raises(IllegalTransition, match="resolved: link cases to an open incident"):
        await links.link_case(sp, case_id, incident_id, by=AGENT)
    with pytest.raises(NotFound):
        await links.link_case(sp, case_id, 999, by=AGENT)
    with pytest.raises(NotFound):
        await links.linked_cases(sp, 999)
    view = await uc.read_case(sp, case_id)
    assert view.case.incident_id is None
    assert [e.kind for e in view.timeline] == ["case_opened"]


async def test_a_crash_between_sending_and_marking_sends_each_word_once(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(START)
    app = await build()
    sp = support(app)
    incident_id = await declare(app)
    cases = await open_cases(sp, clock, 5)
    for case_id in cases:
        await links.link_case(sp, case_id, incident_id, by=AGENT)
    await inc.post_customer_update(app.runtime, incident_id, message="Update one.", by=IC)
    await inc.post_customer_update(app.runtime, incident_id, message="Update two.", by=IC)
    # The process dies right after each of three notices went out, before its mark.
    crashed: list[str] = []

    def crash_once(key: str) -> bool:
        if "incident_notice." in key and len(crashed) < 3 and key not in crashed:
            crashed.append(key)
            return True
        return False

    vendor.crash_when = crash_once
    while len(crashed) < 3:
        with pytest.raises(SimulatedCrash):
            await app.scheduler.tick(clock.now())
        await app.close()
        app = await build()
        await app.store.run(lambda tx: tx.release_claims())
    await inc.resolve_incident(app.runtime, incident_id, summary="Fixed", by=IC)
    await run_until(app, clock, clock.now() + timedelta(minutes=1))
    for case_id in cases:
        bodies = notices_to(vendor, case_id)
        assert len(bodies) == 3
        assert ["Update one." in bodies[0], "Update two." in bodies[1]] == [True, True]
    notice_keys = [s.key for s in vendor.sends if "incident_notice." in s.key]
    assert len(notice_keys) == len(set(notice_keys)) == 15
    assert [vendor.attempts[k] for k in crashed] == [2, 2, 2]  # sent again, taking no effect
