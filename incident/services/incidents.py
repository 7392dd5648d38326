"""Use cases: everything a person (or an alert) can do to an incident.

Each use case reads the clock once, changes the incident through the domain, records the
timeline, re-plans the incident's step occurrences and commits, all in one transaction,
then tells the scheduler the plan changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from incident.clock import Clock
from incident.domain.access import (
    Action,
    Actor,
    Rule,
    actor_name,
    assign_action,
    authorized,
    severity_action,
)
from incident.domain.errors import Conflict, IllegalTransition, InvalidValue, NotFound
from incident.domain.follow_ups import FollowUp, follow_up_id, follow_up_steps
from incident.domain.incident import (
    Cancellation,
    Category,
    ComponentsChanged,
    CustomerUpdatePosted,
    DuplicateMerged,
    Event,
    Incident,
    IncidentAcknowledged,
    IncidentCancelled,
    IncidentDeclared,
    IncidentEdited,
    IncidentReopened,
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
from incident.domain.playbook import AUTOMATIC_CUSTOMER_TEXTS, Playbook, PlaybookSet, Step
from incident.domain.records import (
    Occurrence,
    OccurrenceState,
    PlanChange,
    SubjectRef,
    TimelineEntry,
)
from incident.domain.status_page import Catalog
from incident.services.ports import IncidentFollower, Store, Transaction

log = logging.getLogger("incident.services")


class Subscribers:
    """Who is told, after a commit, that something changed. Each registers itself
    (`subscribe`); the use cases call the list."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], None]] = []

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def unsubscribe(self, callback: Callable[[], None]) -> None:
        self._callbacks.remove(callback)

    def __call__(self) -> None:
        for callback in self._callbacks:
            callback()


@dataclass
class Runtime:
    """What the use cases work with. Built once by bootstrap."""

    store: Store
    playbooks: PlaybookSet
    clock: Clock
    # Told after a commit that changed a plan (the engine wakes, here and on replicas).
    plan_changed: Subscribers = field(default_factory=Subscribers)
    catalog: Catalog = field(default_factory=Catalog)
    # Told after a commit that changed what the public status page shows.
    public_changed: Subscribers = field(default_factory=Subscribers)
    # Incidents of these categories hold each automatic customer-facing text (status page,
    # notifications, holding updates) until their commander approves it.
    approval_categories: frozenset[Category] = frozenset({Category.SECURITY})
    # How the public status page shows a cancelled incident: withdraw, or no_impact.
    cancelled_incidents: str = "withdraw"
    # Keeps the configured secrets out of what is stored and shown (vendor error texts).
    redact: Callable[[str], str] = field(default=str)
    # Told in each unit of work that changes an incident (the cases linked to it).
    followers: list[IncidentFollower] = field(default_factory=list)

    def tell_followers(
        self, tx: Transaction, incident: Incident, events: Sequence[object], now: datetime
    ) -> None:
        if events:
            for follower in self.followers:
                follower.incident_changed(tx, incident, events, now)

    def needs_approval(self, incident: Incident, step: Step) -> bool:
        """Whether this step's text waits for the commander's approval on this incident."""
        return (
            step.action in AUTOMATIC_CUSTOMER_TEXTS
            and incident.category in self.approval_categories
        )


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
    state: OccurrenceState  # pending, running (being sent now) or held (for approval)
    attempts: int
    last_error: str | None
    needs_approval: bool = False  # will wait for the commander's approval when due
    approved_by: str | None = None


@dataclass(frozen=True)
class IncidentView:
    incident: Incident
    timeline: list[TimelineEntry]
    upcoming: list[UpcomingStep]
    history: list[Occurrence]
    follow_ups: list[FollowUp] = field(default_factory=list)


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


# An event's timeline entry: its kind, its text and its data.
_Described = tuple[str, str, dict[str, object]]


def _describe(event: Event) -> _Described:
    described = _describe_course(event)
    if described is None:
        described = _describe_change(event)
    if described is None:  # pragma: no cover
        raise TypeError(f"no timeline entry for {event!r}")
    return described


