"""Use case: take in one alert notification (any vendor, already in domain words).

One alert group is one incident. The first firing notification of a group declares it
(severity, service and category from the routing rules); later ones while it is open go on
its timeline (alerts that joined, fired again or resolved; a bare repeat is noted too) and
may raise its severity, never lower it. When every alert of the group has resolved, the
incident is resolved only if `alert_routing.auto_resolve` names its severity; otherwise the
timeline says a person must. A group that fires again after its incident is over starts a
new incident (the group's next generation).

Everything one notification does happens in one transaction. Two deliveries of the same
new group cannot both declare: the alert group's unique key (source, group key,
generation) lets only one commit; the other is rolled back, retried, and then finds the
group and updates it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from incident.domain.access import Action, Actor, actor_name, authorized
from incident.domain.alert_routing import AlertRouting
from incident.domain.alerts import (
    Alert,
    AlertChanges,
    AlertGroup,
    AlertNotification,
    listing,
)
from incident.domain.errors import Conflict
from incident.domain.incident import Event, Incident
from incident.domain.records import TimelineEntry
from incident.domain.text import SERVICE
from incident.services.incidents import Runtime, replan, timeline_entry
from incident.services.ports import Transaction

log = logging.getLogger("incident.alerts")

ATTEMPTS = 3  # a lost race on a new group is retried: the retry finds the winner's group
FINGERPRINTS_KEPT = 100  # on one timeline entry; the group row keeps them all


@dataclass(frozen=True)
class AlertOutcome:
    """What one notification did, for the webhook's answer and the metrics.

    `result`: created (declared an incident), updated (recorded on an open incident),
    resolved (its incident resolved with it), recorded (on an incident that was already
    over) or ignored (resolved alerts of a group we never saw fire).
    """

    result: str
    incident: Incident | None
    generation: int | None
    changes: AlertChanges = field(default_factory=AlertChanges)
    recorded: tuple[str, ...] = ()
    detail: str = ""

    @property
    def created(self) -> bool:
        return self.result == "created"


async def ingest_alerts(
    rt: Runtime, notification: AlertNotification, *, routing: AlertRouting, by: Actor
) -> AlertOutcome:
    """Apply one notification in one transaction; see the module docstring for the rules.
    An alert source may declare, raise and resolve: a responder's rights."""
    authorized(by, Action.DECLARE)
    by = actor_name(by)
    now = rt.clock.now()
    for attempt in range(1, ATTEMPTS + 1):
        try:
            # Urgent: it may declare, and the page's clock starts with the alert.
            outcome = await rt.store.run(
                lambda tx: _ingest(tx, rt, notification, routing=routing, by=by, now=now),
                urgent=True,
            )
        except Conflict:
            if attempt == ATTEMPTS:
                raise
            log.info(
                "alert group raced another delivery; retrying",
                extra={"action": "alert_group_race", "source": notification.source},
            )
            continue
        if outcome.result in ("created", "updated", "resolved"):
            rt.plan_changed()
        log.info(
            "alert notification",
            extra={
                "action": f"alerts_{outcome.result}",
                "source": notification.source,
                "incident_id": outcome.incident.id if outcome.incident else None,
            },
        )
        return outcome
    raise AssertionError("unreachable")  # pragma: no cover


def _ingest(
    tx: Transaction,
    rt: Runtime,
    notification: AlertNotification,
    *,
    routing: AlertRouting,
    by: str,
    now: datetime,
) -> AlertOutcome:
    found = tx.find_alert_group(notification.source, notification.key_hash, lock=True)
    group, incident = found if found is not None else (None, None)
    if group is not None and incident is not None and incident.is_open:
        return _update(tx, rt, notification, group, incident, routing=routing, by=by, now=now)
    if notification.is_firing:
        generation = group.generation + 1 if group else 1
        return _declare(tx, rt, notification, generation, routing=routing, by=by, now=now)
    if group is None or incident is None:
        return AlertOutcome(
            result="ignored",
            incident=None,
            generation=None,
            detail="only resolved alerts, of a group that has not fired here: nothing to do",
        )
    # The group's incident is already over: its alerts' news still belongs on its timeline.
    assert incident.id is not None
    changes = group.apply(notification, at=now)
    entries = _alert_entries(notification, group, changes, by=by, now=now)
    tx.save_alert_group(group)
    tx.append_timeline(incident.id, entries)
    return AlertOutcome(
        result="recorded",
        incident=incident,
        generation=group.generation,
        changes=changes,
        recorded=tuple(e.kind for e in entries),
        detail=f"{incident.ref} is already {incident.status.value}; recorded on its timeline",
    )


