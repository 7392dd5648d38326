"""The incident lifecycle: severities, statuses, roles and the rules for changing them.

Pure: no I/O and no clock. The rules are checks an `Incident` command makes before it
changes anything: each raises `IllegalTransition` (or `InvalidValue`) with a reason a person
can act on, and returns nothing when the change is allowed. They live here, apart from the
entity, so that what each status allows reads in one place.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from incident.domain import text as rules
from incident.domain.errors import IllegalTransition, InvalidValue

if TYPE_CHECKING:
    from incident.domain.incident import Incident


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
    CLOSED = "closed"  # resolved, and its RCA recorded
    CANCELLED = "cancelled"  # a false alarm, declined, or merged into another incident

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


class Cancellation(StrEnum):
    """Why an incident was cancelled: nothing more of its playbook runs but what undoes
    its effects (its pages resolved, its status page entry withdrawn)."""

    FALSE_ALARM = "false_alarm"
    DECLINED = "declined"  # real, but not an incident (a request, expected behaviour ...)
    DUPLICATE = "duplicate"  # merged into another incident

    @classmethod
    def parse(cls, text: str, *, where: str = "reason") -> Cancellation:
        try:
            return cls(text.strip().lower().replace("-", "_").replace(" ", "_"))
        except ValueError:
            raise InvalidValue(
                where, "unknown reason " + repr(text) + "; use false_alarm or declined"
            ) from None

    @property
    def words(self) -> str:
        return {
            Cancellation.FALSE_ALARM: "a false alarm",
            Cancellation.DECLINED: "declined (not an incident)",
            Cancellation.DUPLICATE: "a duplicate",
        }[self]


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


# --- which change each status allows ----------------------------------------------------------

# Closed (its RCA recorded) or cancelled: its roles, public name and merges are settled.
_OVER = (Status.CLOSED, Status.CANCELLED)


def check_open(incident: Incident, doing: str) -> None:
    """Only an open incident can be `doing` (`cancel`, `post a customer update to` ...)."""
    if not incident.is_open:
        raise IllegalTransition(f"cannot {doing} {incident.ref}: it is {incident.status.value}")


def check_acknowledge(incident: Incident) -> None:
    check_open(incident, "acknowledge")
    if incident.acknowledged_at is not None:
        raise IllegalTransition(
            f"{incident.ref} was already acknowledged by {incident.acknowledged_by}"
        )


def check_status_change(incident: Incident, new: Status) -> None:
    check_open(incident, "change the status of")
    if new not in OPEN_STATUSES:
        raise IllegalTransition(
            f"use resolve to set {new.value!r}; a status change moves between "
            "investigating, identified and monitoring"
        )
    if new == incident.status:
        raise IllegalTransition(f"{incident.ref} is already {new.value}")


def check_severity_change(incident: Incident, new: Severity) -> None:
    """After `check_open` and the reason's check (a wrong reason is said first)."""
    if new == incident.severity:
        raise IllegalTransition(f"{incident.ref} is already {new.value}")


def check_note(incident: Incident) -> None:
    if incident.status is Status.CLOSED:
        raise IllegalTransition(f"{incident.ref} is closed; notes can no longer be added")


def check_not_over(incident: Incident, what: str) -> None:
    """`what` (roles, its public name) can change until the incident is closed or cancelled."""
    if incident.status in _OVER:
        raise IllegalTransition(
            f"{incident.ref} is {incident.status.value}; {what} can no longer change"
        )


def check_resolve(incident: Incident) -> None:
    if incident.status is Status.RESOLVED:
        raise IllegalTransition(f"{incident.ref} is already resolved")
    if incident.status is Status.CLOSED:
        raise IllegalTransition(f"{incident.ref} is closed; a closed incident cannot be resolved")
    if incident.status is Status.CANCELLED:
        raise IllegalTransition(f"{incident.ref} was cancelled; there is nothing to resolve")


def check_complete_rca(incident: Incident) -> None:
    if incident.status is Status.CLOSED:
        raise IllegalTransition(
            f"{incident.ref} is already closed; its RCA is at {incident.rca_link}"
        )
    if incident.status is not Status.RESOLVED:
        raise IllegalTransition(
            f"{incident.ref} is {incident.status.value}; resolve it before marking the RCA done"
        )


def check_merge(duplicate: Incident, target: Incident) -> None:
    """`duplicate` may be merged into `target` (the open check is `cancel`'s)."""
    if target.id is None or target.id == duplicate.id:
        raise InvalidValue("into", f"an incident cannot be merged into itself ({duplicate.ref})")
    if target.status in _OVER:
        raise IllegalTransition(
            f"{target.ref} is {target.status.value}; merge into an incident that is open "
            "or resolved"
        )


def check_reopen(incident: Incident, status: Status) -> None:
    if incident.status is not Status.RESOLVED:
        hint = (
            "its RCA is recorded; declare a new incident and link this one in a note"
            if incident.status is Status.CLOSED
            else "only a resolved incident can be reopened"
        )
        raise IllegalTransition(f"{incident.ref} is {incident.status.value}; {hint}")
    if status not in OPEN_STATUSES:
        raise InvalidValue("status", "reopen to investigating, identified or monitoring")


def fact_changes(
    incident: Incident,
    *,
    title: str | None,
    impact: str | None,
    service: str | None,
    category: Category | None,
) -> tuple[tuple[str, str, str], ...]:
    """What an edit corrects, checked: (field, old value, new value) for each field given
    with a value other than the incident's; refused when that is none of them."""
    if incident.status is Status.CANCELLED:
        raise IllegalTransition(f"{incident.ref} is cancelled; its facts can no longer change")
    wanted: dict[str, str] = {}
    if title is not None:
        wanted["title"] = rules.TITLE.check(title)
    if impact is not None:
        wanted["impact"] = rules.IMPACT.check(impact)
    if service is not None:
        wanted["service"] = rules.SERVICE.check(service)
    if category is not None:
        wanted["category"] = category.value
    current = {
        "title": incident.title,
        "impact": incident.impact,
        "service": incident.service,
        "category": incident.category.value,
    }
    changes = tuple(
        (name, current[name], value) for name, value in wanted.items() if value != current[name]
    )
    if not changes:
        raise IllegalTransition(
            f"nothing to change on {incident.ref}: give a title, impact, service or category "
            "different from what it has"
        )
    return changes