def _describe_course(event: Event) -> _Described | None:
    """The events that move the incident through its life; None for any other."""
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
        case IncidentResolved(summary=summary):
            return "resolved", summary, {}
        case RcaCompleted(link=link):
            return "rca_completed", f"RCA done: {link}", {"link": link}
        case IncidentCancelled(reason=reason, note=note, merged_into=merged_into):
            if merged_into is not None:
                text = f"merged into INC-{merged_into} as a duplicate"
            else:
                text = f"cancelled as {reason.words}" + (f": {note}" if note else "")
            return "cancelled", text, {"reason": reason.value, "merged_into": merged_into}
        case IncidentReopened(reason=reason, status=status):
            return "reopened", f"reopened ({status.value}): {reason}", {"status": status.value}
        case DuplicateMerged(duplicate=duplicate, duplicate_ref=ref, duplicate_title=title):
            text = f"{ref} merged into this incident as a duplicate: {title}"
            return "merged", text, {"duplicate": duplicate, "components": list(event.components)}
    return None


def _describe_change(event: Event) -> _Described | None:
    """The events that say something or change the incident's details; None for any other."""
    match event:
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
        case ComponentsChanged(changes=changes):
            text = "components: " + ", ".join(f"{c} {st.value}" for c, st in changes)
            return "components_changed", text, {"components": {c: st.value for c, st in changes}}
        case PublicTitleChanged(title=title):
            return "public_title_changed", f"public title: {title}", {"title": title}
        case IncidentEdited(changes=changes):
            text = "edited: " + "; ".join(
                f"{name} {old!r} -> {new!r}" for name, old, new in changes
            )
            return (
                "edited",
                text,
                {"changes": [{"field": n, "old": o, "new": v} for n, o, v in changes]},
            )
    return None


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
    extra = [] if new else own_steps(tx, incident.id)
    history = {} if new else tx.step_history(SubjectRef.incident(incident.id))
    planned = plan(incident, playbook, history, extra)
    by_id = {s.id: s for s in (*playbook.steps, *extra)}
    change = tx.reconcile(SubjectRef.incident(incident.id), planned, by_id, now=now, new=new)
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


def own_steps(tx: Transaction, incident_id: int) -> list[Step]:
    """The steps an incident has beyond its playbook: its follow-up items' reminders."""
    return [step for item in tx.follow_ups(incident_id) for step in follow_up_steps(item)]


def find_step(
    tx: Transaction, incident: Incident, playbook: Playbook, step_id: str
) -> tuple[Step | None, FollowUp | None]:
    """A step of this incident by id, from its playbook or its follow-up items (with the
    item it reminds of)."""
    item_id = follow_up_id(step_id)
    if item_id is None:
        return playbook.step(step_id), None
    assert incident.id is not None
    try:
        item = tx.get_follow_up(incident.id, item_id)
    except NotFound:
        return None, None
    return next((s for s in follow_up_steps(item) if s.id == step_id), None), item


