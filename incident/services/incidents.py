"""Use cases: everything a person (or an alert) can do to an incident.

Each use case reads the clock once, changes the incident through the domain, records the
timeline, re-plans the incident's step occurrences and commits, all in one transaction,
then tells the scheduler the plan changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from incident.clock import Clock
from incident.domain.access import Action, Principal, authorize
from incident.domain.errors import Conflict, InvalidValue, NotFound
from incident.domain.incident import (
    Category,
    ComponentsChanged,
    CustomerUpdatePosted,
    Event,
    Incident,
    IncidentAcknowledged,
    IncidentDeclared,
    IncidentResolved,
    InternalNoteAdded,
    PublicTitleChanged,
    RcaCompleted,
    Role,
    RoleAssigned,
    Severity,
    SeverityChanged,
    Status,
    StatusChanged,
)
from incident.domain.planning import plan
from incident.domain.playbook import PlaybookSet
from incident.domain.records import Occurrence, PlanChange, TimelineEntry
from incident.domain.status_page import Catalog
from incident.services.ports import Store, Transaction

log = logging.getLogger("incident.services")


def _nothing() -> None:
    return None


@dataclass
class Runtime:
    """What the use cases work with. Built once by bootstrap."""

    store: Store
    playbooks: PlaybookSet
    clock: Clock
    plan_changed: Callable[[], None] = field(default=_nothing)
    catalog: Catalog = field(default_factory=Catalog)
    # Told after a commit that changed what the public status page shows.
    public_changed: Callable[[], None] = field(default=_nothing)


@dataclass(frozen=True)
class UpcomingStep:
    occurrence_id: int
    step_id: str
    occurrence: int
    action: str
    target: str | None
    description: str
    due_at: datetime
    run_at: datetime
    state: str
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class IncidentView:
    incident: Incident
    timeline: list[TimelineEntry]
    upcoming: list[UpcomingStep]
    history: list[Occurrence]


# --- timeline entries for domain events ----------------------------------------------------


def timeline_entry(event: Event) -> TimelineEntry:
    kind, text, data = _describe(event)
    return TimelineEntry(
        at=event.at,
        actor=event.actor,
        kind=kind,
        text=text,
        data=data,
        public=isinstance(event, CustomerUpdatePosted | ComponentsChanged),
    )


def _describe(event: Event) -> tuple[str, str, dict[str, object]]:
    match event:
        case IncidentDeclared(severity=severity, title=title):
            return "declared", f"{severity.value} declared: {title}", {"severity": severity.value}
        case IncidentAcknowledged():
            return "acknowledged", f"acknowledged by {event.actor}", {}
        case StatusChanged(old=old, new=new):
            return (
                "status_changed",
                f"status {old.value} -> {new.value}",
                {"old": old.value, "new": new.value},
            )
        case CustomerUpdatePosted(status=status, message=message, automatic=automatic):
            return "customer_update", message, {"status": status.value, "automatic": automatic}
        case InternalNoteAdded(text=text):
            return "internal_note", text, {}
        case SeverityChanged(old=old, new=new, reason=reason):
            text = f"severity {old.value} -> {new.value}" + (f": {reason}" if reason else "")
            return "severity_changed", text, {"old": old.value, "new": new.value}
        case RoleAssigned(role=role, person=person):
            return (
                "role_assigned",
                f"{role.value}: {person}",
                {"role": role.value, "person": person},
            )
        case IncidentResolved(summary=summary):
            return "resolved", summary, {}
        case RcaCompleted(link=link):
            return "rca_completed", f"RCA done: {link}", {"link": link}
        case ComponentsChanged(changes=changes):
            text = "components: " + ", ".join(f"{c} {st.value}" for c, st in changes)
            return "components_changed", text, {"components": {c: st.value for c, st in changes}}
        case PublicTitleChanged(title=title):
            return "public_title_changed", f"public title: {title}", {"title": title}
    raise TypeError(f"no timeline entry for {event!r}")  # pragma: no cover


# --- planning glue -------------------------------------------------------------------------


def replan(
    tx: Transaction,
    incident: Incident,
    playbooks: PlaybookSet,
    *,
    now: datetime,
    reason: str,
    new: bool = False,
) -> PlanChange:
    """Bring the incident's pending occurrences in line with its current facts and playbook.

    `new`: the incident was added in this transaction, so it has no occurrences yet.
    """
    assert incident.id is not None
    playbook = playbooks.for_severity(incident.severity)
    history = {} if new else tx.step_history(incident.id)
    planned = plan(incident, playbook, history)
    by_id = {s.id: s for s in playbook.steps}
    change = tx.reconcile(incident.id, planned, by_id, now=now, new=new)
    if change.cancelled:
        steps = sorted(set(change.cancelled))
        tx.append_timeline(
            incident.id,
            [
                TimelineEntry(
                    at=now,
                    kind="steps_cancelled",
                    actor="playbook",
                    text=f"{reason}: cancelled {', '.join(steps)}",
                    data={"steps": steps},
                )
            ],
        )
    return change


async def _change(
    rt: Runtime,
    incident_id: int,
    reason: str,
    mutate: Callable[[Incident, datetime], Sequence[Event]],
) -> Incident:
    now = rt.clock.now()

    def work(tx: Transaction) -> Incident:
        incident = tx.get_incident(incident_id, lock=True)
        events = mutate(incident, now)
        tx.save_incident(incident)
        tx.append_timeline(incident_id, [timeline_entry(e) for e in events])
        replan(tx, incident, rt.playbooks, now=now, reason=reason)
        return incident

    incident = await rt.store.run(work)
    rt.plan_changed()
    # Status, severity and roles show on the public page or the dashboard's snapshot;
    # the rebuild is coalesced, so telling it too often costs nothing.
    rt.public_changed()
    log.info(reason, extra={"action": reason.replace(" ", "_"), "incident_id": incident_id})
    return incident


# --- use cases -----------------------------------------------------------------------------


async def declare_incident(
    rt: Runtime,
    *,
    title: str,
    severity: Severity,
    by: str,
    service: str = "",
    impact: str = "",
    category: Category = Category.GENERAL,
    idempotency_key: str | None = None,
    commander: str | None = None,
    components: dict[str, str] | None = None,
    public_title: str | None = None,
) -> tuple[Incident, bool]:
    """Declare and plan the whole playbook in one transaction.

    With an `idempotency_key`, a repeated declaration returns the first incident and
    `False` (not created) instead of declaring twice.
    """
    now = rt.clock.now()
    incident = Incident.declare(
        title=title,
        severity=severity,
        at=now,
        by=by,
        service=service,
        impact=impact,
        category=category,
    )
    if commander:
        # Whoever declares from chat runs the incident until they hand it over.
        incident.assign(Role.COMMANDER, commander, at=now, by=by)
    if components:
        incident.set_components(rt.catalog.check_statuses(components), at=now, by=by)
    if public_title is not None:
        incident.set_public_title(public_title, at=now, by=by)

    def work(tx: Transaction) -> tuple[Incident, bool]:
        if idempotency_key is not None:
            existing = tx.find_incident_by_key(idempotency_key)
            if existing is not None:
                return existing, False
        incident_id = tx.add_incident(incident, idempotency_key=idempotency_key)
        tx.append_timeline(incident_id, [timeline_entry(e) for e in incident.events])
        replan(tx, incident, rt.playbooks, now=now, reason="declared", new=True)
        return incident, True

    try:
        # Urgent: a declaration starts the clock on paging; it goes ahead of queued work.
        result = await rt.store.run(work, urgent=True)
    except Conflict:
        # A concurrent declaration with the same key committed first: answer with it.
        assert idempotency_key is not None
        existing = await rt.store.run(lambda tx: tx.find_incident_by_key(idempotency_key))
        if existing is None:  # pragma: no cover - the key cannot vanish
            raise
        return existing, False
    if result[1]:
        rt.plan_changed()
        rt.public_changed()
        log.info(
            "incident declared",
            extra={
                "action": "declared",
                "incident_id": result[0].id,
                "severity": severity.value,
                "by": by,
            },
        )
    return result


async def acknowledge_incident(rt: Runtime, incident_id: int, *, by: str) -> Incident:
    return await _change(
        rt, incident_id, "acknowledged", lambda i, now: [i.acknowledge(at=now, by=by)]
    )


async def change_status(rt: Runtime, incident_id: int, status: Status, *, by: str) -> Incident:
    return await _change(
        rt, incident_id, "status changed", lambda i, now: [i.change_status(status, at=now, by=by)]
    )


async def post_customer_update(
    rt: Runtime,
    incident_id: int,
    *,
    message: str,
    by: str,
    status: Status | None = None,
    components: dict[str, str] | None = None,
) -> Incident:
    """Post a customer-facing update; with `components`, their statuses change with it
    (as on Statuspage, where an update sets the affected components)."""
    statuses = rt.catalog.check_statuses(components) if components else {}

    def post(incident: Incident, now: datetime) -> list[Event]:
        events: list[Event] = []
        if statuses:
            changed = incident.set_components(statuses, at=now, by=by)
            events += [changed] if changed is not None else []
        events += incident.post_customer_update(message=message, at=now, by=by, status=status)
        return events

    return await _change(rt, incident_id, "customer update posted", post)


async def set_components(
    rt: Runtime, incident_id: int, components: dict[str, str], *, by: str
) -> Incident:
    """Set the status of the components the incident affects, as the page shows them."""
    if not components:
        raise InvalidValue("components", "name at least one component and its status")
    statuses = rt.catalog.check_statuses(components)

    def change(incident: Incident, now: datetime) -> list[Event]:
        changed = incident.set_components(statuses, at=now, by=by)
        return [changed] if changed is not None else []

    return await _change(rt, incident_id, "components changed", change)


async def set_public_title(rt: Runtime, incident_id: int, title: str, *, by: str) -> Incident:
    return await _change(
        rt,
        incident_id,
        "public title changed",
        lambda i, now: [i.set_public_title(title, at=now, by=by)],
    )


async def add_internal_note(rt: Runtime, incident_id: int, *, text: str, by: str) -> Incident:
    return await _change(
        rt, incident_id, "note added", lambda i, now: [i.add_note(text=text, at=now, by=by)]
    )


async def change_severity(
    rt: Runtime, incident_id: int, severity: Severity, *, by: str, reason: str = ""
) -> Incident:
    return await _change(
        rt,
        incident_id,
        f"severity changed to {severity.value}",
        lambda i, now: [i.change_severity(severity, at=now, by=by, reason=reason)],
    )


async def assign_role(
    rt: Runtime, incident_id: int, role: Role, person: str, *, by: str
) -> Incident:
    return await _change(
        rt,
        incident_id,
        f"{role.value} assigned",
        lambda i, now: [i.assign(role, person, at=now, by=by)],
    )


async def resolve_incident(rt: Runtime, incident_id: int, *, summary: str, by: str) -> Incident:
    def resolve(incident: Incident, now: datetime) -> list[Event]:
        within = rt.playbooks.for_severity(incident.severity).deadline("rca_due")
        return [incident.resolve(summary=summary, at=now, by=by, rca_within=within)]

    return await _change(rt, incident_id, "resolved", resolve)


async def complete_rca(rt: Runtime, incident_id: int, *, link: str, by: str) -> Incident:
    return await _change(
        rt, incident_id, "RCA completed", lambda i, now: [i.complete_rca(link=link, at=now, by=by)]
    )


def _pending_occurrence(tx: Transaction, incident_id: int, step_id: str) -> Occurrence:
    pending = tx.occurrences(incident_id, states=("pending",))
    match = next((o for o in pending if o.step_id == step_id), None)
    if match is None:
        upcoming = ", ".join(sorted({o.step_id for o in pending})) or "none"
        raise NotFound(
            f"step {step_id!r} has no upcoming occurrence on incident "
            f"{incident_id}; upcoming steps: {upcoming}"
        )
    return match


async def skip_step(
    rt: Runtime, incident_id: int, step_id: str, *, reason: str, by: str
) -> Incident:
    """Skip the next occurrence of a step (a repeating step plans its following one)."""
    reason = reason.strip()
    if not reason:
        raise InvalidValue("reason", "say why the step is skipped; it goes on the timeline")
    now = rt.clock.now()

    def work(tx: Transaction) -> Incident:
        incident = tx.get_incident(incident_id, lock=True)
        occurrence = _pending_occurrence(tx, incident_id, step_id)
        tx.finish_occurrence(
            occurrence.id, state="skipped", now=now, outcome=f"skipped by {by}: {reason}"
        )
        tx.append_timeline(
            incident_id,
            [
                TimelineEntry(
                    at=now,
                    kind="step_skipped",
                    actor=by,
                    step_id=step_id,
                    occurrence=occurrence.occurrence,
                    text=f"skipped {step_id}: {reason}",
                )
            ],
        )
        replan(tx, incident, rt.playbooks, now=now, reason="step skipped")
        return incident

    incident = await rt.store.run(work)
    rt.plan_changed()
    return incident


async def snooze_step(
    rt: Runtime, incident_id: int, step_id: str, *, delay: timedelta, reason: str, by: str
) -> Incident:
    """Postpone the next occurrence of a step by `delay` from its due time, or from now
    when it is already due, so a snooze always moves the step later."""
    reason = reason.strip()
    if not reason:
        raise InvalidValue("reason", "say why the step is snoozed; it goes on the timeline")
    if not timedelta(minutes=1) <= delay <= timedelta(days=7):
        raise InvalidValue("delay", "snooze for between 1 minute and 7 days")
    now = rt.clock.now()

    def work(tx: Transaction) -> Incident:
        incident = tx.get_incident(incident_id, lock=True)
        occurrence = _pending_occurrence(tx, incident_id, step_id)
        until = max(occurrence.run_at, now) + delay
        tx.snooze_occurrence(occurrence.id, until=until)
        tx.append_timeline(
            incident_id,
            [
                TimelineEntry(
                    at=now,
                    kind="step_snoozed",
                    actor=by,
                    step_id=step_id,
                    occurrence=occurrence.occurrence,
                    text=f"snoozed {step_id} until {until.isoformat()}: {reason}",
                )
            ],
        )
        return incident

    incident = await rt.store.run(work)
    rt.plan_changed()
    return incident


async def authorize_on(
    rt: Runtime,
    principal: Principal,
    incident_id: int,
    action: Action | Callable[[Incident], Action],
) -> Incident:
    """The incident, if `principal` may take `action` on it (Forbidden or NotFound if not).

    Checked on the incident as it is when asked; the change itself runs in its own
    transaction right after.
    """
    incident = await rt.store.run(lambda tx: tx.get_incident(incident_id))
    authorize(principal, action if isinstance(action, Action) else action(incident), incident)
    return incident


async def find_by_war_room(rt: Runtime, rooms: Sequence[str]) -> Incident | None:
    return await rt.store.run(lambda tx: tx.find_incident_by_war_room(rooms))


async def get_incident(rt: Runtime, incident_id: int) -> IncidentView:
    def read(tx: Transaction) -> tuple[Incident, list[TimelineEntry], list[Occurrence]]:
        return (tx.get_incident(incident_id), tx.timeline(incident_id), tx.occurrences(incident_id))

    incident, timeline, occurrences = await rt.store.run(read)
    steps = rt.playbooks.steps()
    upcoming = [
        UpcomingStep(
            occurrence_id=o.id,
            step_id=o.step_id,
            occurrence=o.occurrence,
            action=o.action,
            target=o.target,
            description=steps[o.step_id].description if o.step_id in steps else "",
            due_at=o.due_at,
            run_at=o.run_at,
            state=o.state,
            attempts=o.attempts,
            last_error=o.last_error,
        )
        for o in sorted(occurrences, key=lambda o: (o.run_at, o.id))
        if o.state in ("pending", "running")
    ]
    history = [o for o in occurrences if o.state not in ("pending", "running")]
    return IncidentView(incident=incident, timeline=timeline, upcoming=upcoming, history=history)


async def list_incidents(
    rt: Runtime, *, statuses: Sequence[Status] = (), severities: Sequence[Severity] = ()
) -> list[Incident]:
    return await rt.store.run(
        lambda tx: tx.list_incidents(statuses=statuses, severities=severities)
    )
