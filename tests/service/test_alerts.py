"""Alert groups become incidents: the ingest use case on a real SQLite file, fake clock,
recording vendors."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select

from incident.adapters.database.store import SqlTransaction
from incident.adapters.database.tables import AlertGroupRow, IncidentRow, TimelineRow
from incident.bootstrap import Container
from incident.clock import FakeClock
from incident.domain.alert_routing import AlertRouting
from incident.domain.alerts import Alert, AlertGroup, AlertNotification, AlertState
from incident.domain.errors import Conflict
from incident.domain.incident import Category, Incident, Severity, Status
from incident.services import incidents as uc
from incident.services.alerts import AlertOutcome, ingest_alerts
from incident.testing import RecordingEffects
from tests.conftest import T0

M = timedelta(minutes=1)
T = TypeVar("T")

CHECKOUT = {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical"}


def alert(
    fingerprint: str, state: str = "firing", summary: str = "5xx above 5%", **labels: str
) -> Alert:
    return Alert(
        fingerprint=fingerprint,
        state=AlertState(state),
        labels={**CHECKOUT, "instance": f"{fingerprint}:8080", **labels},
        annotations={"summary": summary},
        starts_at="2026-03-02T08:59:00Z",
    )


def notification(*alerts: Alert, key: str = '{}:{alertname="HighErrorRate"}') -> AlertNotification:
    firing = any(a.state is AlertState.FIRING for a in alerts)
    return AlertNotification(
        source="alertmanager",
        group_key=key,
        status=AlertState.FIRING if firing else AlertState.RESOLVED,
        alerts=alerts,
        common_labels={k: v for k, v in alerts[0].labels.items() if k != "instance"},
        common_annotations={"summary": "checkout 5xx above 5%"},
        receiver="incident",
    )


async def ingest(
    app: Container, note: AlertNotification, routing: AlertRouting | None = None
) -> AlertOutcome:
    return await ingest_alerts(
        app.runtime,
        note,
        routing=routing or app.settings.alert_routing,
        by="alertmanager",
    )


async def count(app: Container, table: Any) -> int:
    def rows(tx: SqlTransaction) -> int:
        return int(tx.session.scalar(select(func.count()).select_from(table)) or 0)

    return await app.store.run(rows)


async def kinds(app: Container, incident_id: int) -> list[str]:
    view = await uc.get_incident(app.runtime, incident_id)
    return [e.kind for e in view.timeline]


async def test_a_firing_group_declares_the_routed_incident_and_pages(
    app: Container, vendor: RecordingEffects
) -> None:
    outcome = await ingest(app, notification(alert("a1", tier="1"), alert("a2", tier="1")))
    assert outcome.result == "created" and outcome.created
    incident = outcome.incident
    assert incident is not None and incident.id is not None
    # critical on a tier-1 service is P1 by the default rules
    assert incident.severity is Severity.P1
    assert incident.service == "checkout"
    assert incident.title == "HighErrorRate on checkout: checkout 5xx above 5%"
    assert incident.declared_by == "alertmanager"
    assert outcome.changes.joined and len(outcome.changes.joined) == 2
    view = await uc.get_incident(app.runtime, incident.id)
    assert [e.kind for e in view.timeline] == ["declared", "alert_routed", "alert_firing"]
    firing = view.timeline[2]
    assert firing.text.startswith(
        "2 alerts firing (alertmanager): HighErrorRate (instance=a1:8080)"
    )
    assert firing.data["fingerprints"] == ["a1", "a2"]
    assert "critical-tier-1" in view.timeline[1].text
    assert {u.step_id for u in view.upcoming} >= {"page-oncall-tier3", "open-war-room"}
    await app.scheduler.tick(T0)
    assert f"inc-{incident.id}/page-oncall-tier3/1" in [s.key for s in vendor.sends]


async def test_repeats_of_an_open_group_go_on_its_timeline(
    app: Container, clock: FakeClock
) -> None:
    first = await ingest(app, notification(alert("a1")))
    assert first.incident is not None and first.incident.id is not None
    clock.advance(5 * M)
    again = await ingest(app, notification(alert("a1")))
    assert again.result == "updated" and not again.created
    assert again.incident is not None and again.incident.id == first.incident.id
    assert again.changes.unchanged == 1
    assert await count(app, IncidentRow) == 1
    assert (await kinds(app, first.incident.id))[-1] == "alert_repeated"


async def test_alerts_that_join_or_resolve_are_recorded_and_p2_stays_open(
    app: Container, clock: FakeClock
) -> None:
    first = await ingest(app, notification(alert("a1")))
    assert first.incident is not None and first.incident.id is not None
    assert first.incident.severity is Severity.P2  # critical without a tier
    clock.advance(M)
    joined = await ingest(app, notification(alert("a1"), alert("a2", summary="also here")))
    assert [a.fingerprint for a in joined.changes.joined] == ["a2"]
    clock.advance(M)
    one_resolved = await ingest(app, notification(alert("a1", "resolved"), alert("a2")))
    assert [a.fingerprint for a in one_resolved.changes.resolved] == ["a1"]
    clock.advance(M)
    all_resolved = await ingest(app, notification(alert("a1", "resolved"), alert("a2", "resolved")))
    assert all_resolved.result == "updated"
    view = await uc.get_incident(app.runtime, first.incident.id)
    assert view.incident.status is Status.INVESTIGATING  # never auto-resolved: P2
    entries = [(e.kind, e.text) for e in view.timeline]
    assert (
        "alert_firing",
        "1 alert firing (alertmanager): HighErrorRate (instance=a2:8080): also here",
    ) in entries
    assert [k for k, _ in entries].count("alert_resolved") == 2
    last = view.timeline[-1]
    assert last.kind == "alerts_all_resolved"
    assert "P2 incident stays open until a person resolves it" in last.text
    assert "auto_resolve: P3, P4" in last.text
    assert await count(app, IncidentRow) == 1


async def test_a_resolved_group_resolves_a_p4_incident(app: Container, clock: FakeClock) -> None:
    low = {"severity": "info"}
    first = await ingest(app, notification(alert("a1", **low)))
    assert first.incident is not None and first.incident.severity is Severity.P4
    clock.advance(10 * M)
    outcome = await ingest(app, notification(alert("a1", "resolved", **low)))
    assert outcome.result == "resolved"
    assert outcome.incident is not None and outcome.incident.status is Status.RESOLVED
    assert outcome.incident.resolved_at == T0 + 10 * M
    assert outcome.recorded == ("alert_resolved", "resolved")
    assert first.incident.id is not None
    view = await uc.get_incident(app.runtime, first.incident.id)
    assert view.incident.resolution_summary is not None
    assert "alert_routing.auto_resolve allows for P4" in view.incident.resolution_summary


async def test_auto_resolve_follows_the_configuration(app: Container) -> None:
    routing = dataclasses.replace(app.settings.alert_routing, auto_resolve=frozenset({Severity.P2}))
    await ingest(app, notification(alert("a1")), routing)
    outcome = await ingest(app, notification(alert("a1", "resolved")), routing)
    assert outcome.result == "resolved"
    # ... and a P4 no longer resolves by itself under that configuration
    low = {"severity": "info"}
    await ingest(app, notification(alert("b1", **low), key="low"), routing)
    kept = await ingest(app, notification(alert("b1", "resolved", **low), key="low"), routing)
    assert kept.result == "updated"
    assert kept.incident is not None and kept.incident.is_open


async def test_a_group_firing_after_its_incident_is_over_starts_a_new_one(
    app: Container, clock: FakeClock
) -> None:
    first = await ingest(app, notification(alert("a1")))
    assert first.incident is not None and first.incident.id is not None
    await uc.resolve_incident(app.runtime, first.incident.id, summary="Rolled back", by="dana")
    clock.advance(M)
    late = await ingest(app, notification(alert("a1", "resolved")))
    assert late.result == "recorded"
    assert late.incident is not None and late.incident.id == first.incident.id
    assert (await kinds(app, first.incident.id))[-1] == "alert_resolved"
    clock.advance(M)
    second = await ingest(app, notification(alert("a1")))
    assert second.result == "created"
    assert second.generation == 2
    assert second.incident is not None and second.incident.id != first.incident.id
    assert second.incident.id is not None
    routed = (await uc.get_incident(app.runtime, second.incident.id)).timeline[1]
    assert "incident 2 of this group" in routed.text
    assert await count(app, AlertGroupRow) == 2
    # the open incident is the one later notifications reach
    third = await ingest(app, notification(alert("a1"), alert("a3")))
    assert third.incident is not None and third.incident.id == second.incident.id


async def test_resolved_alerts_of_an_unknown_group_store_nothing(app: Container) -> None:
    outcome = await ingest(app, notification(alert("zz", "resolved")))
    assert outcome.result == "ignored" and outcome.incident is None
    assert await count(app, IncidentRow) == 0
    assert await count(app, AlertGroupRow) == 0
    assert await count(app, TimelineRow) == 0


async def test_worse_alerts_joining_raise_the_severity_and_swap_the_playbook(
    app: Container, clock: FakeClock
) -> None:
    first = await ingest(app, notification(alert("w1", severity="warning")))
    assert first.incident is not None and first.incident.id is not None
    assert first.incident.severity is Severity.P3
    clock.advance(M)
    worse = await ingest(app, notification(alert("w1", severity="warning"), alert("c1")))
    assert worse.incident is not None and worse.incident.severity is Severity.P2
    view = await uc.get_incident(app.runtime, first.incident.id)
    changed = [e for e in view.timeline if e.kind == "severity_changed"]
    assert [e.text for e in changed] == [
        "severity P3 -> P2: alert routing rule 'critical' for the alerts now firing"
    ]
    assert "page-oncall-tier2" in {u.step_id for u in view.upcoming}
    # a milder group state never lowers it
    clock.advance(M)
    milder = await ingest(
        app, notification(alert("w1", severity="warning"), alert("c1", "resolved"))
    )
    assert milder.incident is not None and milder.incident.severity is Severity.P2


async def test_category_and_service_come_from_the_matching_rule(app: Container) -> None:
    routing = AlertRouting.parse(
        {
            "routes": [
                {
                    "match": {"team": "security"},
                    "severity": "P2",
                    "category": "security",
                    "service": "identity",
                }
            ]
        }
    )
    outcome = await ingest(app, notification(alert("s1", team="security")), routing)
    assert outcome.incident is not None and outcome.incident.id is not None
    assert outcome.incident.category is Category.SECURITY
    assert outcome.incident.service == "identity"
    view = await uc.get_incident(app.runtime, outcome.incident.id)
    assert "notify-security" in {u.step_id for u in view.upcoming}


async def test_concurrent_deliveries_of_a_new_group_declare_once(app: Container) -> None:
    note = notification(alert("a1"), alert("a2"))
    outcomes = await asyncio.gather(*(ingest(app, note) for _ in range(8)))
    assert sorted(o.result for o in outcomes) == ["created"] + ["updated"] * 7
    assert len({o.incident.id for o in outcomes if o.incident}) == 1
    assert await count(app, IncidentRow) == 1
    assert await count(app, AlertGroupRow) == 1


class StaleFirstRead:
    """The port on a real transaction, except that its first `find_alert_group` answers as
    a PostgreSQL transaction that started before a competing delivery committed would."""

    def __init__(self, real: SqlTransaction) -> None:
        self.real = real
        self.stale = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def find_alert_group(
        self, source: str, key_hash: str, *, lock: bool = False
    ) -> tuple[AlertGroup, Incident] | None:
        if self.stale:
            self.stale = False
            return None
        return self.real.find_alert_group(source, key_hash, lock=lock)


class RacingStore:
    """The real store, where a competing delivery of the same notification commits while
    our first transaction is between its read and its insert."""

    def __init__(self, app: Container, note: AlertNotification) -> None:
        self.app, self.note, self.raced = app, note, False
        self.transactions = 0

    async def run(
        self, work: Callable[[Any], T], *, durable: bool = True, urgent: bool = False
    ) -> T:
        self.transactions += 1
        if not self.raced:
            self.raced = True
            competitor = dataclasses.replace(self.app.runtime, store=self.app.store)
            await ingest_alerts(
                competitor, self.note, routing=self.app.settings.alert_routing, by="competitor"
            )
            return await self.app.store.run(lambda tx: work(StaleFirstRead(tx)), durable=durable)
        return await self.app.store.run(work, durable=durable)

    async def read(self, work: Callable[[Any], T]) -> T:
        return await self.app.store.read(work)


async def test_a_lost_race_is_retried_and_updates_the_winner(app: Container) -> None:
    note = notification(alert("a1"))
    racing = RacingStore(app, note)
    runtime = dataclasses.replace(app.runtime, store=racing)
    outcome = await ingest_alerts(
        runtime, note, routing=app.settings.alert_routing, by="alertmanager"
    )
    # our first attempt hit the unique key and rolled back; the retry found the winner's group
    assert racing.transactions == 2
    assert outcome.result == "updated"
    assert outcome.incident is not None and outcome.incident.declared_by == "competitor"
    assert await count(app, IncidentRow) == 1
    assert await count(app, AlertGroupRow) == 1


async def test_the_alert_group_key_is_unique_per_generation(app: Container) -> None:
    first = await ingest(app, notification(alert("a1")))
    assert first.incident is not None and first.incident.id is not None
    found = await app.store.run(
        lambda tx: tx.find_alert_group("alertmanager", notification(alert("a1")).key_hash)
    )
    assert found is not None
    group, incident = found
    assert group.generation == 1 and incident.id == first.incident.id

    with pytest.raises(Conflict, match="generation 1 was stored by another delivery"):
        await app.store.run(lambda tx: tx.add_alert_group(group))
    assert await count(app, AlertGroupRow) == 1


async def test_a_group_of_many_alerts_is_summarised_on_the_timeline(app: Container) -> None:
    alerts = [alert(f"h{i:02}") for i in range(25)]
    outcome = await ingest(app, notification(*alerts))
    assert outcome.incident is not None and outcome.incident.id is not None
    view = await uc.get_incident(app.runtime, outcome.incident.id)
    firing = view.timeline[-1]
    assert firing.text.startswith("25 alerts firing")
    assert firing.text.endswith("; and 15 more")
    assert len(firing.data["fingerprints"]) == 25
