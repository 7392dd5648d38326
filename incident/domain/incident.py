"""The incident lifecycle: severities, statuses, roles and the rules for changing them.

Pure: no I/O and no clock. Every method that changes an incident takes the instant `at`
from its caller and returns the event it produced, or raises `IllegalTransition` with a
reason a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from incident.domain.errors import IllegalTransition, InvalidValue, plain_text
from incident.domain.status_page import Catalog, ComponentStatus, public_title


class Severity(StrEnum):
    """P1 is the most severe. Comparisons use `rank` (1 = P1)."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"

    @property
    def rank(self) -> int:
        return int(self.value[1])

    @classmethod
    def parse(cls, text: str, *, where: str = "severity") -> Severity:
        try:
            return cls(text.strip().upper())
        except ValueError:
            raise InvalidValue(
                where, f"unknown severity {text!r}; use one of P1, P2, P3, P4"
            ) from None


class Status(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @classmethod
    def parse(cls, text: str, *, where: str = "status") -> Status:
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise InvalidValue(
                where,
                f"unknown status {text!r}; use one of " + ", ".join(s.value for s in OPEN_STATUSES),
            ) from None


OPEN_STATUSES = (Status.INVESTIGATING, Status.IDENTIFIED, Status.MONITORING)


class Category(StrEnum):
    """What kind of incident it is; some kinds go to a particular team at once, whatever
    the severity (security to the security team; legal, regulatory, media and fraud to
    the CIO; compliance requests to compliance)."""

    GENERAL = "general"
    SECURITY = "security"
    LEGAL = "legal"
    REGULATORY = "regulatory"
    MEDIA = "media"
    FRAUD = "fraud"
    COMPLIANCE = "compliance"

    @classmethod
    def parse(cls, text: str, *, where: str = "category") -> Category:
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise InvalidValue(
                where, f"unknown category {text!r}; use one of " + ", ".join(c.value for c in cls)
            ) from None


class Role(StrEnum):
    COMMANDER = "commander"
    COMMS_LEAD = "comms_lead"

    @classmethod
    def parse(cls, text: str, *, where: str = "role") -> Role:
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise InvalidValue(
                where, f"unknown role {text!r}; use one of commander, comms_lead"
            ) from None


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
    ) -> Incident:
        title = title.strip()
        if not title:
            raise InvalidValue("title", "an incident needs a title that says what is wrong")
        if len(title) > 200:
            raise InvalidValue("title", f"title is {len(title)} characters; keep it under 200")
        _require_aware(at)
        incident = cls(
            title=title,
            severity=severity,
            declared_at=at,
            declared_by=by,
            service=service.strip(),
            impact=impact.strip(),
            category=category,
        )
        incident.events.append(IncidentDeclared(at=at, actor=by, severity=severity, title=title))
        return incident

    def acknowledge(self, *, at: datetime, by: str) -> IncidentAcknowledged:
        self._require_open("acknowledge")
        if self.acknowledged_at is not None:
            raise IllegalTransition(
                f"{self.ref} was already acknowledged by {self.acknowledged_by}"
            )
        self.acknowledged_at, self.acknowledged_by = at, by
        return self._record(IncidentAcknowledged(at=at, actor=by))

    def change_status(self, new: Status, *, at: datetime, by: str) -> StatusChanged:
        self._require_open("change the status of")
        if new not in OPEN_STATUSES:
            raise IllegalTransition(
                f"use resolve to set {new.value!r}; a status change moves between "
                "investigating, identified and monitoring"
            )
        if new == self.status:
            raise IllegalTransition(f"{self.ref} is already {new.value}")
        old, self.status = self.status, new
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
        self._require_open("post a customer update to")
        message = plain_text(message, where="message")
        if not message:
            raise InvalidValue("message", "a customer update needs a message")
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
        if self.status is Status.CLOSED:
            raise IllegalTransition(f"{self.ref} is closed; notes can no longer be added")
        text = text.strip()
        if not text:
            raise InvalidValue("text", "a note needs some text")
        return self._record(InternalNoteAdded(at=at, actor=by, text=text))

    def change_severity(
        self, new: Severity, *, at: datetime, by: str, reason: str = ""
    ) -> SeverityChanged:
        self._require_open("change the severity of")
        if new == self.severity:
            raise IllegalTransition(f"{self.ref} is already {new.value}")
        old, self.severity = self.severity, new
        self.severity_changed_at = at
        return self._record(SeverityChanged(at=at, actor=by, old=old, new=new, reason=reason))

    def assign(self, role: Role, person: str, *, at: datetime, by: str) -> RoleAssigned:
        if self.status is Status.CLOSED:
            raise IllegalTransition(f"{self.ref} is closed; roles can no longer change")
        person = person.strip()
        if not person:
            raise InvalidValue("person", "name the person to assign")
        if role is Role.COMMANDER:
            self.commander = person
        else:
            self.comms_lead = person
        return self._record(RoleAssigned(at=at, actor=by, role=role, person=person))

    def resolve(
        self, *, summary: str, at: datetime, by: str, rca_within: timedelta | None = None
    ) -> IncidentResolved:
        """Resolve; when the playbook sets an RCA deadline, it falls `rca_within` after `at`."""
        if self.status is Status.RESOLVED:
            raise IllegalTransition(f"{self.ref} is already resolved")
        if self.status is Status.CLOSED:
            raise IllegalTransition(f"{self.ref} is closed; a closed incident cannot be resolved")
        summary = summary.strip()
        if not summary:
            raise InvalidValue("summary", "say in a sentence what was wrong and what fixed it")
        self.status = Status.RESOLVED
        self.resolved_at, self.resolution_summary = at, summary
        self.rca_due_at = at + rca_within if rca_within is not None else None
        return self._record(IncidentResolved(at=at, actor=by, summary=summary))

    def set_components(
        self, statuses: dict[str, ComponentStatus], *, at: datetime, by: str
    ) -> ComponentsChanged | None:
        """Set the status of the components this incident affects (ids already checked
        against the page's catalog). None when nothing changes."""
        self._require_open("change the components of")
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
        if self.status is Status.CLOSED:
            raise IllegalTransition(f"{self.ref} is closed; its public name can no longer change")
        title = plain_text(title, where="public_title", one_line=True)
        if not title:
            raise InvalidValue("public_title", "give the name customers should see")
        if len(title) > 200:
            raise InvalidValue(
                "public_title", f"public title is {len(title)} characters; keep it under 200"
            )
        self.public_title = title
        return self._record(PublicTitleChanged(at=at, actor=by, title=title))

    def open_war_room(self, *, channel: str, conference_url: str | None) -> None:
        self.war_room, self.conference_url = channel, conference_url

    def complete_rca(self, *, link: str, at: datetime, by: str) -> RcaCompleted:
        if self.status is Status.CLOSED:
            raise IllegalTransition(f"{self.ref} is already closed; its RCA is at {self.rca_link}")
        if self.status is not Status.RESOLVED:
            raise IllegalTransition(
                f"{self.ref} is {self.status.value}; resolve it before marking the RCA done"
            )
        link = link.strip()
        if not link:
            raise InvalidValue("link", "give the link to the RCA document")
        self.rca_link, self.closed_at, self.status = link, at, Status.CLOSED
        return self._record(RcaCompleted(at=at, actor=by, link=link))

    # --- helpers ---------------------------------------------------------------------------

    def _require_open(self, verb: str) -> None:
        if not self.is_open:
            raise IllegalTransition(f"cannot {verb} {self.ref}: it is {self.status.value}")

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
