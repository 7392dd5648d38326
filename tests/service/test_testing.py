"""`incident.testing` itself: the recorder of every effect port (one effect per key, faults
as scripted, its indexes and its wait) and the virtual-time loop (what runs up to, and what
runs before, an instant), on a real SQLite file (the loop's stuck case on PostgreSQL)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from incident import bootstrap
from incident.adapters.files.templates import JinjaRenderer
from incident.bootstrap import Container
from incident.clock import FakeClock
from incident.config import PROJECT_ROOT, Settings
from incident.domain.incident import Incident, Severity, Status, war_room_name
from incident.domain.records import SubjectRef
from incident.services import incidents as uc
from incident.services.ports import OnCall, Topic
from incident.testing import (
    RecordingEffects,
    SimulatedCrash,
    VendorDown,
    run_before,
    run_until,
)
from tests.conftest import T0
from tests.postgres import postgres_database

M = timedelta(minutes=1)


async def declare(app: Container) -> tuple[Incident, int]:
    incident, _ = await uc.declare_incident(
        app.runtime, title="Checkout API down", severity=Severity.P1, by="dana"
    )
    assert incident.id is not None
    return incident, incident.id


def steps_sent(vendor: RecordingEffects) -> list[tuple[str, timedelta]]:
    return [(s.key.split("/")[1], s.at - T0) for s in vendor.sends]


async def test_every_port_takes_effect_once_per_key_however_often_it_is_sent(
    app: Container, vendor: RecordingEffects, settings: Settings
) -> None:
    incident, incident_id = await declare(app)  # not ticked: only this test's sends go out
    vendor.rota["tier3"] = [OnCall(name="Sam", email="sam@example.com", escalation_level=1)]
    effects = vendor.effects(JinjaRenderer(settings.comms_dir))
    case = Topic(SubjectRef("case", incident_id), T0, f"CASE-{incident_id}")
    for _ in range(2):
        assert await effects.pager.page(incident=incident, tier="tier3", summary="down", key="p")
        await effects.pager.acknowledge(incident=incident, key="ack")
        await effects.pager.resolve(incident=incident, key="res")
        room = await effects.chat.open_war_room(incident=incident, key="room", greeting="hello")
        await effects.chat.post(incident=incident, text="an update", key="post")
        await effects.chat.refresh_war_room(incident=incident, key="topic", greeting="hi again")
        await effects.notifier.notify(
            incident=incident,
            audience="management",
            destinations=["email:boss@example.com"],
            subject="P1",
            body="to management",
            key="mgmt",
        )
        await effects.status_page.publish(
            incident=incident, status=Status.INVESTIGATING, body="we are on it", key="sp"
        )
        await effects.status_page.withdraw(incident=incident, body="false alarm", key="wd")
        await effects.customers.update_customers(
            incident=incident, subject="P1", body="sorry", key="cust"
        )
        await vendor.send(
            about=case,
            audience="customer",
            destinations=["email:customer@example.com"],
            subject="Your case",
            body="we are on it",
            key="case",
        )
    assert [(s.port, s.key) for s in vendor.sends] == [
        ("pager", "p"),
        ("pager.acknowledge", "ack"),
        ("pager.resolve", "res"),
        ("chat.open", "room"),
        ("chat.post", "post"),
        ("chat.refresh", "topic"),
        ("notifier", "mgmt"),
        ("status_page", "sp"),
        ("status_page.withdraw", "wd"),
        ("customers", "cust"),
        ("messenger", "case"),
    ]
    assert set(vendor.attempts.values()) == {2}
    assert {s.at for s in vendor.sends} == {T0}
    assert room.channel == war_room_name(incident)
    # The refresh edits the greeting of a room the incident records (this one records none).
    assert vendor.greetings[incident_id] == "hello"
    assert [p.name for p in await effects.pager.on_call(tier="tier3")] == ["Sam"]
    sent = vendor.sent("mgmt")
    assert sent is not None and (sent.target, sent.body) == ("management", "to management")
    assert vendor.sent("never") is None
    # A message about another kind's subject is that subject's, not the incident's.
    about_case = vendor.sent("case")
    assert about_case is not None and about_case.subject == case.subject
    assert about_case.incident_id is None
    assert incident_id in vendor.first_by_incident("notifier")
    assert vendor.first_by_incident("messenger") == {}


async def test_scripted_faults_fail_before_the_effect_and_crashes_come_after_it(
    app: Container, vendor: RecordingEffects
) -> None:
    incident, _ = await declare(app)
    vendor.fail_next = 1
    with pytest.raises(VendorDown):
        await vendor.post(incident=incident, text="lost", key="a")
    vendor.fail_when = lambda key: key == "b"
    with pytest.raises(VendorDown):
        await vendor.post(incident=incident, text="lost", key="b")
    vendor.crash_after_next = 1
    with pytest.raises(SimulatedCrash):
        await vendor.post(incident=incident, text="sent, then the process died", key="c")
    await vendor.post(incident=incident, text="sent", key="a")
    assert vendor.keys() == ["c", "a"]
    assert vendor.attempts == {"a": 2, "b": 1, "c": 1}


async def test_each_incidents_first_effect_on_a_port_is_a_view_that_grows(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    first_pages = vendor.first_by_incident("pager")  # taken before anything is sent
    _, incident_id = await declare(app)
    await run_until(app, clock, T0 + 6 * M)
    assert ("repage-oncall-tier3", 5 * M) in steps_sent(vendor)
    first = first_pages[incident_id]
    assert (first.key.split("/")[1], first.at) == ("page-oncall-tier3", T0)
    assert vendor.first_by_incident("customers") == {}


async def test_wait_until_returns_once_an_effect_makes_its_condition_true(
    app: Container, vendor: RecordingEffects
) -> None:
    incident, _ = await declare(app)
    waiting = asyncio.create_task(vendor.wait_until(lambda: vendor.sent("second") is not None))
    await vendor.post(incident=incident, text="1", key="first")
    await asyncio.sleep(0)
    assert not waiting.done()
    await vendor.post(incident=incident, text="2", key="second")
    async with asyncio.timeout(5):
        await waiting


async def test_run_until_runs_each_step_at_its_due_time_up_to_and_including_the_instant(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    await declare(app)
    await run_until(app, clock, T0 + 5 * M)
    assert clock.now() == T0 + 5 * M
    sent = steps_sent(vendor)
    assert ("page-oncall-tier3", 0 * M) in sent
    assert ("repage-oncall-tier3", 5 * M) in sent  # due at the instant itself
    assert all(at <= 5 * M for _, at in sent)
    assert "notify-executives" not in {step for step, _ in sent}  # due at 30 minutes


async def test_run_before_lets_a_person_act_before_what_is_due_at_that_instant(
    app: Container, clock: FakeClock, vendor: RecordingEffects
) -> None:
    _, incident_id = await declare(app)
    await run_before(app, clock, T0 + 5 * M)
    assert clock.now() == T0 + 5 * M
    assert ("page-oncall-tier3", 0 * M) in steps_sent(vendor)
    assert "repage-oncall-tier3" not in {step for step, _ in steps_sent(vendor)}
    # Acknowledged at the re-page's due time, before it ran: it never goes out.
    await uc.acknowledge_incident(app.runtime, incident_id, by="sam")
    await run_until(app, clock, T0 + 30 * M)
    assert "repage-oncall-tier3" not in {step for step, _ in steps_sent(vendor)}


async def test_the_loop_stops_with_an_error_when_a_due_step_is_held_by_another_replica(
    settings: Settings, clock: FakeClock
) -> None:
    """On PostgreSQL an incident's steps wait while another replica holds one of them: in
    virtual time nobody else moves, so the loop says so instead of ticking forever."""
    async with postgres_database(migrated=True) as url:
        shared = dataclasses.replace(settings.with_database(url), scheduler_lease=10 * M)
        renderer = JinjaRenderer(settings.comms_dir)
        gate = asyncio.Event()
        held: list[str] = []

        def hold(key: str) -> asyncio.Event:
            held.append(key)
            return gate

        holding = RecordingEffects(clock=clock, hold_when=hold)
        holder = await bootstrap.build(shared, clock=clock, effects=holding.effects(renderer))
        other_vendor = RecordingEffects(clock=clock)
        other = await bootstrap.build(shared, clock=clock, effects=other_vendor.effects(renderer))
        try:
            await declare(holder)
            hung = asyncio.create_task(holder.scheduler.tick(clock.now()))
            for _ in range(500):  # until its first step hangs in the vendor call
                if held or hung.done():
                    break
                await asyncio.sleep(0.01)
            assert held and not hung.done()
            with pytest.raises(RuntimeError, match="stuck at 2026-03-02T09:05"):
                await run_until(other, clock, T0 + 10 * M)
            assert other_vendor.sends == []
            gate.set()
            await hung
        finally:
            gate.set()
            await holder.close()
            await other.close()


async def test_the_board_records_each_version_and_counts_posts_and_edits(
    vendor: RecordingEffects,
) -> None:
    about = Topic(SubjectRef("verification", 3), T0, "VER-3")
    show = vendor.effects(JinjaRenderer(PROJECT_ROOT / "comms")).board.show
    await show(about=about, destination="chat:#verify", text="opened", key="v3/board")
    await show(about=about, destination="chat:#verify", text="opened", key="v3/board")
    vendor.crash_after_next = 1  # the edit took effect, then the process died
    with pytest.raises(SimulatedCrash):
        await show(about=about, destination="chat:#verify", text="proof asked", key="v3/board")
    await show(about=about, destination="chat:#verify", text="proof asked", key="v3/board")
    vendor.fail_next = 1  # failed before taking effect: nothing recorded
    with pytest.raises(VendorDown):
        await show(about=about, destination="chat:#verify", text="lost", key="v3/board")
    await show(about=about, destination="chat:#verify", text="proof received", key="v3/board")
    assert vendor.shown == {"v3/board": ["opened", "proof asked", "proof received"]}
    # Edited in place, not re-posted.
    assert vendor.board_posts["v3/board"] == 1 and vendor.board_edits["v3/board"] == 2
    [posted] = vendor.sends
    assert (posted.port, posted.target, posted.body) == ("board", "chat:#verify", "opened")


async def test_account_instructions_are_recorded_once_per_key(vendor: RecordingEffects) -> None:
    about = Topic(SubjectRef("verification", 3), T0, "VER-3")
    accounts = vendor.effects(JinjaRenderer(PROJECT_ROOT / "comms")).accounts
    vendor.crash_after_next = 1
    with pytest.raises(SimulatedCrash):
        await accounts.instruct(about=about, instruction={"action": "lock"}, key="v3/instruct")
    await accounts.instruct(about=about, instruction={"action": "lock"}, key="v3/instruct")
    assert vendor.instructions == {"v3/instruct": {"action": "lock"}}
    assert vendor.attempts["v3/instruct"] == 2
    [sent] = vendor.sends
    assert sent.port == "accounts" and sent.subject == SubjectRef("verification", 3)
