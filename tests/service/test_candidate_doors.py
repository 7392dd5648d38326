"""What the doors of incident candidates (API, CLI, Slack, dashboard) ask of the patterns'
use cases, on SQLite and PostgreSQL, in virtual time: a candidate read alone and the list
with each candidate's cluster, a declaration with a severity and a title of its own, one
linking the cases to an open incident instead (refused for one not open, changing nothing),
and what no such candidate or incident answers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from incident.clock import FakeClock
from incident.config import Settings
from incident.domain.errors import IllegalTransition, NotFound
from incident.domain.lifecycle import Severity
from incident.domain.patterns import CandidateStatus, ClusterStatus
from incident.services import incidents as inc
from incident.testing import RecordingEffects, run_until
from tests.conftest import Build
from tests.service.test_patterns import IC, START, STUCK, open_all


@pytest.fixture
def settings(settings_on_both: Settings) -> Settings:
    return settings_on_both


async def test_the_reads_the_doors_use(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(START)
    app = await build()
    cases = await open_all(app, clock, STUCK[:3])
    (listed,) = await app.patterns.candidates()
    assert listed.id is not None
    assert await app.patterns.candidate(listed.id) == listed
    ((candidate, cluster),) = await app.patterns.candidates_with_clusters()
    assert candidate == listed and cluster.id == candidate.cluster_id
    assert (cluster.signature.category, cluster.signature.component) == ("transfers", "bridge")
    assert cluster.cases == 3 and cluster.status is ClusterStatus.PROPOSED
    assert await app.patterns.candidates_with_clusters(statuses=(CandidateStatus.DECLARED,)) == []
    with pytest.raises(NotFound, match="there is no candidate 99"):
        await app.patterns.candidate(99)
    found = await app.patterns.evidence(listed.id)
    assert [case["id"] for case in found.cases] == cases


async def test_a_declaration_of_its_own_severity_and_title(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(START)
    app = await build()
    await open_all(app, clock, STUCK[:3])
    (candidate,) = await app.patterns.candidates()
    assert candidate.id is not None and candidate.severity is Severity.P2
    declared, incident_id = await app.patterns.declare(
        candidate.id, by=IC, severity=Severity.P1, title="Bridge relayer stuck"
    )
    incident = await inc.read_incident(app.runtime, incident_id)
    assert (incident.severity, incident.title) == (Severity.P1, "Bridge relayer stuck")
    assert declared.status is CandidateStatus.DECLARED and declared.decided_by == "ivy"
    ((_, cluster),) = await app.patterns.candidates_with_clusters()
    assert cluster.status is ClusterStatus.DECLARED and cluster.incident_id == incident_id


async def test_its_cases_join_an_open_incident_and_not_one_that_is_over(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(START)
    app = await build()
    cases = await open_all(app, clock, STUCK[:3])
    (candidate,) = await app.patterns.candidates()
    assert candidate.id is not None
    over, _ = await inc.declare_incident(app.runtime, title="Earlier", severity=Severity.P3, by=IC)
    assert over.id is not None
    await inc.resolve_incident(app.runtime, over.id, summary="Done", by=IC)
    with pytest.raises(IllegalTransition, match="is resolved: choose an open one"):
        await app.patterns.declare(candidate.id, by=IC, incident_id=over.id)
    with pytest.raises(NotFound, match="there is no incident 99"):
        await app.patterns.declare(candidate.id, by=IC, incident_id=99)
    assert (await app.patterns.candidate(candidate.id)).status is CandidateStatus.PROPOSED

    open_one, _ = await inc.declare_incident(
        app.runtime, title="Relayer down", severity=Severity.P2, by=IC
    )
    assert open_one.id is not None
    declared, chosen = await app.patterns.declare(candidate.id, by=IC, incident_id=open_one.id)
    assert chosen == open_one.id and declared.incident_id == open_one.id
    await run_until(app, clock, clock.now() + timedelta(minutes=1))
    found = await app.patterns.evidence(candidate.id)
    assert [(case["id"], case["incident"]) for case in found.cases] == [
        (case_id, open_one.id) for case_id in cases
    ]
    assert len(await inc.list_incidents(app.runtime)) == 2  # none declared for it
