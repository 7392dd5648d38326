"""The engine's promises, in virtual time, with recording fake ports: each test on a real
SQLite file and on a real PostgreSQL database."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta

import pytest

from incident.bootstrap import Container
from incident.clock import FakeClock
from incident.config import PROJECT_ROOT, Settings
from incident.domain.errors import IllegalTransition, NotFound
from incident.domain.incident import Category, Role, Severity, Status
from incident.domain.records import OccurrenceState, SubjectRef
from incident.scheduler.lanes import GIVE_WAY_WINDOW, GIVING_WAY_BATCH, MAIN, PAGES
from incident.services import incidents as uc
from incident.testing import RecordingEffects, SimulatedCrash, run_until
from tests.conftest import T0, Build

M = timedelta(minutes=1)
H = timedelta(hours=1)


@pytest.fixture
def settings(settings_on_both: Settings) -> Settings:
    return settings_on_both


async def declare(app: Container, severity: Severity = Severity.P1) -> int:
    incident, created = await uc.declare_incident(
        app.runtime, title="Checkout API down", severity=severity, by="dana"
    )
    assert created and incident.id is not None
    return incident.id


def sends_of(vendor: RecordingEffects, step: str) -> list[timedelta]:
    return [s.at - T0 for s in vendor.sends if s.key.split("/")[1] == step]


async def test_declaring_plans_the_whole_playbook_in_one_go(app: Container) -> None:
    incident_id = await declare(app)
    view = await uc.get_incident(app.runtime, incident_id)
    due = {u.step_id: u.due_at - T0 for u in view.upcoming}
    assert due["page-oncall-tier3"] == timedelta(0)
    assert due["escalate-vp-clevel"] == 4 * H
    assert due["notify-executives"] == 30 * M
    assert view.timeline[0].kind == "declared"


async def test_pages_repeat_until_acknowledged(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app)
    await run_until(app, clock, T0 + 7 * M)
    assert sends_of(vendor, "page-oncall-tier3") == [0 * M]
    assert sends_of(vendor, "repage-oncall-tier3") == [5 * M]
    await uc.acknowledge_incident(app.runtime, incident_id, by="sam")
    await run_until(app, clock, T0 + 2 * H)
    assert sends_of(vendor, "repage-oncall-tier3") == [5 * M]
    view = await uc.get_incident(app.runtime, incident_id)
    assert "repage-oncall-tier3" not in {u.step_id for u in view.upcoming}


async def test_re_pages_stop_after_their_maximum(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    await declare(app)
    await run_until(app, clock, T0 + 3 * H)
    assert sends_of(vendor, "repage-oncall-tier3") == [5 * M, 10 * M, 15 * M, 20 * M, 25 * M]


async def test_an_upgrade_to_p1_after_acknowledgement_still_pages_tier3_once(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app, Severity.P2)
    await uc.acknowledge_incident(app.runtime, incident_id, by="tier2-engineer")
    clock.set(T0 + 1 * H)
    await uc.change_severity(app.runtime, incident_id, Severity.P1, by="dana")
    await run_until(app, clock, T0 + 2 * H)
    assert sends_of(vendor, "page-oncall-tier3") == [1 * H]
    assert sends_of(vendor, "repage-oncall-tier3") == []


async def test_a_customer_update_moves_the_next_one(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app)
    clock.set(T0 + 8 * M)
    await uc.post_customer_update(
        app.runtime, incident_id, message="Looking into it", status=Status.INVESTIGATING, by="dana"
    )
    view = await uc.get_incident(app.runtime, incident_id)
    due = {u.step_id: u.due_at - T0 for u in view.upcoming}
    assert due["customer-update"] == 38 * M
    assert due["customer-update-reminder"] == 33 * M
    assert "customer-notification" not in due  # the commander already told customers
    await run_until(app, clock, T0 + 60 * M)
    assert sends_of(vendor, "customer-update") == [38 * M]
    assert sends_of(vendor, "customer-update-reminder") == [33 * M]


async def test_holding_updates_keep_a_30_minute_cadence_until_resolution(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app)
    await run_until(app, clock, T0 + 2 * H + 5 * M)
    await uc.resolve_incident(app.runtime, incident_id, summary="Rolled back", by="dana")
    await run_until(app, clock, T0 + 10 * H)
    updates = sends_of(vendor, "customer-notification") + sends_of(vendor, "customer-update")
    assert updates == [10 * M, 40 * M, 70 * M, 100 * M]
    gaps = {b - a for a, b in itertools.pairwise(updates)}
    assert gaps == {30 * M}
    assert not sends_of(vendor, "escalate-vp-clevel")  # resolved before 4 h
    view = await uc.get_incident(app.runtime, incident_id)
    cancelled = [e for e in view.timeline if e.kind == "steps_cancelled"]
    assert cancelled and "customer-update" in cancelled[0].data["steps"]


async def test_resolution_plans_the_rca_deadline_and_closing_stops_it(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app)
    clock.set(T0 + 5 * H)
    incident = await uc.resolve_incident(app.runtime, incident_id, summary="fixed", by="dana")
    assert incident.rca_due_at == T0 + 53 * H
    await run_until(app, clock, T0 + 30 * H)
    assert sends_of(vendor, "rca.reminder-24h") == [29 * H]
    await uc.complete_rca(app.runtime, incident_id, link="https://wiki/rca", by="dana")
    await run_until(app, clock, T0 + 80 * H)
    assert not sends_of(vendor, "rca.missed")
    view = await uc.get_incident(app.runtime, incident_id)
    assert view.incident.status is Status.CLOSED and not view.upcoming


async def test_the_rca_overdue_action_repeats_daily_until_done(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app)
    clock.set(T0 + 1 * H)
    await uc.resolve_incident(app.runtime, incident_id, summary="fixed", by="dana")
    await run_until(app, clock, T0 + 100 * H)
    assert sends_of(vendor, "rca.missed") == [49 * H, 73 * H, 97 * H]


async def test_a_severity_change_swaps_the_plan_without_repeating_done_steps(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app, Severity.P2)
    await run_until(app, clock, T0 + 20 * M)
    assert sends_of(vendor, "open-war-room") == [0 * M]
    await uc.change_severity(
        app.runtime, incident_id, Severity.P1, by="dana", reason="all regions down"
    )
    await run_until(app, clock, T0 + 21 * M)
    # Shared steps already done do not repeat; P1-only steps that are overdue run now.
    assert sends_of(vendor, "open-war-room") == [0 * M]
    assert sends_of(vendor, "status-page-investigating") == [0 * M]
    assert sends_of(vendor, "page-oncall-tier3")[0] == 20 * M
    assert sends_of(vendor, "notify-support-manager") == [20 * M]
    view = await uc.get_incident(app.runtime, incident_id)
    steps = {u.step_id for u in view.upcoming}
    assert "escalate-vp-clevel" in steps and "notify-account-managers" not in steps


async def test_a_crash_after_sending_re_runs_once_with_the_same_key(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    app = await build()
    await declare(app)
    vendor.crash_after_next = 1
    with pytest.raises(SimulatedCrash):
        await app.scheduler.tick(clock.now())
    crashed_key = vendor.sends[-1].key
    await app.close()

    restarted = await build()
    # The whole claimed batch was left running; it is all handed back and run again.
    assert await restarted.store.run(lambda tx: tx.release_claims()) == 4
    await restarted.scheduler.tick(clock.now())
    assert vendor.attempts[crashed_key] == 2  # re-sent with the same idempotency key
    assert all(n == 1 for key, n in vendor.attempts.items() if key != crashed_key)
    assert len(vendor.keys()) == len(set(vendor.keys()))  # and the vendor saw it once
    rows = await restarted.store.run(lambda tx: tx.occurrences(SubjectRef.incident(1)))
    done = [(r.step_id, r.occurrence) for r in rows if r.state == "done"]
    assert len(done) == len(set(done)) == 4


async def test_after_downtime_overdue_steps_run_once_in_due_order(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    app = await build()
    await declare(app)
    await app.scheduler.tick(clock.now())
    await app.close()
    clock.set(T0 + 5 * H)  # the service was down for five hours
    restarted = await build()
    report = await restarted.scheduler.tick(clock.now())
    ran = [s.occurrence for s in report.steps if s.result == "done"]
    assert [o.due_at for o in ran] == sorted(o.due_at for o in ran)
    steps = [o.step_id for o in ran]
    assert steps.count("escalate-vp-clevel") == 1
    assert steps.count("page-oncall-tier3") == 0  # it ran before the outage
    assert steps.count("repage-oncall-tier3") == 1  # missed re-pages coalesce into one
    # Customers get one message, not a notification and a holding update at once: the
    # late notification moved the holding update (and its reminder) on by 30 minutes.
    assert steps.count("customer-notification") == 1
    assert "customer-update" not in steps and "customer-update-reminder" not in steps
    moved = {s.occurrence.step_id for s in report.steps if s.detail.startswith("moved")}
    assert moved == {"customer-update", "customer-update-reminder"}
    view = await uc.get_incident(restarted.runtime, 1)
    nxt = {u.step_id: u.due_at for u in view.upcoming}
    assert nxt["customer-update"] == clock.now() + 30 * M
    assert nxt["customer-update-reminder"] == clock.now() + 25 * M
    assert nxt["repage-oncall-tier3"] == clock.now() + 5 * M


async def test_failures_are_retried_with_backoff_then_marked_failed(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app)
    vendor.fail_when = lambda key: "/notify-support-manager/" in key
    await app.scheduler.tick(clock.now())
    view = await uc.get_incident(app.runtime, incident_id)
    retry = next(u for u in view.upcoming if u.step_id == "notify-support-manager")
    assert retry.run_at == T0 + 30 * timedelta(seconds=1)
    assert "VendorDown" in (retry.last_error or "")
    await run_until(app, clock, T0 + 10 * M)
    view = await uc.get_incident(app.runtime, incident_id)
    failed = [o for o in view.history if o.step_id == "notify-support-manager"]
    assert [o.state for o in failed] == ["failed"] and failed[0].attempts == 3
    kinds = [e.kind for e in view.timeline if e.step_id == "notify-support-manager"]
    assert kinds == ["step_retry", "step_retry", "step_failed"]
    # Other steps were not held up by the failing one.
    assert sends_of(vendor, "page-oncall-tier3") == [0 * M]
    assert sends_of(vendor, "repage-oncall-tier3")[:1] == [5 * M]


async def test_a_vendor_outage_delays_but_does_not_lose_or_double(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app)
    vendor.fail_next = 2
    await run_until(app, clock, T0 + 3 * M)
    assert len(vendor.keys()) == len(set(vendor.keys()))
    view = await uc.get_incident(app.runtime, incident_id)
    assert not [o for o in view.history if o.state == "failed"]
    assert {
        "open-war-room",
        "page-oncall-tier3",
        "notify-support-manager",
        "status-page-investigating",
    } <= {s.key.split("/")[1] for s in vendor.sends}


async def test_skip_and_snooze_a_step_with_a_reason(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app)
    await uc.skip_step(
        app.runtime, incident_id, "notify-executives", reason="CEO is in the room", by="dana"
    )
    await uc.snooze_step(
        app.runtime,
        incident_id,
        "escalate-vp-clevel",
        delay=1 * H,
        reason="fix is deploying",
        by="dana",
    )
    view = await uc.get_incident(app.runtime, incident_id)
    upcoming = {u.step_id: u for u in view.upcoming}
    assert "notify-executives" not in upcoming
    assert upcoming["escalate-vp-clevel"].run_at == T0 + 5 * H
    assert upcoming["escalate-vp-clevel"].due_at == T0 + 4 * H
    with pytest.raises(NotFound, match="no upcoming occurrence"):
        await uc.skip_step(app.runtime, incident_id, "no-such-step", reason="x", by="dana")
    await run_until(app, clock, T0 + 6 * H)
    assert not sends_of(vendor, "notify-executives")
    assert sends_of(vendor, "escalate-vp-clevel") == [5 * H]


async def test_refusals_change_nothing(app: Container, clock: FakeClock) -> None:
    incident_id = await declare(app)
    await uc.resolve_incident(app.runtime, incident_id, summary="fixed", by="dana")
    before = await uc.get_incident(app.runtime, incident_id)
    with pytest.raises(IllegalTransition):
        await uc.acknowledge_incident(app.runtime, incident_id, by="sam")
    with pytest.raises(IllegalTransition):
        await uc.resolve_incident(app.runtime, incident_id, summary="again", by="sam")
    after = await uc.get_incident(app.runtime, incident_id)
    assert after.incident == before.incident
    assert after.timeline == before.timeline
    assert after.upcoming == before.upcoming


async def test_the_same_idempotency_key_declares_once(app: Container) -> None:
    first, created = await uc.declare_incident(
        app.runtime, title="x", severity=Severity.P2, by="am", idempotency_key="group-1"
    )
    again, created_again = await uc.declare_incident(
        app.runtime, title="x", severity=Severity.P2, by="am", idempotency_key="group-1"
    )
    assert created and not created_again and first.id == again.id
    assert len(await uc.list_incidents(app.runtime)) == 1


async def test_assigning_a_commander_stops_the_reminders(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app)
    await run_until(app, clock, T0 + 6 * M)
    await uc.assign_role(app.runtime, incident_id, Role.COMMANDER, "dana", by="dana")
    await run_until(app, clock, T0 + 30 * M)
    assert sends_of(vendor, "assign-commander") == [5 * M]


async def test_the_outbox_records_every_effect_once(
    build: Build, settings: object, clock: FakeClock
) -> None:
    from incident import bootstrap

    app = await bootstrap.build(settings, clock=clock)  # type: ignore[arg-type]
    try:
        incident_id = await declare(app)
        await app.scheduler.tick(clock.now())
        await app.store.run(lambda tx: tx.release_claims())
        messages = await app.outbox.messages(incident_id=incident_id)
        channels = sorted({m.channel for m in messages})
        assert channels == ["chat", "email", "page", "status_page"]
        keys = [m.idempotency_key for m in messages]
        assert len(keys) == len(set(keys))
        # Re-running an effect with the same key records nothing new.
        incident = (await uc.get_incident(app.runtime, incident_id)).incident
        page = next(m for m in messages if m.channel == "page")
        assert page.idempotency_key == f"inc-{incident_id}/page-oncall-tier3/1"
        await app.outbox.page(
            incident=incident, tier="tier3", summary="again", key=page.idempotency_key
        )
        assert len(await app.outbox.messages(incident_id=incident_id)) == len(messages)
        view = await uc.get_incident(app.runtime, incident_id)
        assert view.incident.war_room == f"inc-{incident_id}-checkout-api-down"
        # Acknowledging tells the pager once per paged tier, whatever the retries.
        for _ in range(2):
            await app.outbox.acknowledge(incident=incident, key="ack-key")
        acks = [
            m
            for m in await app.outbox.messages(incident_id=incident_id)
            if m.subject == "acknowledged"
        ]
        assert [(m.channel, m.destination) for m in acks] == [("page", "oncall:tier3")]
    finally:
        await app.close()


async def test_a_reminder_too_late_to_matter_is_skipped_as_stale(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app)
    clock.set(T0 + 1 * M)
    await uc.post_customer_update(app.runtime, incident_id, message="Investigating", by="dana")
    await app.scheduler.tick(clock.now())
    clock.set(T0 + 31 * M)  # the scheduler was stalled through the reminder's due time
    report = await app.scheduler.tick(clock.now())
    results = {s.occurrence.step_id: (s.result, s.detail) for s in report.steps}
    assert results["customer-update-reminder"][0] == "skipped"
    assert results["customer-update-reminder"][1].startswith("stale")
    assert results["customer-update"][0] == "done"
    assert sends_of(vendor, "customer-update-reminder") == []


async def test_two_customer_messages_due_together_send_only_one(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    # P3: the first-day progress update (a missed deadline) and the daily update are both
    # due 24 h in. Both are claimed in one batch; the first one sent moves the second.
    await declare(app, Severity.P3)
    await run_until(app, clock, T0 + 25 * H)
    customer = [s for s in vendor.sends if s.port == "customers"]
    assert [s.at - T0 for s in customer] == [24 * H]
    assert customer[0].key.split("/")[1] in ("progress-update.missed", "daily-customer-update")
    view = await uc.get_incident(app.runtime, 1)
    nxt = {u.step_id: u.due_at for u in view.upcoming}
    assert nxt["daily-customer-update"] == T0 + 48 * H


async def test_a_security_incident_goes_to_the_security_team_at_once(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident, _ = await uc.declare_incident(
        app.runtime,
        title="Leaked API keys",
        severity=Severity.P3,
        by="dana",
        category=Category.SECURITY,
    )
    await uc.declare_incident(app.runtime, title="Slow search", severity=Severity.P3, by="dana")
    await app.scheduler.tick(clock.now())
    escalations = [
        (s.incident_id, s.target)
        for s in vendor.sends
        if s.port == "notifier"
        and "/notify-" in s.key
        and s.target in ("security", "cio", "compliance")
    ]
    assert escalations == [(incident.id, "security")]


async def test_each_update_a_person_posts_goes_to_customers_and_the_status_page_once(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app)
    await app.scheduler.tick(clock.now())
    clock.set(T0 + 8 * M)
    await uc.post_customer_update(
        app.runtime, incident_id, message="Card payments fail.", status=Status.IDENTIFIED, by="dana"
    )
    await app.scheduler.tick(clock.now())
    clock.set(T0 + 20 * M)
    await uc.post_customer_update(app.runtime, incident_id, message="Fix deploying.", by="lee")
    await run_until(app, clock, T0 + 2 * H)
    published = [s for s in vendor.sends if s.key.split("/")[1] == "publish-update"]
    assert [(s.port, s.at - T0) for s in published] == [
        ("customers", 8 * M),
        ("status_page", 8 * M),
        ("customers", 20 * M),
        ("status_page", 20 * M),
    ]
    assert "Card payments fail." in published[0].body and "identified" in published[1].target
    assert "Fix deploying." in published[2].body
    # Automatic holding updates are sent by their own step, not published a second time.
    holding = sends_of(vendor, "customer-update")
    assert holding and not [s for s in published if s.at - T0 in holding]


async def test_a_moved_occurrence_is_a_new_send_even_after_an_unrecorded_one(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    # Found by the property test: a holding update goes out, the process dies before it is
    # recorded, then the commander posts an update, which moves that occurrence 30 minutes
    # on. The moved one must still reach customers, not be swallowed as a duplicate.
    app = await build()
    incident_id = await declare(app)
    await run_until(app, clock, T0 + 39 * M)
    clock.set(T0 + 40 * M)
    vendor.crash_after_next = 1
    with pytest.raises(SimulatedCrash):
        await app.scheduler.tick(clock.now())
    assert sends_of(vendor, "customer-update") == [40 * M]
    await app.close()
    restarted = await build()
    await restarted.store.run(lambda tx: tx.release_claims())
    await uc.post_customer_update(restarted.runtime, incident_id, message="Fixing", by="dana")
    await run_until(restarted, clock, T0 + 71 * M)
    assert sends_of(vendor, "customer-update") == [40 * M, 70 * M]
    keys = [s.key for s in vendor.sends if "/customer-update/" in s.key]
    assert keys[0].split("@")[0] == keys[1].split("@")[0]  # the same occurrence, moved


async def test_a_one_off_step_moved_after_an_unrecorded_send_is_not_sent_again(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    # The initial customer notification goes out, the process dies before recording it,
    # then a severity change moves that step to a later time. Customers must not get the
    # same notification twice.
    app = await build()
    incident_id = await declare(app)
    await run_until(app, clock, T0 + 9 * M)
    clock.set(T0 + 10 * M)
    vendor.crash_after_next = 1
    with pytest.raises(SimulatedCrash):
        await app.scheduler.tick(clock.now())
    assert sends_of(vendor, "customer-notification") == [10 * M]
    await app.close()
    restarted = await build()
    await restarted.store.run(lambda tx: tx.release_claims())
    await uc.change_severity(restarted.runtime, incident_id, Severity.P2, by="dana")
    await run_until(restarted, clock, T0 + 2 * H)
    assert sends_of(vendor, "customer-notification") == [10 * M]
    assert vendor.attempts[f"inc-{incident_id}/customer-notification/1"] == 2  # re-sent, deduped


async def test_a_stopping_scheduler_starts_no_step_and_hands_its_claims_back(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app)
    stop = asyncio.Event()
    stop.set()
    report = await app.scheduler.tick(clock.now(), stop=stop)
    assert report.steps == [] and vendor.sends == []
    running = await app.store.run(
        lambda tx: tx.occurrences(
            SubjectRef.incident(incident_id), states=(OccurrenceState.RUNNING,)
        )
    )
    assert running, "the due steps were claimed before the stop was seen"
    owner = app.scheduler.owner
    assert await app.store.run(lambda tx: tx.release_claims(owner=owner)) == len(running)
    await app.scheduler.tick(clock.now())
    assert [s.key for s in vendor.sends if "page-oncall" in s.key]


async def test_acknowledging_and_resolving_reach_the_pager_once(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app)
    await app.scheduler.tick(clock.now())
    clock.advance(2 * M)
    await uc.acknowledge_incident(app.runtime, incident_id, by="dana")
    await app.scheduler.tick(clock.now())
    clock.advance(H)
    await uc.resolve_incident(app.runtime, incident_id, summary="fixed", by="dana")
    await run_until(app, clock, T0 + 2 * H)
    ports = [s.port for s in vendor.sends]
    assert ports.count("pager.acknowledge") == 1 and ports.count("pager.resolve") == 1
    assert ports.index("pager.acknowledge") < ports.index("pager.resolve")
    acknowledged = next(s for s in vendor.sends if s.port == "pager.acknowledge")
    assert acknowledged.at - T0 == 2 * M


async def test_a_hanging_vendor_call_does_not_hold_up_other_incidents(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    stuck, moving = await declare(app), await declare(app, Severity.P2)
    gate = asyncio.Event()
    vendor.hold_when = lambda key: gate if key.startswith(f"inc-{stuck}/") else None
    tick = asyncio.create_task(app.scheduler.tick(clock.now()))
    for _ in range(200):
        if any(s.incident_id == moving and s.port == "pager" for s in vendor.sends):
            break
        await asyncio.sleep(0.01)
    # The other incident was paged while the first one's vendor call still hangs.
    assert any(s.incident_id == moving and s.port == "pager" for s in vendor.sends)
    assert not any(s.incident_id == stuck for s in vendor.sends) and not tick.done()
    gate.set()
    await tick
    assert any(s.incident_id == stuck and s.port == "pager" for s in vendor.sends)


async def test_a_step_that_gives_up_is_handed_to_the_commander(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app)
    vendor.fail_when = lambda key: "/page-oncall-tier3/" in key and "gave-up" not in key
    await run_until(app, clock, T0 + 30 * M)
    view = await uc.get_incident(app.runtime, incident_id)
    assert [o.step_id for o in view.history if o.state == "failed"] == ["page-oncall-tier3"]
    told = [s for s in vendor.sends if s.key.endswith("/gave-up")]
    assert len(told) == 1 and told[0].port == "chat.post"
    assert "page-oncall-tier3" in told[0].body and "by hand" in told[0].body


async def test_when_chat_is_what_fails_the_commander_hears_through_the_fallback(
    build: Build, settings: object, clock: FakeClock, vendor: RecordingEffects
) -> None:
    import dataclasses

    from incident import bootstrap
    from incident.adapters.files.templates import JinjaRenderer
    from incident.scheduler.retry import RetryPolicy

    fallback = RecordingEffects(clock=clock)
    effects = dataclasses.replace(
        vendor.effects(JinjaRenderer(PROJECT_ROOT / "comms")), fallback_chat=fallback
    )
    app = await bootstrap.build(
        settings,  # type: ignore[arg-type]
        clock=clock,
        effects=effects,
        retry=RetryPolicy(max_attempts=2),
    )
    try:
        await declare(app)
        vendor.fail_when = lambda key: "/open-war-room/" in key or key.endswith("/gave-up")
        await run_until(app, clock, T0 + 10 * M)
    finally:
        await app.close()
    told = [s for s in fallback.sends if s.key.endswith("/gave-up")]
    assert [s.body.split("'")[1] for s in told] == ["open-war-room"]


async def test_the_war_room_follows_severity_status_and_resolution(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    incident_id = await declare(app, Severity.P2)
    await run_until(app, clock, T0 + 10 * M)
    await uc.assign_role(app.runtime, incident_id, Role.COMMANDER, "dana", by="dana")
    await uc.change_severity(app.runtime, incident_id, Severity.P1, by="dana")
    await run_until(app, clock, T0 + 12 * M)
    clock.advance(M)
    await uc.post_customer_update(
        app.runtime, incident_id, message="Found it", status=Status.IDENTIFIED, by="dana"
    )
    await run_until(app, clock, T0 + 20 * M)
    await uc.resolve_incident(app.runtime, incident_id, summary="fixed", by="dana")
    await run_until(app, clock, T0 + 30 * M)
    topics = [s.target for s in vendor.sends if s.port == "chat.refresh"]
    assert topics == ["P1 investigating dana", "P1 identified dana", "P1 resolved dana"]
    # The greeting, edited in place, says the same.
    greeting = vendor.greetings[incident_id]
    assert "*INC-1 [P1 critical] Checkout API down*" in greeting
    assert "Resolved" in greeting and "Commander: dana" in greeting


async def test_the_urgent_lane_runs_pages_only_and_the_main_loop_the_rest(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    await declare(app)
    paged = await app.page_scheduler.tick(clock.now())
    assert {s.occurrence.action for s in paged.steps} == {"page"}
    assert [s.port for s in vendor.sends] == ["pager"]
    rest = await app.scheduler.tick(clock.now())
    assert rest.steps and "page" not in {s.occurrence.action for s in rest.steps}
    assert len([s for s in vendor.sends if s.port == "pager"]) == 1


async def test_while_pages_go_out_the_main_lane_works_in_small_rounds_with_pauses(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    # An alert storm: the page lane is busy, so the other steps (three per P1 at once) go
    # in rounds of GIVING_WAY_BATCH, each followed by a pause three times as long as it
    # took (its vendor calls take 10 ms each here), none lost.
    for _ in range(3):
        await declare(app)
    await app.page_scheduler.tick(clock.now())
    assert app.engine.give_way.busy(PAGES.name) and app.engine.give_way.giving_way(MAIN)
    vendor.takes = 0.010
    start, sent_before = clock.now(), len(vendor.sends)
    report = await app.scheduler.tick(clock.now())
    assert report.count("done") == 9 and GIVING_WAY_BATCH == 8
    offsets = [(s.at - start).total_seconds() for s in vendor.sends[sent_before:]]
    # The first round's eight calls take 80 ms; its pause 240 ms; the ninth call 10 ms.
    assert max(offsets[:8]) == pytest.approx(0.08)
    assert offsets[8:] == [pytest.approx(0.08 + 0.24 + 0.01)]

    # The storm over (no page claimed for GIVE_WAY_WINDOW), the main lane goes flat out.
    clock.advance(timedelta(seconds=GIVE_WAY_WINDOW))
    assert not app.engine.give_way.busy(PAGES.name)
    assert not app.engine.give_way.giving_way(MAIN)
    for _ in range(3):
        await declare(app)
    start, sent_before = clock.now(), len(vendor.sends)
    report = await app.scheduler.tick(clock.now())
    assert report.count("done") == 12  # pages too: this lane runs every step
    offsets = [(s.at - start).total_seconds() for s in vendor.sends[sent_before:]]
    assert max(offsets) == pytest.approx(0.12)  # twelve calls of 10 ms, no pause


async def test_the_page_lane_pages_a_new_incident_while_an_earlier_page_hangs(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    # The urgent lane claims again as soon as a page comes due: a vendor call that hangs
    # (or is merely slow) for one incident does not hold up the next incident's page.
    hang, hanging = asyncio.Event(), asyncio.Event()
    first = await declare(app)

    def hold(key: str) -> asyncio.Event | None:
        if not key.startswith(f"inc-{first}/"):
            return None
        hanging.set()
        return hang

    vendor.hold_when = hold
    stop = asyncio.Event()
    lane = asyncio.create_task(app.engine.loops[PAGES.name].run(stop))
    try:
        await asyncio.wait_for(hanging.wait(), timeout=10)  # the first page hangs
        second = await declare(app)
        for _ in range(1000):
            if any(s.incident_id == second for s in vendor.sends):
                break
            await asyncio.sleep(0.005)
        assert [(s.port, s.incident_id) for s in vendor.sends] == [("pager", second)]
        hang.set()
        for _ in range(1000):
            if len(vendor.sends) == 2:
                break
            await asyncio.sleep(0.005)
        assert [(s.port, s.incident_id) for s in vendor.sends] == [
            ("pager", second),
            ("pager", first),
        ]
    finally:
        hang.set()
        stop.set()
        await asyncio.wait_for(lane, timeout=10)
    # Each page recorded once, by the lane that sent it.
    done = await app.store.run(
        lambda tx: [
            (o.subject.id, o.state)
            for i in (first, second)
            for o in tx.occurrences(SubjectRef.incident(i))
            if o.step_id == "page-oncall-tier3"
        ]
    )
    assert sorted(done) == [(first, "done"), (second, "done")]
