"""One incident: its facts, the commands that change them and the events they produce.

Pure: no I/O and no clock. Every method that changes an incident takes the instant `at`
from its caller and returns the event it produced, or raises `IllegalTransition` with a
reason a person can act on. The words (severities, statuses, roles ...) and the rules for
which change each status allows are in `lifecycle`; the words are importable from here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from incident.domain import lifecycle
from incident.domain import text as rules
from incident.domain.errors import InvalidValue
from incident.domain.lifecycle import (
    OPEN_STATUSES,
    Cancellation,
    Category,
    Role,
    Severity,
    Status,
)
from incident.domain.status_page import Catalog, ComponentStatus, public_title

__all__ = [
    "OPEN_STATUSES",
    "Cancellation",
    "Category",
    "ComponentsChanged",
    "CustomerUpdatePosted",
    "DuplicateMerged",
    "Event",
    "Incident",
    "IncidentAcknowledged",
    "IncidentCancelled",
    "IncidentDeclared",
    "IncidentEdited",
    "IncidentReopened",
    "IncidentResolved",
    "InternalNoteAdded",
    "PublicTitleChanged",
    "RcaCompleted",
    "Role",
    "RoleAssigned",
    "Severity",
    "SeverityChanged",
    "Status",
    "StatusChanged",
    "war_room_name",
]


# --- events (past tense): what happened, for the timeline and for re-planning ---------------


@dataclass(frozen=True)
class Event:
    at: datetime
    actor: str


@dataclass(frozen=True)
class IncidentDeclared(Event):
    severity: Severity
    title: str


@dataclass(frozen=True)
class IncidentAcknowledged(Event):
    pass


@dataclass(frozen=True)
class StatusChanged(Event):
    old: Status
    new: Status


@dataclass(frozen=True)
class CustomerUpdatePosted(Event):
    status: Status
    message: str
    automatic: bool = False


@dataclass(frozen=True)
class InternalNoteAdded(Event):
    text: str


@dataclass(frozen=True)
class SeverityChanged(Event):
    old: Severity
    new: Severity
    reason: str


@dataclass(frozen=True)
class RoleAssigned(Event):
    role: Role
    person: str


@dataclass(frozen=True)
class IncidentResolved(Event):
    summary: str


@dataclass(frozen=True)
class RcaCompleted(Event):
    link: str


@dataclass(frozen=True)
class IncidentEdited(Event):
    """Facts corrected: (field, old value, new value) for each field that changed."""

    changes: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True)
class IncidentCancelled(Event):
    reason: Cancellation
    note: str
    merged_into: int | None = None  # the incident a duplicate was merged into


@dataclass(frozen=True)
class IncidentReopened(Event):
    reason: str
    status: Status


@dataclass(frozen=True)
class DuplicateMerged(Event):
    """On the incident that stays: another one was merged into it."""

    duplicate: int
    duplicate_ref: str
    duplicate_title: str
    components: tuple[str, ...]  # the duplicate's components this incident took over


@dataclass(frozen=True)
class ComponentsChanged(Event):
    """Public: the status page shows these components in these statuses."""

    changes: tuple[tuple[str, ComponentStatus], ...]


@dataclass(frozen=True)
class PublicTitleChanged(Event):
    title: str


_E = TypeVar("_E", bound=Event)


@dataclass
class Incident:
    """One incident and the facts about it that playbooks plan from."""

    title: str
    severity: Severity
    declared_at: datetime
    declared_by: str
    id: int | None = None
    service: str = ""
    category: Category = Category.GENERAL
    status: Status = Status.INVESTIGATING
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    commander: str | None = None
    comms_lead: str | None = None
    severity_changed_at: datetime | None = None
    last_customer_update_at: datetime | None = None
    last_manual_update_at: datetime | None = None  # the latest one a person posted
    resolved_at: datetime | None = None
    resolution_summary: str | None = None
    rca_due_at: datetime | None = None
    rca_link: str | None = None
    closed_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancellation: Cancellation | None = None
    cancel_note: str | None = None
    merged_into: int | None = None
    reopened_at: datetime | None = None  # the latest time it was reopened after resolution
    # The latest change to what the war room's greeting shows (title, impact, severity,
    # status, roles, resolution ...): the greeting is refreshed from it.
    changed_at: datetime | None = None
    impact: str = ""
    war_room: str | None = None
    conference_url: str | None = None
    # What customers see. The title above is internal (it may name hosts, alerts or
    # customers); the page shows `public_title`, or a name made from the components.
    public_title: str | None = None
    components: dict[str, ComponentStatus] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list, repr=False, compare=False)

    # --- queries ---------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def public_name(self, catalog: Catalog) -> str:
        """What customers call it: the public title, or a name made from the components
        it affects; never the internal title (it may name hosts, alerts or customers)."""
        return self.public_title or public_title(catalog, self.severity.value, self.components)

    @property
    def ref(self) -> str:
        return f"INC-{self.id}" if self.id is not None else "INC-new"

    @property
    def ended_at(self) -> datetime | None:
        """When it stopped being open: resolved, or cancelled."""
        return self.resolved_at or self.cancelled_at

    # --- commands --------------------------------------------------------------------------

    @classmethod
    def declare(
        cls,
        *,
        title: str,
        severity: Severity,
        at: datetime,
        by: str,
        service: str = "",
        impact: str = "",
        category: Category = Category.GENERAL,
        commander: str | None = None,
    ) -> Incident:
        """A new incident; `commander`: who runs it from the start (whoever declares from
        chat), recorded as their assignment."""
        title = rules.TITLE.check(title)
        _require_aware(at)
        incident = cls(
            title=title,
            severity=severity,
            declared_at=at,
            declared_by=by,
            service=rules.SERVICE.check(service),
            impact=rules.IMPACT.check(impact),
            category=category,
        )
        incident.events.append(IncidentDeclared(at=at, actor=by, severity=severity, title=title))
        if commander:
            incident.assign(Role.COMMANDER, commander, at=at, by=by)
            incident.changed_at = None  # the war room opens with it: nothing to refresh
        return incident

    def acknowledge(self, *, at: datetime, by: str) -> IncidentAcknowledged:
        lifecycle.check_acknowledge(self)
        self.acknowledged_at, self.acknowledged_by = at, by
        self.changed_at = at
        return self._record(IncidentAcknowledged(at=at, actor=by))

    def change_status(self, new: Status, *, at: datetime, by: str) -> StatusChanged:
        lifecycle.check_status_change(self, new)
        old, self.status = self.status, new
        self.changed_at = at
        return self._record(StatusChanged(at=at, actor=by, old=old, new=new))

    def post_customer_update(
        self,
        *,
        message: str,
        at: datetime,
        by: str,
        status: Status | None = None,
        automatic: bool = False,
    ) -> list[Event]:
        """Post a customer-facing update, optionally moving the status with it."""
        lifecycle.check_open(self, "post a customer update to")
        message = rules.MESSAGE.check(message)
        events: list[Event] = []
        if status is not None and status != self.status:
            events.append(self.change_status(status, at=at, by=by))
        self.last_customer_update_at = at
        if not automatic:
            self.last_manual_update_at = at
        events.append(
            self._record(
                CustomerUpdatePosted(
                    at=at, actor=by, status=self.status, message=message, automatic=automatic
                )
            )
        )
        return events

    def add_note(self, *, text: str, at: datetime, by: str) -> InternalNoteAdded:
        lifecycle.check_note(self)
        note = rules.NOTE.check(text)
        return self._record(InternalNoteAdded(at=at, actor=by, text=note))

    def change_severity(
        self, new: Severity, *, at: datetime, by: str, reason: str = ""
    ) -> SeverityChanged:
        lifecycle.check_open(self, "change the severity of")
        reason = rules.OPTIONAL_REASON.check(reason)
        lifecycle.check_severity_change(self, new)
        old, self.severity = self.severity, new
        self.severity_changed_at = self.changed_at = at
        return self._record(SeverityChanged(at=at, actor=by, old=old, new=new, reason=reason))

    def assign(self, role: Role, person: str, *, at: datetime, by: str) -> RoleAssigned:
        lifecycle.check_not_over(self, "roles")
        person = rules.PERSON.check(person)
        if role is Role.COMMANDER:
            self.commander = person
        else:
            self.comms_lead = person
        self.changed_at = at
        return self._record(RoleAssigned(at=at, actor=by, role=role, person=person))

    def resolve(
        self, *, summary: str, at: datetime, by: str, rca_within: timedelta | None = None
    ) -> IncidentResolved:
        """Resolve; when the playbook sets an RCA deadline, it falls `rca_within` after `at`."""
        lifecycle.check_resolve(self)
        summary = rules.SUMMARY.check(summary)
        self.status = Status.RESOLVED
        self.resolved_at, self.resolution_summary = at, summary
        self.rca_due_at = at + rca_within if rca_within is not None else None
        self.changed_at = at
        return self._record(IncidentResolved(at=at, actor=by, summary=summary))

    def set_components(
        self, statuses: dict[str, ComponentStatus], *, at: datetime, by: str
    ) -> ComponentsChanged | None:
        """Set the status of the components this incident affects (ids already checked
        against the page's catalog). None when nothing changes."""
        lifecycle.check_open(self, "change the components of")
        changes = tuple(
            (component, status)
            for component, status in statuses.items()
            if self.components.get(component) is not status
        )
        if not changes:
            return None
        self.components.update(changes)
        return self._record(ComponentsChanged(at=at, actor=by, changes=changes))

    def set_public_title(self, title: str, *, at: datetime, by: str) -> PublicTitleChanged:
        lifecycle.check_not_over(self, "its public name")
        title = rules.PUBLIC_TITLE.check(title)
        self.public_title = title
        return self._record(PublicTitleChanged(at=at, actor=by, title=title))

    def open_war_room(self, *, channel: str, conference_url: str | None) -> None:
        self.war_room, self.conference_url = channel, conference_url

    def complete_rca(self, *, link: str, at: datetime, by: str) -> RcaCompleted:
        lifecycle.check_complete_rca(self)
        link = rules.web_link(link, where="link")
        self.rca_link, self.closed_at, self.status = link, at, Status.CLOSED
        self.changed_at = at
        return self._record(RcaCompleted(at=at, actor=by, link=link))

    def edit(
        self,
        *,
        at: datetime,
        by: str,
        title: str | None = None,
        impact: str | None = None,
        service: str | None = None,
        category: Category | None = None,
    ) -> IncidentEdited:
        """Correct the incident's facts. A new category brings its routing (the security
        team's steps, say); the change goes on the timeline with the old values."""
        changes = lifecycle.fact_changes(
            self, title=title, impact=impact, service=service, category=category
        )
        for name, _, value in changes:
            if name == "category":
                self.category = Category(value)
            else:
                setattr(self, name, value)
        self.changed_at = at
        return self._record(IncidentEdited(at=at, actor=by, changes=changes))

    def cancel(
        self,
        reason: Cancellation,
        *,
        at: datetime,
        by: str,
        note: str = "",
        merged_into: int | None = None,
    ) -> IncidentCancelled:
        """Call it off: a false alarm, declined, or (through `merge_into`) a duplicate.
        Nothing more of its playbook runs but what undoes its effects; no RCA is due."""
        lifecycle.check_open(self, "cancel")
        note = rules.CANCEL_NOTE.check(note)
        if reason is Cancellation.DUPLICATE and merged_into is None:
            raise InvalidValue("reason", "a duplicate is merged into another incident; use merge")
        self.status = Status.CANCELLED
        self.cancelled_at, self.cancellation, self.cancel_note = at, reason, note or None
        self.merged_into = merged_into
        self.changed_at = at
        return self._record(
            IncidentCancelled(at=at, actor=by, reason=reason, note=note, merged_into=merged_into)
        )

    def merge_into(self, target: Incident, *, at: datetime, by: str) -> list[Event]:
        """Cancel this incident as a duplicate of `target`, which takes over its components;
        the events of both, this one's first."""
        lifecycle.check_merge(self, target)
        cancelled = self.cancel(
            Cancellation.DUPLICATE,
            at=at,
            by=by,
            note=f"duplicate of {target.ref}",
            merged_into=target.id,
        )
        taken = tuple(c for c in self.components if c not in target.components)
        if taken and target.is_open:
            target.components.update({c: self.components[c] for c in taken})
        else:
            taken = ()
        merged = target._record(
            DuplicateMerged(
                at=at,
                actor=by,
                duplicate=self.id or 0,
                duplicate_ref=self.ref,
                duplicate_title=self.title,
                components=taken,
            )
        )
        return [cancelled, merged]

    def reopen(
        self, *, reason: str, at: datetime, by: str, status: Status = Status.INVESTIGATING
    ) -> IncidentReopened:
        """Back to work on a resolved incident: its cadence resumes from now, and resolving
        it again runs the resolution steps again (with a new RCA deadline)."""
        lifecycle.check_reopen(self, status)
        reason = rules.REASON.check(reason)
        self.status = status
        self.resolved_at = self.resolution_summary = self.rca_due_at = None
        self.reopened_at = self.changed_at = at
        return self._record(IncidentReopened(at=at, actor=by, reason=reason, status=status))

    # --- helpers ---------------------------------------------------------------------------

    def _record(self, event: _E) -> _E:
        _require_aware(event.at)
        self.events.append(event)
        return event


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError("instants must be timezone-aware UTC datetimes")


def war_room_name(incident: Incident) -> str:
    """The war room's channel name, e.g. `inc-42-checkout-api-down`.

    Deterministic, so a retried war-room step finds its room rather than making another.
    """
    slug = "".join(c if c.isalnum() else "-" for c in incident.title.lower())
    slug = "-".join(part for part in slug.split("-") if part)[:40].rstrip("-")
    return f"inc-{incident.id}-{slug}" if slug else f"inc-{incident.id}"
