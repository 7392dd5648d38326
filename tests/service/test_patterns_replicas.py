"""Patterns on two replicas sharing one PostgreSQL database, each with its own in-memory
index: cases of one problem, assigned by both replicas interleaved, end in one cluster with
one candidate posted once; each case is in exactly one cluster; a candidate declared on one
replica links the cases that the other assigns afterwards (its index is stale: the key's
version tells it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from incident import bootstrap
from incident.adapters.files.templates import JinjaRenderer
from incident.clock import FakeClock
from incident.config import Settings
from incident.domain.access import AccessRole, Principal
from incident.domain.case import Case, Plan
from incident.domain.lifecycle import Severity
from incident.scheduler.retry import RetryPolicy
from incident.services import cases as uc
from incident.services.cases import Support
from incident.testing import RecordingEffects
from tests.postgres import postgres_database
from tests.service.test_cases import ROLES
from tests.service.test_patterns import STUCK

AGENT = Principal("alice", AccessRole.RESPONDER)
IC = Principal("ivy", AccessRole.COMMANDER)
START = datetime(2026, 3, 9, 9, 30, tzinfo=UTC)
Replica = Callable[[RecordingEffects], Awaitable[bootstrap.Container]]


@pytest.fixture
async def replica(settings: Settings, clock: FakeClock) -> AsyncIterator[Replica]:
    started: list[bootstrap.Container] = []
    async with postgres_database(migrated=True) as url:
        shared = settings.with_database(url)

        async def start(vendor: RecordingEffects) -> bootstrap.Container:
            container = await bootstrap.build(
                shared,
                clock=clock,
                effects=vendor.effects(JinjaRenderer(shared.comms_dir)),
                retry=RetryPolicy(max_attempts=3),
            )
            started.append(container)
            return container

        yield start
        for container in started:
            await container.close()


def draft(n: int, summary: str) -> Case:
    return Case(
        reference=f"ZD-{5000 + n}",
        customer_id=f"cust-{n}",
        summary=summary,
        plan=Plan.STARTER,
        priority=Severity.P3,
        opened_at=START,
        opened_by="",
        category="transfers",
        component="bridge",
    )


async def open_cases(app: bootstrap.Container, first: int, count: int) -> list[int]:
    sp = Support(app.support.rt, app.support.playbook, ROLES)
    ids = []
    for n in range(first, first + count):
        view = await uc.open_case(sp, draft(n, STUCK[n % len(STUCK)]), by=AGENT)
        assert view.case.id is not None
        ids.append(view.case.id)
    return ids


async def memberships(app: bootstrap.Container) -> list[tuple[int, int]]:
    def read(session: object) -> list[tuple[int, int]]:
        rows = session.execute(  # type: ignore[attr-defined]
            text("SELECT case_id, cluster_id FROM case_cluster_members ORDER BY case_id")
        )
        return [(int(a), int(b)) for a, b in rows]

    return await app.database.run(read)


async def both_tick(a: bootstrap.Container, b: bootstrap.Container, clock: FakeClock) -> None:
    for app in (a, b):
        app.scheduler.batch = 2  # a few claims each, so the replicas interleave
    while True:
        clock.advance(timedelta(seconds=1))
        reports = await asyncio.gather(a.scheduler.tick(clock.now()), b.scheduler.tick(clock.now()))
        if not any(r.steps for r in reports):
            return


async def test_two_replicas_make_one_cluster_and_one_candidate(
    replica: Replica, clock: FakeClock
) -> None:
    clock.set(START)
    vendor = RecordingEffects(clock=clock)
    a, b = await replica(vendor), await replica(vendor)
    cases = await open_cases(a, 0, 6) + await open_cases(b, 6, 6)
    await both_tick(a, b, clock)
    members = await memberships(a)
    assert [case for case, _ in members] == sorted(cases)  # each case in one cluster
    assert len({cluster for _, cluster in members}) == 1
    candidates = await a.patterns.candidates()
    assert len(candidates) == 1 and await b.patterns.candidates() == candidates
    posts = [s for s in vendor.sends if s.target == "patterns channel"]
    assert len(posts) == 1 and all(n == 1 for n in vendor.attempts.values())

    # Declared on one replica; cases the other assigns afterwards are linked to it.
    (candidate,) = candidates
    _, incident_id = await a.patterns.declare(candidate.id or 0, by=IC)
    late = await open_cases(b, 12, 3)
    await both_tick(a, b, clock)
    sp = Support(b.support.rt, b.support.playbook, ROLES)
    for case_id in cases + late:
        assert (await uc.read_case(sp, case_id)).case.incident_id == incident_id
