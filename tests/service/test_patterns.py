"""Patterns across cases, through the use cases and the real engine on a real database, in
virtual time: five customers' cases about one stuck bridge transfer make one incident
candidate, posted once to the patterns channel; declaring it links all five, and the
incident's updates and resolution reach each customer once, across a crash and a restart;
dismissing quiets the signature; a case is in one cluster; clusters survive a restart."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from incident.bootstrap import Container
from incident.clock import FakeClock
from incident.domain.access import AccessRole, Principal
from incident.domain.alerts import Alert, AlertNotification, AlertState
from incident.domain.case import Case, Plan
from incident.domain.errors import Forbidden, IllegalTransition
from incident.domain.lifecycle import Severity
from incident.domain.patterns import CandidateStatus, ClusterStatus
from incident.services import cases as uc
from incident.services import incidents as inc
from incident.services.alerts import ingest_alerts
from incident.services.cases import Support
from incident.testing import RecordingEffects, SimulatedCrash, run_until
from tests.conftest import Build
from tests.service.test_cases import ROLES

AGENT = Principal("alice", AccessRole.RESPONDER)
IC = Principal("ivy", AccessRole.COMMANDER)
VIEWER = Principal("vic", AccessRole.VIEWER)
START = datetime(2026, 3, 9, 9, 30, tzinfo=UTC)  # a Monday, in business hours

STUCK = [
    "Bridge transfer of 250 USDC from Ethereum to Arbitrum stuck for 2 hours, tx "
    "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060",
    "bridge transfer of 1,200 USDC from ethereum to arbitrum stuck for 3 hours, tx "
    "0x9f1e0bd4a1e204ef84bfed1be16dfba1b220605c504ed432cb51138bcf09aa5e",
    "Bridge transfer of 75.5 USDC from Ethereum to Arbitrum stuck for 40 minutes, tx "
    "0x11aa5e8a410dd4a1e204ef84bfed1be16dfba1b220605c504ed432cb51138bcf",
    "Bridge transfer of 3000 USDC from Ethereum to Arbitrum stuck for 1 hour!! tx "
    "0x22bb4ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060",
    "Bridge transfer of 10 USDC from Ethereum to Arbitrum stuck for 5 hours, tx "
    "0x33cc4ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22061",
]


def support(app: Container) -> Support:
    return Support(app.support.rt, app.support.playbook, ROLES)


def draft(clock: FakeClock, n: int, summary: str, plan: Plan = Plan.PRO) -> Case:
    return Case(
        reference=f"ZD-{3000 + n}",
        customer_id=f"cust-{n}",
        summary=summary,
        plan=plan,
        priority=Severity.P3,
        opened_at=clock.now(),
        opened_by="",
        customer_email=f"customer{n}@example.org",
        category="transfers",
        component="bridge",
    )


def posts(vendor: RecordingEffects) -> list[str]:
    return [
        s.body for s in vendor.sends if s.port == "messenger" and s.target == "patterns channel"
    ]


async def open_all(
    app: Container, clock: FakeClock, texts: list[str], *, first: int = 0
) -> list[int]:
    """Open a case per text, a few minutes apart, the engine running as they come."""
    sp = support(app)
    ids = []
    for n, text in enumerate(texts, start=first):
        view = await uc.open_case(sp, draft(clock, n, text), by=AGENT)
        assert view.case.id is not None
        ids.append(view.case.id)
        await run_until(app, clock, clock.now() + timedelta(minutes=3))
    return ids


async def test_five_customers_one_transfer_one_candidate_declared_and_every_customer_told(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(START)
    app = await build()
    cases = await open_all(app, clock, STUCK)
    (post,) = posts(vendor)
    assert "5 customers" not in post  # proposed once reached: at the third Pro customer
    assert "3 customers" in post and "P2" in post and "affects multiple users" in post
    for ref in ("CASE-1", "CASE-2", "CASE-3"):
        assert ref in post
    assert "<tx>" in post and "0x5c50" not in post  # hashes masked
    (candidate,) = await app.patterns.candidates()
    assert candidate.status is CandidateStatus.PROPOSED and candidate.severity is Severity.P2
    found = await app.patterns.evidence(candidate.id or 0)
    assert [c["id"] for c in found.cases] == cases  # the later two joined it too
    assert found.cluster.new

    declared, incident_id = await app.patterns.declare(candidate.id or 0, by=IC)
    assert declared.status is CandidateStatus.DECLARED and declared.incident_id == incident_id
    sp = support(app)
    for case_id in cases:
        assert (await uc.read_case(sp, case_id)).case.incident_id == incident_id
    incident = await inc.read_incident(app.runtime, incident_id)
    assert incident.severity is Severity.P2 and incident.service == "bridge"

    # Two updates and the resolution; the process dies after the first notice of each.
    crashed: dict[str, str] = {}  # notice step -> the key that crashed

    def crash_first_of_each(key: str) -> bool:
        step = next((part for part in key.split("/") if part.startswith("incident_notice.")), "")
        if step and step not in crashed:
            crashed[step] = key
            return True
        return False

    vendor.crash_when = crash_first_of_each
    for said in ("Transfers to Arbitrum are delayed; funds are safe.", "The relayer is back."):
        await inc.post_customer_update(app.runtime, incident_id, message=said, by=IC)
        app = await _crash_and_restart(app, build, clock)
    await inc.resolve_incident(app.runtime, incident_id, summary="Relayer restarted", by=IC)
    app = await _crash_and_restart(app, build, clock)
    await run_until(app, clock, clock.now() + timedelta(minutes=5))
    assert len(crashed) == 3
    for case_id in cases:
        subject = uc.case_ref(case_id)
        bodies = [
            s.body
            for s in vendor.sends
            if s.subject == subject and s.target == "customer" and "incident_notice." in s.key
        ]
        assert len(bodies) == 3, bodies
        assert "delayed; funds are safe" in bodies[0] and "relayer is back" in bodies[1]
        assert "has been resolved" in bodies[2]
    assert posts(vendor) == [post]  # proposed once; decided before its reminder


async def _crash_and_restart(app: Container, build: Build, clock: FakeClock) -> Container:
    with pytest.raises(SimulatedCrash):
        await app.scheduler.tick(clock.now())
    await app.close()
    app = await build()
    await app.store.run(lambda tx: tx.release_claims())
    await run_until(app, clock, clock.now())
    return app


async def test_a_dismissed_candidate_quiets_its_signature(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(START)
    app = await build()
    await open_all(app, clock, STUCK[:3])
    (candidate,) = await app.patterns.candidates()
    with pytest.raises(Forbidden):
        await app.patterns.dismiss(candidate.id or 0, "known issue", by=VIEWER)
    dismissed = await app.patterns.dismiss(
        candidate.id or 0, "Known: the bridge's own status page covers it", by=IC
    )
    assert dismissed.status is CandidateStatus.DISMISSED
    with pytest.raises(IllegalTransition, match="dismissed"):
        await app.patterns.declare(candidate.id or 0, by=IC)
    # More reports within the quiet week join it and propose nothing.
    clock.advance(timedelta(days=2))
    await open_all(app, clock, STUCK[3:], first=3)
    assert len(await app.patterns.candidates()) == 1
    found = await app.patterns.evidence(candidate.id or 0)
    assert len(found.cases) == 5 and found.cluster.status is ClusterStatus.DISMISSED
    assert len(posts(vendor)) == 1


async def test_an_undecided_candidate_is_said_again_once(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(START)
    app = await build()
    await open_all(app, clock, STUCK[:3])
    await run_until(app, clock, clock.now() + timedelta(hours=3))
    first, again = posts(vendor)
    assert "Still undecided" in again and "Still undecided" not in first


async def test_different_problems_and_components_make_no_candidate(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(START)
    app = await build()
    sp = support(app)
    texts = [
        "Bridge transfer of 250 USDC from Ethereum to Arbitrum stuck for 2 hours",
        "Cannot log in: the 2FA code is always rejected",
        "Card payment declined with error E1042 at checkout",
        "Staking rewards for November are missing",
    ]
    for n, text in enumerate(texts):
        await uc.open_case(
            sp, dataclasses.replace(draft(clock, n, text), component=f"c{n}"), by=AGENT
        )
    # And the same text on another component: not the same problem.
    await uc.open_case(
        sp, dataclasses.replace(draft(clock, 9, texts[0]), component="other"), by=AGENT
    )
    await run_until(app, clock, clock.now() + timedelta(minutes=5))
    assert await app.patterns.candidates() == []
    assert posts(vendor) == []


async def test_clusters_survive_a_restart_and_one_whale_counts_for_several(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(START)
    app = await build()
    sp = support(app)
    await uc.open_case(sp, draft(clock, 1, STUCK[0], Plan.ENTERPRISE), by=AGENT)
    await run_until(app, clock, clock.now() + timedelta(minutes=3))
    await app.close()
    app = await build()  # the index is rebuilt from the database
    sp = support(app)
    await uc.open_case(sp, draft(clock, 2, STUCK[1], Plan.STARTER), by=AGENT)
    await run_until(app, clock, clock.now() + timedelta(minutes=3))
    (candidate,) = await app.patterns.candidates()  # 5 + 1 >= 5, two customers
    assert candidate.customers == 2 and candidate.weighted == 6.0


async def test_a_case_joins_a_declared_cluster_and_is_linked_to_its_incident(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(START)
    app = await build()
    await open_all(app, clock, STUCK[:3])
    (candidate,) = await app.patterns.candidates()
    _, incident_id = await app.patterns.declare(candidate.id or 0, by=IC)
    (late,) = await open_all(app, clock, STUCK[3:4], first=3)
    view = await uc.read_case(support(app), late)
    assert view.case.incident_id == incident_id
    # Declaring again is harmless: the same incident, nothing doubled.
    again, same = await app.patterns.declare(candidate.id or 0, by=IC)
    assert same == incident_id and again.status is CandidateStatus.DECLARED
    incidents = await inc.list_incidents(app.runtime)
    assert len(incidents) == 1


async def test_an_alert_group_firing_on_the_component_counts_toward_the_trigger(
    build: Build, clock: FakeClock, vendor: RecordingEffects
) -> None:
    clock.set(START)
    app = await build()
    # Two starter customers alone weigh 2 of the 5 needed; the bridge's alert adds 3.
    starter = [dataclasses.replace(draft(clock, n, STUCK[n]), plan=Plan.STARTER) for n in (0, 1)]
    sp = support(app)
    await uc.open_case(sp, starter[0], by=AGENT)
    await run_until(app, clock, clock.now() + timedelta(minutes=1))
    labels = {"alertname": "RelayerLag", "service": "Bridge", "severity": "warning"}
    firing = Alert(
        fingerprint="relayer-1",
        state=AlertState.FIRING,
        labels=labels,
        annotations={"summary": "relayer lag above 10 minutes"},
        starts_at="2026-03-09T09:00:00Z",
    )
    await ingest_alerts(
        app.runtime,
        AlertNotification(
            source="alertmanager",
            group_key='{}:{alertname="RelayerLag"}',
            status=AlertState.FIRING,
            alerts=(firing,),
            common_labels=labels,
            common_annotations={},
            receiver="incident",
        ),
        routing=app.settings.alert_routing,
        by="alertmanager",
    )
    await uc.open_case(sp, starter[1], by=AGENT)
    await run_until(app, clock, clock.now() + timedelta(minutes=1))
    (candidate,) = await app.patterns.candidates()
    assert (candidate.customers, candidate.weighted) == (2, 5.0)