async def _change(
    rt: Runtime,
    incident_id: int,
    reason: str,
    mutate: Callable[[Incident, datetime], Sequence[Event]],
    *,
    by: Actor,
    rule: Rule,
) -> Incident:
    now = rt.clock.now()

    def work(tx: Transaction) -> Incident:
        incident = tx.get_incident(incident_id, lock=True)
        authorized(by, rule, incident)
        events = mutate(incident, now)
        tx.save_incident(incident)
        tx.append_timeline(incident_id, [timeline_entry(e) for e in events])
        replan(tx, incident, rt.playbooks, now=now, reason=reason)
        rt.tell_followers(tx, incident, events, now)
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
    by: Actor,
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
    authorized(by, Action.DECLARE)
    by = actor_name(by)
    now = rt.clock.now()
    incident = Incident.declare(
        title=title,
        severity=severity,
        at=now,
        by=by,
        service=service,
        impact=impact,
        category=category,
        # Whoever declares from chat runs the incident until they hand it over.
        commander=commander,
    )
    if components:
        incident.set_components(rt.catalog.check_statuses(components), at=now, by=by)
    if public_title is not None:
        incident.set_public_title(public_title, at=now, by=by)

    fingerprint = declaration_fingerprint(incident) if idempotency_key is not None else None

    def same_declaration(found: tuple[Incident, str | None]) -> Incident:
        existing, declared_with = found
        if declared_with is not None and declared_with != fingerprint:
            raise InvalidValue(
                "Idempotency-Key",
                "this key was used for another declaration; use a new key for a new request",
            )
        return existing

    def work(tx: Transaction) -> tuple[Incident, bool]:
        if idempotency_key is not None:
            found = tx.find_incident_by_key(idempotency_key)
            if found is not None:
                return same_declaration(found), False
        incident_id = tx.add_incident(
            incident, idempotency_key=idempotency_key, fingerprint=fingerprint
        )
        tx.append_timeline(incident_id, [timeline_entry(e) for e in incident.events])
        replan(tx, incident, rt.playbooks, now=now, reason="declared", new=True)
        return incident, True

    try:
        # Urgent: a declaration starts the clock on paging; it goes ahead of queued work.
        result = await rt.store.run(work, urgent=True)
    except Conflict:
        # A concurrent declaration with the same key committed first: answer with it.
        assert idempotency_key is not None
        found = await rt.store.run(lambda tx: tx.find_incident_by_key(idempotency_key))
        if found is None:  # pragma: no cover - the key cannot vanish
            raise
        return same_declaration(found), False
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


def declaration_fingerprint(incident: Incident) -> str:
    """What a declaration asked for, as a hash: a retry with the same idempotency key must
    ask for the same (as payment APIs require)."""
    asked = {
        "title": incident.title,
        "severity": incident.severity.value,
        "service": incident.service,
        "impact": incident.impact,
        "category": incident.category.value,
        "commander": incident.commander,
        "components": {k: v.value for k, v in sorted(incident.components.items())},
        "public_title": incident.public_title,
    }
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()


async def acknowledge_incident(rt: Runtime, incident_id: int, *, by: Actor) -> Incident:
    name = actor_name(by)
    return await _change(
        rt,
        incident_id,
        "acknowledged",
        lambda i, now: [i.acknowledge(at=now, by=name)],
        by=by,
        rule=Action.ACKNOWLEDGE,
    )


async def change_status(rt: Runtime, incident_id: int, status: Status, *, by: Actor) -> Incident:
    name = actor_name(by)
    return await _change(
        rt,
        incident_id,
        "status changed",
        lambda i, now: [i.change_status(status, at=now, by=name)],
        by=by,
        rule=Action.POST_UPDATE,
    )


async def post_customer_update(
    rt: Runtime,
    incident_id: int,
    *,
    message: str,
    by: Actor,
    status: Status | None = None,
    components: dict[str, str] | None = None,
) -> Incident:
    """Post a customer-facing update; with `components`, their statuses change with it
    (as on Statuspage, where an update sets the affected components)."""
    statuses = rt.catalog.check_statuses(components) if components else {}
    name = actor_name(by)

    def post(incident: Incident, now: datetime) -> list[Event]:
        events: list[Event] = []
        if statuses:
            changed = incident.set_components(statuses, at=now, by=name)
            events += [changed] if changed is not None else []
        events += incident.post_customer_update(message=message, at=now, by=name, status=status)
        return events

    return await _change(
        rt, incident_id, "customer update posted", post, by=by, rule=Action.POST_UPDATE
    )


async def set_components(
    rt: Runtime, incident_id: int, components: dict[str, str], *, by: Actor
) -> Incident:
    """Set the status of the components the incident affects, as the page shows them."""
    if not components:
        raise InvalidValue("components", "name at least one component and its status")
    statuses = rt.catalog.check_statuses(components)
    name = actor_name(by)

    def change(incident: Incident, now: datetime) -> list[Event]:
        changed = incident.set_components(statuses, at=now, by=name)
        return [changed] if changed is not None else []

    return await _change(
        rt, incident_id, "components changed", change, by=by, rule=Action.POST_UPDATE
    )


async def set_public_title(rt: Runtime, incident_id: int, title: str, *, by: Actor) -> Incident:
    name = actor_name(by)
    return await _change(
        rt,
        incident_id,
        "public title changed",
        lambda i, now: [i.set_public_title(title, at=now, by=name)],
        by=by,
        rule=Action.POST_UPDATE,
    )