def _declare(
    tx: Transaction,
    rt: Runtime,
    notification: AlertNotification,
    generation: int,
    *,
    routing: AlertRouting,
    by: str,
    now: datetime,
) -> AlertOutcome:
    route, labels = notification.route(routing)
    incident = Incident.declare(
        title=notification.title(labels),
        severity=route.severity,
        at=now,
        by=by,
        # Label values are cleaned to fit, never refused: an alert must not be lost.
        service=SERVICE.clean(route.service_for(labels)),
        impact=notification.impact(),
        category=route.category,
    )
    # The alert group's unique key (source, group key, generation) is what stops a second
    # declaration: a delivery that loses the race fails here, rolls back and is retried.
    incident_id = tx.add_incident(incident, idempotency_key=None)
    group, changes = AlertGroup.start(
        notification, generation=generation, incident_id=incident_id, at=now
    )
    tx.add_alert_group(group)
    routed = TimelineEntry(
        at=now,
        kind="alert_routed",
        actor=by,
        text=(
            f"alert routing rule {route.name!r}: {route.severity.value}"
            + (f", service {incident.service}" if incident.service else "")
            + f", category {route.category.value}"
            + (
                f" (group fired again: incident {generation} of this group)"
                if generation > 1
                else ""
            )
        ),
        data=_group_data(notification, group),
    )
    entries = [
        *(timeline_entry(e) for e in incident.events),
        routed,
        *_alert_entries(notification, group, changes, by=by, now=now),
    ]
    tx.append_timeline(incident_id, entries)
    replan(tx, incident, rt.playbooks, now=now, reason="declared", new=True)
    return AlertOutcome(
        result="created",
        incident=incident,
        generation=generation,
        changes=changes,
        recorded=tuple(e.kind for e in entries),
        detail=f"declared {incident.ref} ({incident.severity.value}) for a new alert group",
    )


def _update(
    tx: Transaction,
    rt: Runtime,
    notification: AlertNotification,
    group: AlertGroup,
    incident: Incident,
    *,
    routing: AlertRouting,
    by: str,
    now: datetime,
) -> AlertOutcome:
    assert incident.id is not None
    was_firing = group.firing
    changes = group.apply(notification, at=now)
    entries = _alert_entries(notification, group, changes, by=by, now=now)
    events: list[Event] = []
    route, _ = notification.route(routing)
    if notification.is_firing and route.severity.rank < incident.severity.rank:
        # Worse alerts joined: an incident is as severe as its worst alert. (Lowering it
        # is a person's decision.)
        events.append(
            incident.change_severity(
                route.severity,
                at=now,
                by=by,
                reason=f"alert routing rule {route.name!r} for the alerts now firing",
            )
        )
    result = "updated"
    if was_firing and not group.firing:
        if incident.severity in routing.auto_resolve:
            within = rt.playbooks.for_severity(incident.severity).deadline("rca_due")
            summary = (
                f"Every alert of the group resolved ({notification.source}); resolved "
                f"automatically, as alert_routing.auto_resolve allows for "
                f"{incident.severity.value}."
            )
            events.append(incident.resolve(summary=summary, at=now, by=by, rca_within=within))
            result = "resolved"
        else:
            allowed = ", ".join(sorted(s.value for s in routing.auto_resolve)) or "none"
            entries.append(
                TimelineEntry(
                    at=now,
                    kind="alerts_all_resolved",
                    actor=by,
                    text=(
                        f"every alert of the group has resolved; a {incident.severity.value} "
                        f"incident stays open until a person resolves it "
                        f"(alert_routing.auto_resolve: {allowed})"
                    ),
                    data=_group_data(notification, group),
                )
            )
    entries += [timeline_entry(e) for e in events]
    tx.save_alert_group(group)
    tx.append_timeline(incident.id, entries)
    if events:
        tx.save_incident(incident)
        replan(
            tx,
            incident,
            rt.playbooks,
            now=now,
            reason="resolved" if result == "resolved" else "severity raised by alerts",
        )
    return AlertOutcome(
        result=result,
        incident=incident,
        generation=group.generation,
        changes=changes,
        recorded=tuple(e.kind for e in entries),
        detail=f"recorded on {incident.ref}, open since {incident.declared_at.isoformat()}"
        if result == "updated"
        else f"resolved {incident.ref}: every alert of its group resolved",
    )


def _alert_entries(
    notification: AlertNotification,
    group: AlertGroup,
    changes: AlertChanges,
    *,
    by: str,
    now: datetime,
) -> list[TimelineEntry]:
    """One entry per kind of change; a notification that changed nothing is a repeat."""
    source = notification.source

    def entry(kind: str, verb: str, alerts: Sequence[Alert]) -> TimelineEntry:
        count = f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''}"
        data = _group_data(notification, group)
        data["fingerprints"] = [a.fingerprint for a in alerts[:FINGERPRINTS_KEPT]]
        return TimelineEntry(
            at=now,
            kind=kind,
            actor=by,
            text=f"{count} {verb} ({source}): {listing(alerts)}",
            data=data,
        )

    entries = []
    if changes.joined:
        entries.append(entry("alert_firing", "firing", changes.joined))
    if changes.refired:
        entries.append(entry("alert_firing_again", "firing again", changes.refired))
    if changes.resolved:
        entries.append(entry("alert_resolved", "resolved", changes.resolved))
    if notification.truncated:
        entries.append(
            TimelineEntry(
                at=now,
                kind="alerts_truncated",
                actor=by,
                text=f"{notification.truncated} more alerts were left out by {source} "
                "(its max_alerts setting)",
                data=_group_data(notification, group),
            )
        )
    if not changes:
        firing = len(notification.firing)
        entries.append(
            TimelineEntry(
                at=now,
                kind="alert_repeated",
                actor=by,
                text=f"{source} repeated the group's notification: {firing} alert"
                f"{'s' if firing != 1 else ''} still firing, nothing changed",
                data=_group_data(notification, group),
            )
        )
    return entries


def _group_data(notification: AlertNotification, group: AlertGroup) -> dict[str, object]:
    return {
        "source": notification.source,
        "group_key": notification.group_key[:500],
        "generation": group.generation,
        "receiver": notification.receiver[:200],
    }
