"""The whole incident lifecycle on the engine, in virtual time, with recording fake ports:
closing after resolving, cancelling, reopening, merging, editing, approvals of security
texts, follow-up items, and what each audience hears. Each test on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import socket
from datetime import timedelta

import pytest

from incident.bootstrap import Container
from incident.clock import FakeClock
from incident.config import Settings
from incident.domain.alerts import AlertGroup
from incident.domain.errors import IllegalTransition, InvalidValue, NotFound
from incident.domain.incident import Cancellation, Category, Role, Severity, Status
from incident.domain.status_page import Catalog, Component
from incident.services import exports
from incident.services import incidents as uc
from incident.testing import RecordingEffects, run_until
from tests.conftest import T0
from tests.service.test_engine import declare, sends_of

M = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)

RESOLUTION_STEPS = (
    "status-page-resolved",
    "resolution-notice",
    "notify-executives-resolved",
    "notify-management-resolved",
    "notify-support-manager-resolved",
    "pager-resolve",
)


@pytest.fixture
def settings(settings_on_both: Settings) -> Settings:
    checkout = Component(id="checkout", name="Checkout")
    return dataclasses.replace(settings_on_both, catalog=Catalog.build([checkout], []))


def ports_of(vendor: RecordingEffects, incident_id: int) -> list[tuple[str, str]]:
    """(port, step) of every send of one incident, in order."""
    return [(s.port, s.key.split("/")[1]) for s in vendor.sends if s.incident_id == incident_id]


# --- closing does not cancel what resolving planned (issue: RCA right after resolving) -----


async def test_update_resolve_and_rca_back_to_back_run_every_resolution_step_once(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app, Severity.P1)
    await run_until(app, clock, T0 + 2 * M)
    rt = app.runtime
    await uc.post_customer_update(rt, incident_id, message="Found it", by="dana")
    await uc.resolve_incident(rt, incident_id, summary="rolled back", by="dana")
    await uc.complete_rca(rt, incident_id, link="https://docs.example.com/rca/1", by="dana")
    await run_until(app, clock, T0 + 3 * D)
    for step in RESOLUTION_STEPS:
        assert sends_of(vendor, step) == [2 * M], step
    # The executives get the RCA link the resolution notice promised them.
    assert sends_of(vendor, "notify-executives-rca") == [2 * M]
    rca = next(s for s in vendor.sends if s.key.split("/")[1] == "notify-executives-rca")
    assert "https://docs.example.com/rca/1" in rca.body
    # What waits for the RCA (the review invitation, the deadline's reminders) does not run.
    assert sends_of(vendor, "schedule-review") == []
    assert sends_of(vendor, "rca.missed") == []
    view = await uc.get_incident(rt, incident_id)
    assert view.incident.status is Status.CLOSED
    assert not [e for e in view.timeline if e.kind == "steps_cancelled" and "pager" in e.text]


# --- what audiences hear when it resolves before their notice is due -------------------------


async def test_a_p1_resolved_before_the_management_notices_tells_them_it_is_resolved(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app, Severity.P1)
    await run_until(app, clock, T0 + 5 * M)
    await uc.resolve_incident(app.runtime, incident_id, summary="blip", by="dana")
    await run_until(app, clock, T0 + 2 * H)
    # No "a critical incident was declared ... what to do: nothing yet" after the fact ...
    assert sends_of(vendor, "notify-management") == []
    assert sends_of(vendor, "notify-executives") == []
    # ... but one notice that says it was declared and resolved, and when the RCA is due.
    for step in ("notify-management-resolved", "notify-executives-resolved"):
        (sent,) = [s for s in vendor.sends if s.key.split("/")[1] == step]
        assert sent.at - T0 == 5 * M
        assert "Resolved: INC-1 [P1]" in sent.body and "RCA" in sent.body
    executives = next(
        s for s in vendor.sends if s.key.split("/")[1] == "notify-executives-resolved"
    )
    assert "You will get the RCA link" in executives.body


async def test_a_late_internal_notice_of_a_resolved_incident_says_so(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    """A notice sent late (the service was down) does not present a resolved incident as
    new, and does not promise a next customer update at a time already past."""
    incident_id = await declare(app, Severity.P1)
    await uc.resolve_incident(app.runtime, incident_id, summary="blip", by="dana")
    await run_until(app, clock, T0 + M)
    (notice,) = [s for s in vendor.sends if s.key.split("/")[1] == "notify-support-manager"]
    assert "It is already resolved" in notice.body
    assert "What to do: nothing" in notice.body


async def test_a_notice_sent_late_promises_no_update_time_already_past(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    await declare(app, Severity.P1)
    await run_until(app, clock, T0 + 15 * M)  # customers were told at 10 min: next by 40 min
    # The service was then down for two hours: the executive notice (due at 30 min) goes
    # out late, before the holding update due at 40 min, which is just as overdue.
    clock.advance(2 * H)
    await app.scheduler.tick(clock.now())
    (executive,) = [s for s in vendor.sends if s.key.split("/")[1] == "notify-executives"]
    assert executive.at == T0 + 2 * H + 15 * M
    promise = executive.body.split("What happens next:")[1]
    assert "09:40" not in promise  # (the last update, quoted above it, did say 09:40)
    assert "Customers get an update every 30 minutes" in promise


# --- the P1's own descriptions, not the P2's (issue: steps shared by two playbooks) ----------


async def test_upcoming_steps_are_described_by_the_incidents_own_playbook(app: Container) -> None:
    p1 = await declare(app, Severity.P1)
    p2 = await declare(app, Severity.P2)
    one = {u.step_id: u.description for u in (await uc.get_incident(app.runtime, p1)).upcoming}
    two = {u.step_id: u.description for u in (await uc.get_incident(app.runtime, p2)).upcoming}
    assert "every 30 minutes" in one["customer-update"]
    assert "every 2 hours" in two["customer-update"]
    assert one["customer-notification"] != two["customer-notification"]


# --- the war room's greeting and topic follow the facts ------------------------------------


async def test_naming_a_commander_refreshes_the_greeting_and_topic(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app, Severity.P1)
    await run_until(app, clock, T0 + M)
    assert "Commander: nobody yet" in vendor.greetings[incident_id]
    await uc.assign_role(app.runtime, incident_id, Role.COMMANDER, "dana", by="dana")
    await run_until(app, clock, T0 + 2 * M)
    (refresh,) = [s for s in vendor.sends if s.port == "chat.refresh"]
    assert refresh.target == "P1 investigating dana"  # the topic: no "IC: none yet"
    assert "Commander: dana" in vendor.greetings[incident_id]
    # The greeting lists what happens next, with due times.
    assert "*What happens next*" in vendor.greetings[incident_id]
    assert "2026-03-02 09:10 UTC" in vendor.greetings[incident_id]


async def test_raising_the_severity_republishes_the_status_page_with_the_new_cadence(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app, Severity.P2)
    await run_until(app, clock, T0 + 10 * M)
    first = [s.body for s in vendor.sends if s.port == "status_page"]
    assert first and "Next update by 2026-03-02 11:00" in first[0]  # P2: every 2 hours
    await uc.change_severity(app.runtime, incident_id, Severity.P1, by="dana")
    await run_until(app, clock, T0 + 11 * M)
    again = [s.body for s in vendor.sends if s.port == "status_page"][1:]
    assert again == [again[0]] and "Next update by 2026-03-02 09:40" in again[0]


# --- cancelling ---------------------------------------------------------------------------


async def test_a_false_alarm_stops_the_playbook_resolves_its_pages_and_withdraws_it(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app, Severity.P1)
    await run_until(app, clock, T0 + 2 * M)
    before = len(vendor.sends)
    await uc.cancel_incident(
        app.runtime, incident_id, reason=Cancellation.FALSE_ALARM, note="test alert", by="dana"
    )
    await run_until(app, clock, T0 + 3 * D)
    after = ports_of(vendor, incident_id)[before:]
    assert sorted(after) == [
        ("chat.refresh", "refresh-war-room-cancelled"),
        ("pager.resolve", "pager-resolve-cancelled"),
        ("status_page.withdraw", "status-page-withdrawn"),
    ]
    view = await uc.get_incident(app.runtime, incident_id)
    assert view.incident.status is Status.CANCELLED and view.incident.rca_due_at is None
    assert view.upcoming == []
    assert "Cancelled" in vendor.greetings[incident_id]
    with pytest.raises(IllegalTransition):
        await uc.resolve_incident(app.runtime, incident_id, summary="x", by="dana")
    with pytest.raises(IllegalTransition):
        await uc.cancel_incident(app.runtime, incident_id, reason=Cancellation.DECLINED, by="dana")


# --- reopening ----------------------------------------------------------------------------


async def test_a_reopened_incident_resumes_its_cadence_and_resolves_again(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app, Severity.P1)
    await uc.post_customer_update(app.runtime, incident_id, message="On it", by="dana")
    await run_until(app, clock, T0 + 20 * M)
    await uc.resolve_incident(app.runtime, incident_id, summary="fixed", by="dana")
    await run_until(app, clock, T0 + 3 * H)
    assert sends_of(vendor, "customer-update") == []  # resolved before the first was due
    reopened = await uc.reopen_incident(
        app.runtime, incident_id, reason="errors are back", by="dana"
    )
    assert reopened.status is Status.INVESTIGATING and reopened.rca_due_at is None
    await run_until(app, clock, T0 + 4 * H)
    # The cadence restarts from the reopening (not a burst of missed updates) ...
    assert sends_of(vendor, "customer-update") == [3 * H + 30 * M, 4 * H]
    assert sends_of(vendor, "status-page-reopened") == [3 * H]
    await uc.resolve_incident(app.runtime, incident_id, summary="fixed again", by="dana")
    await run_until(app, clock, T0 + 5 * H)
    # ... and resolving again tells customers and the pager again, once each time.
    assert sends_of(vendor, "resolution-notice") == [20 * M, 4 * H]
    assert sends_of(vendor, "pager-resolve") == [20 * M, 4 * H]
    view = await uc.get_incident(app.runtime, incident_id)
    assert view.incident.rca_due_at == T0 + 4 * H + 48 * H
    with pytest.raises(InvalidValue):
        await uc.reopen_incident(app.runtime, incident_id, reason=" ", by="dana")


async def test_only_a_resolved_incident_reopens(app: Container) -> None:
    incident_id = await declare(app, Severity.P2)
    with pytest.raises(IllegalTransition, match="only a resolved incident"):
        await uc.reopen_incident(app.runtime, incident_id, reason="x", by="dana")
    await uc.resolve_incident(app.runtime, incident_id, summary="fixed", by="dana")
    await uc.complete_rca(app.runtime, incident_id, link="https://r/1", by="dana")
    with pytest.raises(IllegalTransition, match="declare a new incident"):
        await uc.reopen_incident(app.runtime, incident_id, reason="x", by="dana")


# --- merging ------------------------------------------------------------------------------


async def test_merging_a_duplicate_moves_its_links_and_resolves_its_pages(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    target = await declare(app, Severity.P1)
    duplicate, _ = await uc.declare_incident(
        app.runtime,
        title="Checkout errors (duplicate)",
        severity=Severity.P2,
        by="alertmanager",
        components={"checkout": "major_outage"},
    )
    assert duplicate.id is not None
    group = AlertGroup(
        source="alertmanager",
        group_key='{}:{alertname="X"}',
        generation=1,
        incident_id=duplicate.id,
        alerts={},
        firing=True,
        created_at=T0,
        updated_at=T0,
    )
    await app.store.run(lambda tx: tx.add_alert_group(group))
    await run_until(app, clock, T0 + M)
    merged_into = await uc.merge_incident(app.runtime, duplicate.id, into=target, by="dana")
    await run_until(app, clock, T0 + H)
    assert merged_into.id == target
    dup = (await uc.get_incident(app.runtime, duplicate.id)).incident
    assert dup.status is Status.CANCELLED and dup.merged_into == target
    assert dup.cancellation is Cancellation.DUPLICATE
    assert ("pager.resolve", "pager-resolve-cancelled") in ports_of(vendor, duplicate.id)
    view = await uc.get_incident(app.runtime, target)
    assert view.incident.components.get("checkout") is not None
    kinds = [e.kind for e in view.timeline]
    assert "merged" in kinds and "alert_groups_moved" in kinds
    found = await app.store.run(lambda tx: tx.find_alert_group("alertmanager", group.key_hash))
    assert found is not None and found[0].incident_id == target
    with pytest.raises(InvalidValue):
        await uc.merge_incident(app.runtime, target, into=target, by="dana")
    with pytest.raises(IllegalTransition):  # the duplicate is no longer open
        await uc.merge_incident(app.runtime, duplicate.id, into=target, by="dana")


# --- editing ------------------------------------------------------------------------------


async def test_adding_the_security_category_brings_the_security_teams_steps(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app, Severity.P2)
    await run_until(app, clock, T0 + 5 * M)
    assert sends_of(vendor, "notify-security") == []
    edited = await uc.edit_incident(
        app.runtime, incident_id, by="sam", category=Category.SECURITY, title="Token leak"
    )
    assert edited.category is Category.SECURITY and edited.title == "Token leak"
    await run_until(app, clock, T0 + 6 * M)
    assert sends_of(vendor, "notify-security") == [5 * M]
    view = await uc.get_incident(app.runtime, incident_id)
    (entry,) = [e for e in view.timeline if e.kind == "edited"]
    assert "'Checkout API down' -> 'Token leak'" in entry.text
    with pytest.raises(IllegalTransition, match="nothing to change"):
        await uc.edit_incident(app.runtime, incident_id, by="sam", title="Token leak")
    with pytest.raises(InvalidValue):
        await uc.edit_incident(app.runtime, incident_id, by="sam", title=" ")


# --- security texts wait for the commander's approval ------------------------------------


async def test_a_security_incidents_customer_texts_wait_for_approval(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident, _ = await uc.declare_incident(
        app.runtime,
        title="Suspicious logins",
        severity=Severity.P1,
        by="dana",
        category=Category.SECURITY,
    )
    assert incident.id is not None
    await run_until(app, clock, T0 + 15 * M)
    # Pages and internal notices went; nothing reached customers or the status page.
    assert sends_of(vendor, "page-oncall-tier3") == [0 * M]
    assert sends_of(vendor, "notify-security") == [0 * M]
    assert [s for s in vendor.sends if s.port in ("customers", "status_page")] == []
    view = await uc.get_incident(app.runtime, incident.id)
    held = {u.step_id for u in view.upcoming if u.state == "held"}
    assert held == {"status-page-investigating", "customer-notification"}
    # The war room was asked, with the text it would send.
    asks = [s for s in vendor.sends if s.key.endswith("/approval")]
    assert len(asks) == 2 and "/incident approve" in asks[0].body
    previews = [e.data["preview"] for e in view.timeline if e.kind == "step_held"]
    assert any("We are investigating" in p for p in previews)
    await uc.approve_step(app.runtime, incident.id, "status-page-investigating", by="dana")
    await run_until(app, clock, T0 + 16 * M)
    published = [s.at - T0 for s in vendor.sends if s.port == "status_page"]
    assert published == [15 * M]
    assert [s for s in vendor.sends if s.port == "customers"] == []  # still held
    with pytest.raises(NotFound):
        await uc.approve_step(app.runtime, incident.id, "no-such-step", by="dana")
    # An upcoming one approved ahead goes out on time.
    await uc.approve_step(app.runtime, incident.id, "customer-update", by="dana")
    await uc.skip_step(app.runtime, incident.id, "customer-notification", reason="no", by="dana")
    await run_until(app, clock, T0 + 31 * M)
    assert [s.at - T0 for s in vendor.sends if s.port == "customers"] == [30 * M]


# --- follow-up action items ---------------------------------------------------------------


async def test_follow_ups_are_reminded_until_done(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app, Severity.P2)
    await uc.resolve_incident(app.runtime, incident_id, summary="fixed", by="dana")
    await uc.complete_rca(app.runtime, incident_id, link="https://r/1", by="dana")
    item = await uc.add_follow_up(
        app.runtime,
        incident_id,
        title="Alert on pool exhaustion",
        owner="sam@example.com",
        due_at=T0 + 5 * D,
        by="dana",
    )
    assert item.id is not None and item.ref == f"FU-{item.id}"
    await run_until(app, clock, T0 + 7 * D + H)
    reminder = f"follow-up-{item.id}.reminder"
    overdue = f"follow-up-{item.id}.overdue"
    assert sends_of(vendor, reminder) == [4 * D]
    assert sends_of(vendor, overdue) == [5 * D, 6 * D, 7 * D]
    body = next(s.body for s in vendor.sends if s.key.split("/")[1] == overdue)
    assert "Overdue follow-up" in body and "sam@example.com" in body
    done = await uc.complete_follow_up(app.runtime, incident_id, item.id, by="sam")
    assert done.done_by == "sam"
    await run_until(app, clock, T0 + 10 * D)
    assert sends_of(vendor, overdue) == [5 * D, 6 * D, 7 * D]
    with pytest.raises(IllegalTransition):
        await uc.complete_follow_up(app.runtime, incident_id, item.id, by="sam")
    with pytest.raises(NotFound):
        await uc.complete_follow_up(app.runtime, incident_id, item.id + 100, by="sam")
    with pytest.raises(InvalidValue):
        await uc.add_follow_up(
            app.runtime, incident_id, title="x", owner="sam", due_at=T0, by="dana"
        )


# --- the documents --------------------------------------------------------------------------


async def test_the_postmortem_draft_is_filled_from_the_facts(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app, Severity.P1)
    await uc.acknowledge_incident(app.runtime, incident_id, by="sam")
    await run_until(app, clock, T0 + 3 * M)
    await uc.add_internal_note(app.runtime, incident_id, text="Rolled back *deploy* 42", by="sam")
    await uc.post_customer_update(app.runtime, incident_id, message="Fix deployed", by="dana")
    await uc.resolve_incident(app.runtime, incident_id, summary="rolled back", by="dana")
    await run_until(app, clock, T0 + 10 * M)
    draft = await exports.postmortem_draft(app.runtime, app.documents, incident_id)
    assert draft.startswith("# Postmortem: INC-1 Checkout API down")
    assert "Rolled back \\*deploy\\* 42" in draft  # people's text is escaped
    assert "Fix deployed" in draft.split("## What customers were told")[1]
    assert "**sam**" in draft and "**dana**" in draft
    assert "_To complete: why it happened" in draft
    timeline = await exports.timeline_markdown(app.runtime, app.documents, incident_id)
    assert "`acknowledged`" in timeline and "`resolved`" in timeline


# --- what `incident simulate` shows ----------------------------------------------------------


async def test_simulate_shows_a_cancellation_and_held_security_texts(settings: Settings) -> None:
    from incident.cli.simulate import Script, simulate

    cancelled = await simulate(
        Script(severity=Severity.P2, until=2 * H, cancel_after=20 * M), settings
    )
    after = {(e.step, e.result) for e in cancelled if e.at >= 20 * M and e.kind == "step"}
    assert after == {
        ("pager-resolve-cancelled", "done"),
        ("status-page-withdrawn", "done"),
        ("refresh-war-room-cancelled", "done"),
    }
    security = await simulate(
        Script(severity=Severity.P1, until=20 * M, category=Category.SECURITY), settings
    )
    held = {e.step for e in security if e.result == "held"}
    assert held == {"status-page-investigating", "customer-notification"}


async def test_simulate_never_reaches_the_configured_vendors(settings: Settings) -> None:
    """Live credentials in the settings do not make a simulation page anybody: its pages
    go to a recorder (the configured PagerDuty here is a closed port: a real call would
    fail, and the step with it)."""
    from incident.cli.simulate import Script, simulate

    live = dataclasses.replace(
        settings,
        pagerduty_routing_key="r" * 32,
        pagerduty_events_url=f"http://127.0.0.1:{closed_port()}",
    )
    events = await simulate(Script(severity=Severity.P1, until=10 * M), live)
    pages = [e for e in events if e.kind == "step" and e.action == "page"]
    assert pages and {e.result for e in pages} == {"done"}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