async def add_internal_note(rt: Runtime, incident_id: int, *, text: str, by: Actor) -> Incident:
    name = actor_name(by)
    return await _change(
        rt,
        incident_id,
        "note added",
        lambda i, now: [i.add_note(text=text, at=now, by=name)],
        by=by,
        rule=Action.POST_UPDATE,
    )


async def change_severity(
    rt: Runtime, incident_id: int, severity: Severity, *, by: Actor, reason: str = ""
) -> Incident:
    name = actor_name(by)
    return await _change(
        rt,
        incident_id,
        f"severity changed to {severity.value}",
        lambda i, now: [i.change_severity(severity, at=now, by=name, reason=reason)],
        by=by,
        rule=lambda i: severity_action(i, severity),
    )


async def assign_role(
    rt: Runtime, incident_id: int, role: Role, person: str, *, by: Actor
) -> Incident:
    name = actor_name(by)
    return await _change(
        rt,
        incident_id,
        f"{role.value} assigned",
        lambda i, now: [i.assign(role, person, at=now, by=name)],
        by=by,
        rule=lambda i: assign_action(i, name, role, person),
    )


async def resolve_incident(rt: Runtime, incident_id: int, *, summary: str, by: Actor) -> Incident:
    name = actor_name(by)

    def resolve(incident: Incident, now: datetime) -> list[Event]:
        within = rt.playbooks.for_severity(incident.severity).deadline("rca_due")
        return [incident.resolve(summary=summary, at=now, by=name, rca_within=within)]

    return await _change(rt, incident_id, "resolved", resolve, by=by, rule=Action.RESOLVE)


async def complete_rca(rt: Runtime, incident_id: int, *, link: str, by: Actor) -> Incident:
    name = actor_name(by)
    return await _change(
        rt,
        incident_id,
        "RCA completed",
        lambda i, now: [i.complete_rca(link=link, at=now, by=name)],
        by=by,
        rule=Action.COMPLETE_RCA,
    )


async def edit_incident(
    rt: Runtime,
    incident_id: int,
    *,
    by: Actor,
    title: str | None = None,
    impact: str | None = None,
    service: str | None = None,
    category: Category | None = None,
) -> Incident:
    """Correct the title, impact, service or category; a new category re-routes it (the
    security team's steps are planned for a security incident, say)."""
    name = actor_name(by)
    return await _change(
        rt,
        incident_id,
        "edited",
        lambda i, now: [
            i.edit(at=now, by=name, title=title, impact=impact, service=service, category=category)
        ],
        by=by,
        rule=Action.EDIT,
    )


async def cancel_incident(
    rt: Runtime, incident_id: int, *, reason: Cancellation, by: Actor, note: str = ""
) -> Incident:
    """A false alarm, or declined: the playbook stops, its pages are resolved, the status
    page withdraws it, and no RCA is due."""
    name = actor_name(by)
    return await _change(
        rt,
        incident_id,
        "cancelled",
        lambda i, now: [i.cancel(reason, at=now, by=name, note=note)],
        by=by,
        rule=Action.CANCEL,
    )


async def reopen_incident(
    rt: Runtime,
    incident_id: int,
    *,
    reason: str,
    by: Actor,
    status: Status = Status.INVESTIGATING,
) -> Incident:
    """Back to work on a resolved incident: its cadence resumes from now, the RCA deadline
    is off until it is resolved again."""
    name = actor_name(by)
    return await _change(
        rt,
        incident_id,
        "reopened",
        lambda i, now: [i.reopen(reason=reason, at=now, by=name, status=status)],
        by=by,
        rule=Action.REOPEN,
    )


