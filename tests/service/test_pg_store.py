"""Replicas on one PostgreSQL database, in one process with a fake clock: claims shared
without overlap, a dead replica's leases taken over when they expire, a live one's renewed,
wake-ups through LISTEN / NOTIFY that survive a lost connection, migrations that do not race,
and a replica that refuses an old schema."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from incident import bootstrap
from incident.adapters.database.databases import SchemaMismatch, open_database
from incident.adapters.database.leases import SqlLeases
from incident.adapters.database.migrate import head
from incident.adapters.database.store import explain_claim
from incident.adapters.database.wakeups import PostgresSignal
from incident.adapters.files.templates import JinjaRenderer
from incident.clock import FakeClock
from incident.config import Settings
from incident.domain.incident import Severity
from incident.scheduler.retry import RetryPolicy
from incident.services import incidents as uc
from incident.services.engine import StepReport
from incident.testing import RecordingEffects
from tests.conftest import T0
from tests.postgres import postgres_database

M = timedelta(minutes=1)
LEASE = timedelta(minutes=1)

Replica = Callable[..., Awaitable[bootstrap.Container]]


@pytest.fixture
async def postgres(settings: Settings) -> AsyncIterator[Settings]:
    async with postgres_database(migrated=True) as url:
        yield settings.with_database(url)


@pytest.fixture
async def replica(postgres: Settings, clock: FakeClock) -> AsyncIterator[Replica]:
    """Start a replica (a container of its own: its own owner, connections and signal) on
    the shared database; `vendor` records what it sends, `reports` what it ran."""
    started: list[bootstrap.Container] = []

    async def start(
        vendor: RecordingEffects, reports: list[StepReport] | None = None
    ) -> bootstrap.Container:
        container = await bootstrap.build(
            postgres,
            clock=clock,
            effects=vendor.effects(JinjaRenderer(postgres.comms_dir)),
            retry=RetryPolicy(max_attempts=3),
            on_step=reports.append if reports is not None else None,
        )
        started.append(container)
        return container

    yield start
    for container in started:
        await container.close()


async def declare(app: bootstrap.Container, n: int = 1) -> list[int]:
    ids = []
    for i in range(n):
        incident, _ = await uc.declare_incident(
            app.runtime, title=f"Outage {i}", severity=Severity.P1, by="dana"
        )
        assert incident.id is not None
        ids.append(incident.id)
    return ids


async def occurrence_rows(app: bootstrap.Container) -> list[tuple[int, str, str, int, str]]:
    def read(session: object) -> list[tuple[int, str, str, int, str]]:
        rows = session.execute(  # type: ignore[attr-defined]
            text(
                "SELECT id, step_id, state, attempts, coalesce(lease_owner, '') "
                "FROM step_occurrences ORDER BY id"
            )
        )
        return [tuple(r) for r in rows]

    return await app.database.run(read)


async def test_two_replicas_share_the_due_steps_and_run_each_once(
    replica: Replica, clock: FakeClock
) -> None:
    vendor = RecordingEffects(clock=clock)
    a_ran: list[StepReport] = []
    b_ran: list[StepReport] = []
    a, b = await replica(vendor, a_ran), await replica(vendor, b_ran)
    incidents = await declare(a, 24)
    for app in (a, b):
        app.scheduler.batch = 6  # several claims each, interleaved
    await asyncio.gather(a.scheduler.tick(clock.now()), b.scheduler.tick(clock.now()))
    # Each due step ran once, on one replica or the other, and both replicas worked.
    keys = vendor.keys()
    assert len(keys) == len(set(keys)) and all(n == 1 for n in vendor.attempts.values())
    assert a_ran and b_ran
    ran = [(r.occurrence.id, r.result) for r in a_ran + b_ran]
    assert len(ran) == len({i for i, _ in ran})
    rows = await occurrence_rows(a)
    assert not [r for r in rows if r[2] == "running"]
    done = {r[0] for r in rows if r[2] == "done"}
    assert done == {i for i, result in ran if result == "done"}
    assert {s.incident_id for s in vendor.sends} == set(incidents)
    # One replica at a time per incident: each incident's steps ran on one of them.
    a_incidents = {r.occurrence.subject.id for r in a_ran}
    b_incidents = {r.occurrence.subject.id for r in b_ran}
    assert not a_incidents & b_incidents


async def test_a_dead_replicas_claims_are_taken_over_when_its_lease_ends(
    replica: Replica, clock: FakeClock
) -> None:
    vendor = RecordingEffects(clock=clock)
    dead, alive = await replica(vendor), await replica(vendor)
    (incident_id,) = await declare(dead)
    stopped = asyncio.Event()
    stopped.set()
    # The first replica claims the due steps, then "dies" before running them.
    await dead.scheduler.tick(clock.now(), stop=stopped)
    held = [r for r in await occurrence_rows(dead) if r[2] == "running"]
    assert held and {r[4] for r in held} == {dead.scheduler.owner}
    # While the lease lasts, the other replica leaves the whole incident alone.
    clock.advance(LEASE - timedelta(seconds=1))
    report = await alive.scheduler.tick(clock.now())
    assert report.steps == [] and vendor.sends == []
    # Once it has ended, the other replica runs them (each once, claimed a second time).
    clock.advance(timedelta(seconds=2))
    report = await alive.scheduler.tick(clock.now())
    taken = {r.occurrence.id for r in report.steps if r.result == "done"}
    assert taken == {r[0] for r in held}
    rows = {r[0]: r for r in await occurrence_rows(alive)}
    assert all(rows[i][2] == "done" and rows[i][3] == 2 for i in taken)
    assert len(vendor.keys()) == len(set(vendor.keys())) == len(taken)
    assert {s.incident_id for s in vendor.sends} == {incident_id}


async def test_a_live_replica_renews_its_leases_and_another_cannot_renew_them(
    replica: Replica, clock: FakeClock
) -> None:
    vendor = RecordingEffects(clock=clock)
    working, other = await replica(vendor), await replica(vendor)
    await declare(working)
    stopped = asyncio.Event()
    stopped.set()
    await working.scheduler.tick(clock.now(), stop=stopped)
    held = [r[0] for r in await occurrence_rows(working) if r[2] == "running"]
    leases = SqlLeases(working.database)
    clock.advance(LEASE / 2)
    assert await leases.renew(owner=other.scheduler.owner, occurrence_ids=held, until=T0) == set()
    renewed = await leases.renew(
        owner=working.scheduler.owner, occurrence_ids=held, until=clock.now() + LEASE
    )
    assert renewed == set(held)
    clock.advance(LEASE * 3 / 4)  # past the first lease, inside the renewed one
    assert (await other.scheduler.tick(clock.now())).steps == []
    assert vendor.sends == []


async def test_a_replica_that_lost_its_lease_does_not_record_the_step_twice(
    replica: Replica, clock: FakeClock
) -> None:
    slow = RecordingEffects(clock=clock)
    gate = asyncio.Event()
    slow.hold_when = lambda key: gate if "/page-oncall-tier3/" in key else None
    fast = RecordingEffects(clock=clock)
    stalled, other = await replica(slow), await replica(fast)
    (incident_id,) = await declare(stalled)
    stalled_ran: list[StepReport] = []
    stalled.page_scheduler.on_step = stalled_ran.append
    tick = asyncio.create_task(stalled.page_scheduler.tick(clock.now()))
    for _ in range(200):  # until its page hangs in the vendor call
        if slow.attempts or tick.done():
            break
        await asyncio.sleep(0.01)
    assert not tick.done()
    # It stalls past its lease (no renewal in virtual time); the other replica takes over.
    clock.advance(LEASE + timedelta(seconds=1))
    taken = await other.page_scheduler.tick(clock.now())
    assert [r.result for r in taken.steps] == ["done"]
    gate.set()
    await tick
    assert [r.result for r in stalled_ran] == ["lost"]
    view = await uc.get_incident(other.runtime, incident_id)
    done = [e for e in view.timeline if e.kind == "step_done" and e.step_id == "page-oncall-tier3"]
    assert len(done) == 1


async def _until(condition: Callable[[], bool], seconds: float = 10) -> None:
    for _ in range(int(seconds * 100)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not reached in time")


async def test_replicas_wake_each_other_and_keep_listening_after_the_connection_drops(
    postgres: Settings,
) -> None:
    url = postgres.database_url
    one = PostgresSignal(url, replica="one", keepalive=0.2, backoff=0.05)
    two = PostgresSignal(url, replica="two", keepalive=0.2, backoff=0.05)
    woken = {"one": 0, "two": 0}

    def waker(name: str) -> Callable[[], None]:
        def wake() -> None:
            woken[name] += 1

        return wake

    one.on_signal, two.on_signal = waker("one"), waker("two")
    stop = asyncio.Event()
    listeners = [asyncio.create_task(s.listen(stop)) for s in (one, two)]
    try:
        await asyncio.wait_for(one.listening.wait(), 10)
        await asyncio.wait_for(two.listening.wait(), 10)
        assert woken == {"one": 1, "two": 1}  # each looked once on connecting
        one.announce()
        one.announce()  # while the first is being sent: at most one more
        await _until(lambda: two.heard >= 1 and one.sent >= 1)
        await asyncio.sleep(0.1)
        assert one.heard == 0  # its own signal is not news to it
        assert woken["two"] >= 2 and two.heard <= one.sent <= 2
        # The server drops two's connection: it reconnects (and looks again) and hears on.
        await _terminate(url, "incident-signal two")
        await _until(lambda: two.connections == 2 and two.listening.is_set())
        before = two.heard
        one.announce()
        await _until(lambda: two.heard > before)
    finally:
        stop.set()
        await asyncio.gather(*listeners)
    assert not one.listening.is_set() and not two.listening.is_set()


async def _terminate(url: str, application: str) -> None:
    database = open_database(url)
    try:
        killed = await database.run(
            lambda s: s.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name"
                ),
                {"name": application},
            ).scalar_one()
        )
        assert killed == 1
    finally:
        await database.dispose()


async def test_a_declaration_on_one_replica_wakes_the_others_schedulers(
    replica: Replica, clock: FakeClock
) -> None:
    vendor = RecordingEffects(clock=clock)
    a, b = await replica(vendor), await replica(vendor)
    stop = asyncio.Event()
    signals = [a.engine.signal, b.engine.signal]
    assert all(isinstance(s, PostgresSignal) for s in signals)
    listeners = [asyncio.create_task(s.listen(stop)) for s in signals if s is not None]
    try:
        for s in signals:
            assert isinstance(s, PostgresSignal)
            await asyncio.wait_for(s.listening.wait(), 10)
        main, pages = b.engine.loops["main"], b.engine.loops["pages"]
        main._wake.clear()
        pages._wake.clear()
        await declare(a)
        await asyncio.wait_for(main._wake.wait(), 5)
        assert pages._wake.is_set()
    finally:
        stop.set()
        await asyncio.gather(*listeners)


async def test_replicas_migrating_at_once_do_not_race() -> None:
    async with postgres_database() as url:
        databases = [open_database(url) for _ in range(4)]
        try:
            done = await asyncio.gather(*(d.migrate() for d in databases))
        finally:
            for database in databases:
                await database.dispose()
        assert sorted(len(d) for d in done) == [0, 0, 0, 1]
        assert [d for d in done if d] == [[f"upgraded empty database -> {head()}"]]


async def test_a_replica_refuses_a_schema_that_is_behind_and_says_what_to_run(
    settings: Settings, clock: FakeClock
) -> None:
    async with postgres_database() as url:
        behind = settings.with_database(url)
        with pytest.raises(SchemaMismatch, match="run `incident db upgrade`"):
            await bootstrap.build(behind, clock=clock)
        env = {**os.environ, "INCIDENT_DATABASE_URL": url}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "incident.cli",
            "serve",
            "--port",
            "0",
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
        refused = stderr.decode()
        assert process.returncode == 2, refused
        assert "schema revision none (empty)" in refused
        assert "incident db upgrade" in refused and "Traceback" not in refused
        database = open_database(url)
        try:
            await database.migrate()
        finally:
            await database.dispose()
        app = await bootstrap.build(behind, clock=clock)
        await app.close()


async def test_the_claim_reads_an_index_range_however_long_the_backlog(
    replica: Replica, clock: FakeClock
) -> None:
    app = await replica(RecordingEffects(clock=clock))
    (incident_id,) = await declare(app)

    def backlog(session: Session) -> None:
        # 30,000 occurrences due over 500 incidents: the claim must take the first ones off
        # the index, not read and sort all of them.
        run = session.execute
        run(
            text(
                "INSERT INTO incidents (title, severity, status, service, category, impact, "
                "declared_at, declared_by) SELECT title, severity, status, service, category, "
                "impact, declared_at, declared_by FROM incidents, generate_series(1, 499)"
            )
        )
        run(
            text(
                "INSERT INTO step_occurrences (subject_kind, subject_id, step_id, occurrence, "
                "action, due_at, run_at, state, attempts) SELECT 'incident', "
                ":incident + g % 500, 'bulk', g, "
                "'notify', "
                "CAST(:t0 AS timestamptz) + g * interval '1 second', "
                "CAST(:t0 AS timestamptz) + g * interval '1 second', 'pending', 0 "
                "FROM generate_series(1, 30000) g"
            ),
            {"incident": incident_id, "t0": T0},
        )
        run(text("ANALYZE step_occurrences"))

    await app.database.run(backlog)
    later = clock.now() + timedelta(days=1)
    plan = await app.database.run(lambda session: explain_claim(session, now=later))
    pending = plan.split("CTE claim_pending")[1].split("  ->  Nested Loop  ")[0]
    assert "Index Scan using ix_occurrence_claim on step_occurrences due_pending" in pending
    assert "Seq Scan" not in plan
    # Sorted only among rows of one run_at as they come off the index, never all of them.
    sorts = [line.strip() for line in pending.splitlines() if "Sort  (" in line]
    assert all(line.startswith("->  Incremental Sort") for line in sorts), sorts