async def merge_incident(rt: Runtime, duplicate_id: int, *, into: int, by: Actor) -> Incident:
    """Merge a duplicate into another incident, in one transaction: the duplicate is
    cancelled (its pages resolved, withdrawn from the status page), the other takes over
    its components and alert groups, and both timelines point at each other. Returns the
    incident merged into. Needs commander rights on both: the one called off and the one
    that takes it over."""
    now = rt.clock.now()
    name = actor_name(by)

    def work(tx: Transaction) -> Incident:
        # Locked in id order, so two merges of the same pair cannot wait on each other.
        locked = {i: tx.get_incident(i, lock=True) for i in sorted({duplicate_id, into})}
        duplicate, target = locked[duplicate_id], locked[into]
        authorized(by, Action.MERGE, duplicate)
        authorized(by, Action.MERGE, target)
        cancelled, merged = duplicate.merge_into(target, at=now, by=name)
        for incident, event in ((duplicate, cancelled), (target, merged)):
            assert incident.id is not None
            tx.save_incident(incident)
            tx.append_timeline(incident.id, [timeline_entry(event)])
        moved = tx.move_alert_groups(duplicate_id, into)
        if moved:
            tx.append_timeline(
                into,
                [
                    TimelineEntry(
                        at=now,
                        kind="alert_groups_moved",
                        actor=name,
                        text=f"{moved} alert group(s) of {duplicate.ref} now come here",
                        data={"from": duplicate_id, "groups": moved},
                    )
                ],
            )
        replan(tx, duplicate, rt.playbooks, now=now, reason=f"merged into {target.ref}")
        replan(tx, target, rt.playbooks, now=now, reason=f"{duplicate.ref} merged")
        rt.tell_followers(tx, duplicate, [cancelled], now)
        return target

    target = await rt.store.run(work)
    rt.plan_changed()
    rt.public_changed()
    log.info(
        "merged",
        extra={"action": "merged", "incident_id": duplicate_id, "into": into, "by": name},
    )
    return target


async def approve_step(rt: Runtime, incident_id: int, step_id: str, *, by: Actor) -> Incident:
    """Let a step's text go out: one held for approval runs now, an upcoming one when due."""
    now = rt.clock.now()
    name = actor_name(by)

    def work(tx: Transaction) -> Incident:
        incident = tx.get_incident(incident_id, lock=True)
        authorized(by, Action.APPROVE_STEPS, incident)
        occurrence = _pending_occurrence(tx, incident_id, step_id)
        if occurrence.approved_by is not None:
            raise Conflict(f"{step_id} was already approved by {occurrence.approved_by}")
        tx.approve_occurrence(occurrence.id, by=name, now=now)
        held = occurrence.state is OccurrenceState.HELD
        tx.append_timeline(
            incident_id,
            [
                TimelineEntry(
                    at=now,
                    kind="step_approved",
                    actor=name,
                    step_id=step_id,
                    occurrence=occurrence.occurrence,
                    text=f"approved {step_id}" + (": it goes out now" if held else " in advance"),
                )
            ],
        )
        return incident

    incident = await rt.store.run(work)
    rt.plan_changed()
    return incident


async def add_follow_up(
    rt: Runtime,
    incident_id: int,
    *,
    title: str,
    owner: str,
    due_at: datetime,
    by: Actor,
) -> FollowUp:
    """A follow-up action item from the review, reminded to its owner until done."""
    now = rt.clock.now()
    name = actor_name(by)

    def work(tx: Transaction) -> FollowUp:
        incident = tx.get_incident(incident_id, lock=True)
        authorized(by, Action.FOLLOW_UPS, incident)
        if incident.status is Status.CANCELLED:
            raise IllegalTransition(f"{incident.ref} is cancelled; it has no follow-ups")
        item = FollowUp.add(
            incident_id=incident_id, title=title, owner=owner, due_at=due_at, at=now, by=name
        )
        tx.add_follow_up(item)
        tx.append_timeline(
            incident_id,
            [
                TimelineEntry(
                    at=now,
                    kind="follow_up_added",
                    actor=name,
                    text=f"follow-up {item.ref}: {item.title} (owner {item.owner}, due "
                    f"{item.due_at.isoformat()})",
                    data={"follow_up": item.id, "owner": item.owner},
                )
            ],
        )
        replan(tx, incident, rt.playbooks, now=now, reason="follow-up added")
        return item

    item = await rt.store.run(work)
    rt.plan_changed()
    return item


async def complete_follow_up(
    rt: Runtime, incident_id: int, follow_up: int, *, by: Actor
) -> FollowUp:
    """Mark a follow-up done: its reminders stop."""
    now = rt.clock.now()
    name = actor_name(by)

    def work(tx: Transaction) -> FollowUp:
        incident = tx.get_incident(incident_id, lock=True)
        authorized(by, Action.FOLLOW_UPS, incident)
        item = tx.get_follow_up(incident_id, follow_up)
        item.complete(at=now, by=name)
        tx.save_follow_up(item)
        tx.append_timeline(
            incident_id,
            [
                TimelineEntry(
                    at=now,
                    kind="follow_up_done",
                    actor=name,
                    text=f"follow-up {item.ref} done: {item.title}",
                    data={"follow_up": item.id},
                )
            ],
        )
        replan(tx, incident, rt.playbooks, now=now, reason=f"follow-up {item.ref} done")
        return item

    item = await rt.store.run(work)
    rt.plan_changed()
    return item


def _pending_occurrence(
    tx: Transaction,
    incident_id: int,
    step_id: str,
    *,
    states: tuple[OccurrenceState, ...] = (OccurrenceState.PENDING, OccurrenceState.HELD),
) -> Occurrence:
    """The step's occurrence waiting to run (pending, or held for approval)."""
    pending = tx.occurrences(SubjectRef.incident(incident_id), states=states)
    match = next((o for o in pending if o.step_id == step_id), None)
    if match is None:
        upcoming = ", ".join(sorted({o.step_id for o in pending})) or "none"
        raise NotFound(
            f"step {step_id!r} has no upcoming occurrence on incident "
            f"{incident_id}; upcoming steps: {upcoming}"
        )
    return match


async def skip_step(
    rt: Runtime, incident_id: int, step_id: str, *, reason: str, by: Actor
) -> Incident:
    """Skip the next occurrence of a step (a repeating step plans its following one)."""
    reason = reason.strip()
    if not reason:
        raise InvalidValue("reason", "say why the step is skipped; it goes on the timeline")
    now = rt.clock.now()
    name = actor_name(by)

    def work(tx: Transaction) -> Incident:
        incident = tx.get_incident(incident_id, lock=True)
        authorized(by, Action.MANAGE_STEPS, incident)
        occurrence = _pending_occurrence(tx, incident_id, step_id)
        tx.finish_occurrence(
            occurrence.id,
            state=OccurrenceState.SKIPPED,
            now=now,
            outcome=f"skipped by {name}: {reason}",
        )
        tx.append_timeline(
            incident_id,
            [
                TimelineEntry(
                    at=now,
                    kind="step_skipped",
                    actor=name,
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
    rt: Runtime, incident_id: int, step_id: str, *, delay: timedelta, reason: str, by: Actor
) -> Incident:
    """Postpone the next occurrence of a step by `delay` from its due time, or from now
    when it is already due, so a snooze always moves the step later."""
    reason = reason.strip()
    if not reason:
        raise InvalidValue("reason", "say why the step is snoozed; it goes on the timeline")
    if not timedelta(minutes=1) <= delay <= timedelta(days=7):
        raise InvalidValue("delay", "snooze for between 1 minute and 7 days")
    now = rt.clock.now()
    name = actor_name(by)

    def work(tx: Transaction) -> Incident:
        incident = tx.get_incident(incident_id, lock=True)
        authorized(by, Action.MANAGE_STEPS, incident)
        occurrence = _pending_occurrence(tx, incident_id, step_id)
        until = max(occurrence.run_at, now) + delay
        tx.snooze_occurrence(occurrence.id, until=until)
        tx.append_timeline(
            incident_id,
            [
                TimelineEntry(
                    at=now,
                    kind="step_snoozed",
                    actor=name,
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


async def read_incident(rt: Runtime, incident_id: int) -> Incident:
    """The incident as it is now (NotFound if there is none): for a door that says what a
    change changed ("now P1, was P2")."""
    return await rt.store.read(lambda tx: tx.get_incident(incident_id))


async def find_by_war_room(rt: Runtime, rooms: Sequence[str]) -> Incident | None:
    return await rt.store.read(lambda tx: tx.find_incident_by_war_room(rooms))


def planned_view(rt: Runtime, incident: Incident) -> IncidentView:
    """A just-declared incident as its declaration committed it, without reading it back:
    its upcoming steps are its playbook's plan. For answering a declaration when the read
    that follows fails (a full disk fails reads that sort): the incident exists, so the
    caller must hear so, or a retry without a key declares it twice."""
    assert incident.id is not None
    playbook = rt.playbooks.for_severity(incident.severity)
    steps = {s.id: s for s in playbook.steps}
    upcoming = [
        UpcomingStep(
            occurrence_id=0,
            step_id=p.step_id,
            occurrence=p.occurrence,
            action=steps[p.step_id].action.value,
            target=steps[p.step_id].target,
            description=steps[p.step_id].description,
            due_at=p.due_at,
            run_at=p.due_at,
            state=OccurrenceState.PENDING,
            attempts=0,
            last_error=None,
            needs_approval=rt.needs_approval(incident, steps[p.step_id]),
        )
        for p in plan(incident, playbook, {})
    ]
    timeline = [timeline_entry(e) for e in incident.events]
    return IncidentView(incident=incident, timeline=timeline, upcoming=upcoming, history=[])


async def get_incident(rt: Runtime, incident_id: int) -> IncidentView:
    def read(
        tx: Transaction,
    ) -> tuple[Incident, list[TimelineEntry], list[Occurrence], list[FollowUp]]:
        return (
            tx.get_incident(incident_id),
            tx.timeline(incident_id),
            tx.occurrences(SubjectRef.incident(incident_id)),
            tx.follow_ups(incident_id),
        )

    incident, timeline, occurrences, follow_ups = await rt.store.read(read)
    history = [o for o in occurrences if not o.state.upcoming]
    return IncidentView(
        incident=incident,
        timeline=timeline,
        upcoming=upcoming_steps(rt, incident, occurrences, follow_ups),
        history=history,
        follow_ups=follow_ups,
    )


def upcoming_steps(
    rt: Runtime,
    incident: Incident,
    occurrences: Sequence[Occurrence],
    follow_ups: Sequence[FollowUp] = (),
) -> list[UpcomingStep]:
    """The incident's steps still to come, soonest first, described as its own playbook
    says (two playbooks may share a step id with different words), then its follow-ups'."""
    steps = {
        s.id: s
        for s in (
            *rt.playbooks.for_severity(incident.severity).steps,
            *(step for item in follow_ups for step in follow_up_steps(item)),
        )
    }
    return [
        UpcomingStep(
            occurrence_id=o.id,
            step_id=o.step_id,
            occurrence=o.occurrence,
            action=o.action,
            target=o.target,
            description=steps[o.step_id].description if o.step_id in steps else "",
            due_at=o.due_at,
            # Running: being sent now (its run_at is the claim's lease, not a due time).
            run_at=(o.started_at or o.due_at) if o.state is OccurrenceState.RUNNING else o.run_at,
            state=o.state,
            attempts=o.attempts,
            last_error=o.last_error,
            needs_approval=o.step_id in steps
            and rt.needs_approval(incident, steps[o.step_id])
            and o.approved_by is None,
            approved_by=o.approved_by,
        )
        for o in sorted(occurrences, key=lambda o: (o.run_at, o.id))
        if o.state.upcoming
    ]


async def list_incidents(
    rt: Runtime,
    *,
    statuses: Sequence[Status] = (),
    severities: Sequence[Severity] = (),
    search: str = "",
    limit: int | None = None,
    offset: int = 0,
) -> list[Incident]:
    """Newest first; `search`, `limit` and `offset` as `Transaction.list_incidents`."""
    if limit is not None and limit < 1:
        raise InvalidValue("limit", "give a limit of at least 1")
    if offset < 0:
        raise InvalidValue("offset", "give an offset of 0 or more")
    return await rt.store.read(
        lambda tx: tx.list_incidents(
            statuses=statuses, severities=severities, search=search, limit=limit, offset=offset
        )
    )
